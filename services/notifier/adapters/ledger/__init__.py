"""The email ledger: the notifier's own tables, in the database of DATABASE_URL.

Not the event store (that is the invitation service's): these are the notifier's
records of what it planned and sent, in PostgreSQL or an SQLite file.

- `notifier_tracking`: the last event-store position planned (the high-water mark);
- `notifier_state`: what planning remembers of past events (key -> JSON), see
  domain/planning/;
- `notifier_emails`: one row per (event, kind, recipient), keyed by its message key.
  It is both the outbox the sender drains and the sent-record that makes every email
  happen once: a replay re-plans the same keys, and `ON CONFLICT DO NOTHING` drops them.

Planning writes state, emails and the new position in one transaction, so an event is
planned exactly once whatever crashes. Sending is at-least-once only in one narrow place
(the SMTP server accepted, the process died before `sent` was recorded), and the re-send
carries the same Message-ID.

common.py holds the SQL both databases share, postgres.py and sqlite.py the rest,
lease.py the lease one notifier leads by (PostgreSQL; see leadership.py), rows.py the
rows as Python values, reports.py what is told back to the invitation service
(delivered passwords, failed emails).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from services.notifier.adapters.ledger.common import EmailLedger
from services.notifier.adapters.ledger.postgres import PostgresLedger
from services.notifier.adapters.ledger.reports import FailedEmail
from services.notifier.adapters.ledger.rows import (
    Delivery,
    Json,
    OutboxEmail,
    PlanStep,
    StateLoader,
)
from services.notifier.adapters.ledger.sqlite import SQLiteLedger

__all__ = [
    "Delivery",
    "EmailLedger",
    "FailedEmail",
    "Json",
    "OutboxEmail",
    "PlanStep",
    "PostgresLedger",
    "SQLiteLedger",
    "StateLoader",
    "open_ledger",
]


def open_ledger(database_url: str) -> EmailLedger:
    """The ledger named by DATABASE_URL, tables created (`postgresql://` or `sqlite:///`)."""
    parts = urlsplit(database_url)
    ledger: EmailLedger
    if parts.scheme in ("postgresql", "postgres"):
        ledger = PostgresLedger(database_url)
    elif parts.scheme == "sqlite":
        ledger = SQLiteLedger(unquote(parts.netloc + parts.path))
    else:
        raise ValueError(
            f"DATABASE_URL must be postgresql://... or sqlite:///...: {parts.scheme!r}"
        )
    ledger.create_tables()
    return ledger
