"""The SQL both database dialects share: schema, planning, sending, reading.

`EmailLedger` runs every query through a dialect's hooks; postgres.py and sqlite.py
supply them (placeholders, locks, bulk writes, claiming).
"""

# Table names are interpolated into SQL: they are our own constants and a schema name
# checked by the PostgreSQL dialect, never input. Values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from services.notifier.adapters.ledger.reports import OutcomeReports
from services.notifier.adapters.ledger.rows import (
    UNREPORTED_INVITATION_EMAIL,
    Cursor,
    Delivery,
    Json,
    OutboxEmail,
    PlanStep,
    StateLoader,
    outbox_email,
    planned_row,
)
from services.notifier.domain.delivery import (
    FAILED,
    INTERRUPTED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    Failed,
    Outcome,
    Released,
    Retry,
    Sent,
    Skipped,
)
from services.notifier.leadership import Lease, SoleLease

TRACKING_NAME = "notifier"
# Columns added to the email rows after the first release, created on older ledgers at
# start-up (create_tables): the migration is "add what is missing", under the DDL lock.
ADDED_COLUMNS = (("event_at", "DOUBLE PRECISION"), ("traceparent", "TEXT"))
SUPERSEDED = "superseded: the invitation was revoked, lapsed or resent before sending"


class EmailLedger(OutcomeReports):
    """The notifier's emails, planning state and position: the SQL both dialects share.

    `PostgresLedger` and `SQLiteLedger` supply the differences; reports.py what is told
    back to the invitation service.
    """

    placeholder = "%s"

    def __init__(self) -> None:
        self.tracking = self.table("notifier_tracking")
        self.state = self.table("notifier_state")
        self.emails = self.table("notifier_emails")

    # -- dialect hooks -------------------------------------------------------------------

    def table(self, name: str) -> str:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _sql(self, query: str) -> str:
        return query if self.placeholder == "%s" else query.replace("%s", self.placeholder)

    def _select_state(self, cur: Cursor, keys: list[str]) -> dict[str, Json]:
        raise NotImplementedError

    def _insert_emails(self, cur: Cursor, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def _put_state(self, cur: Cursor, rows: list[tuple[str, str]]) -> None:
        """Upsert (key, value) rows; the keys are distinct."""
        cur.executemany(
            self._sql(
                f"INSERT INTO {self.state} (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            rows,
        )

    def _claim(self, cur: Cursor, limit: int, now: float) -> list[Sequence[Any]]:
        raise NotImplementedError

    def _skip_superseded(self, cur: Cursor, superseded: dict[UUID, int]) -> None:
        """Mark `skipped` the pending invitation emails of each invitation planned before
        (position lower than) the event that superseded it; one statement per batch.

        An invitation email's position is that of its later half, and both halves are
        events of one transaction: a resend's own email is never before the resend."""
        raise NotImplementedError

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def _prefer_latency(self, cur: Cursor) -> None:
        """For a transaction that must commit fast rather than survive a server crash."""

    def _ddl_lock(self, cur: Cursor) -> None:
        """Serialise CREATE TABLE IF NOT EXISTS between processes starting together."""

    def _add_missing_columns(self, cur: Cursor) -> None:
        """Bring a ledger created by an earlier version up to ADDED_COLUMNS (nullable, so
        the rows it holds stay valid: they read as None)."""
        present = self._email_columns(cur)
        for column, sql_type in ADDED_COLUMNS:
            if column not in present:
                cur.execute(f"ALTER TABLE {self.emails} ADD COLUMN {column} {sql_type}")

    def _email_columns(self, cur: Cursor) -> set[str]:
        raise NotImplementedError

    def lease(self, *, holds_for: float) -> Lease:
        """Who plans and sends (leadership.py). An embedded database has one process: it
        always leads. `holds_for`: how long after its last confirmation a leader may
        still be sending (a new leader waits that long)."""
        return SoleLease()

    def close(self) -> None:
        raise NotImplementedError

    # -- schema --------------------------------------------------------------------------

    def create_tables(self) -> None:
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.tracking} "
            "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.state} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.emails} ("
            "message_key TEXT PRIMARY KEY, event_id TEXT NOT NULL, position BIGINT NOT NULL, "
            "kind TEXT NOT NULL, recipient TEXT NOT NULL, locale TEXT NOT NULL, tenant_id TEXT, "
            "context TEXT NOT NULL, invitation_id TEXT, link_generation INTEGER, "
            "temp_password_id TEXT, status TEXT NOT NULL DEFAULT 'pending', "
            "attempts INTEGER NOT NULL DEFAULT 0, "
            "next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0, last_error TEXT, "
            "subject TEXT, planned_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION, "
            "delivery_recorded INTEGER NOT NULL DEFAULT 0, "
            "event_at DOUBLE PRECISION, traceparent TEXT)",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_pending ON {self.emails} "
            "(position) WHERE status = 'pending'",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_unrecorded ON {self.emails} "
            "(position) WHERE status = 'sent' AND temp_password_id IS NOT NULL "
            "AND delivery_recorded = 0",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_recipient ON {self.emails} (recipient)",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_unreported_failures ON {self.emails} "
            "(position) WHERE status = 'failed' AND delivery_recorded = 0",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_unreported_invitations ON {self.emails} "
            f"(position) WHERE {UNREPORTED_INVITATION_EMAIL}",
        ]
        with self.transaction() as cur:
            self._ddl_lock(cur)
            for statement in statements:
                cur.execute(statement)
            self._add_missing_columns(cur)
            cur.execute(
                self._sql(
                    f"INSERT INTO {self.tracking} (name, position) VALUES (%s, 0) "
                    "ON CONFLICT (name) DO NOTHING"
                ),
                (TRACKING_NAME,),
            )

    # -- planning ------------------------------------------------------------------------

    def position(self) -> int:
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT position FROM {self.tracking} WHERE name = %s"),
                (TRACKING_NAME,),
            )
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def plan(self, step: Callable[[int, StateLoader], PlanStep | None]) -> PlanStep | None:
        """Run `step(position, load_state)` and commit its writes with the new position.

        The tracking row is locked for the transaction, so two planners never interleave.
        """
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT position FROM {self.tracking} WHERE name = %s")
                + self._for_update(),
                (TRACKING_NAME,),
            )
            row = cur.fetchone()
            position = 0 if row is None else int(row[0])

            def load(keys: Iterable[str]) -> dict[str, Json]:
                return self._select_state(cur, list(dict.fromkeys(keys)))

            result = step(position, load)
            if result is None:
                return None
            if result.puts:
                self._put_state(
                    cur, [(k, json.dumps(v, sort_keys=True)) for k, v in result.puts.items()]
                )
            if result.deletes:
                clause, params = self._keys_clause("key", sorted(result.deletes))
                cur.execute(self._sql(f"DELETE FROM {self.state} WHERE {clause}"), params)
            if result.superseded:
                # Only rows planned before the superseding event: a resend's own new email
                # (and any later one) stays pending, also when a replay or a reset re-plans
                # history over rows that already exist. Only `pending` rows: one in flight
                # right now is let go (a race of milliseconds; its outcome is recorded).
                self._skip_superseded(cur, result.superseded)
            if result.emails:
                planned_at = time.time()
                rows = [planned_row(e, planned_at, result.status) for e in result.emails]
                self._insert_emails(cur, rows)
            cur.execute(
                self._sql(f"UPDATE {self.tracking} SET position = %s WHERE name = %s"),
                (result.position, TRACKING_NAME),
            )
        return result

    def _for_update(self) -> str:
        return ""

    def reset_for_replay(self) -> None:
        """Forget the planning state and position; keep every email row (the dedupe).

        The next planning pass rebuilds the state from the whole event log and sends
        only what was never planned before (`invitations replay notifier`).
        """
        with self.transaction() as cur:
            cur.execute(f"DELETE FROM {self.state}")
            cur.execute(
                self._sql(f"UPDATE {self.tracking} SET position = 0 WHERE name = %s"),
                (TRACKING_NAME,),
            )

    # -- sending -------------------------------------------------------------------------

    def reclaim_interrupted(self) -> int:
        """Rows left in `sending` by a process that died: send them again (same Message-ID)."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    f"UPDATE {self.emails} SET status = %s, last_error = %s WHERE status = %s"
                ),
                (PENDING, INTERRUPTED, SENDING),
            )
            return max(0, int(getattr(cur, "rowcount", 0) or 0))

    def claim(self, limit: int, now: float) -> list[OutboxEmail]:
        """Mark up to `limit` due rows `sending` (the intent, committed before any send)."""
        if limit <= 0:
            return []
        with self.transaction() as cur:
            rows = self._claim(cur, limit, now)
        return sorted((outbox_email(r) for r in rows), key=lambda e: (e.position, str(e.key)))

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Record outcomes, each only if its row is still in the claim it names (see
        domain/delivery.py): safe to call from a notifier that is no longer leading."""
        sent = [(o.subject, o.at, str(o.key), o.attempt) for o in outcomes if isinstance(o, Sent)]
        retry = [
            (PENDING, o.at, o.error[:1000], str(o.key), SENDING, o.attempt)
            for o in outcomes
            if isinstance(o, Retry)
        ]
        final = [
            (FAILED, o.error[:1000], str(o.key), SENDING, o.attempt)
            for o in outcomes
            if isinstance(o, Failed)
        ] + [
            (SKIPPED, o.reason[:1000], str(o.key), SENDING, o.attempt)
            for o in outcomes
            if isinstance(o, Skipped)
        ]
        released = [
            (PENDING, str(o.key), SENDING, o.attempt) for o in outcomes if isinstance(o, Released)
        ]
        where = " WHERE message_key = %s AND status = %s AND attempts = %s"
        with self.transaction() as cur:
            self._prefer_latency(cur)
            if sent:
                self._record_sent(cur, sent)
            if retry:
                cur.executemany(
                    self._sql(
                        f"UPDATE {self.emails} SET status = %s, next_attempt_at = %s, "
                        "last_error = %s" + where
                    ),
                    retry,
                )
            if final:
                cur.executemany(
                    self._sql(f"UPDATE {self.emails} SET status = %s, last_error = %s" + where),
                    final,
                )
            if released:
                cur.executemany(
                    self._sql(
                        f"UPDATE {self.emails} SET status = %s, attempts = attempts - 1" + where
                    ),
                    released,
                )

    def _record_sent(self, cur: Cursor, sent: list[tuple[str, float, str, int]]) -> None:
        cur.executemany(
            self._sql(
                f"UPDATE {self.emails} SET status = '{SENT}', subject = %s, sent_at = %s, "
                f"last_error = NULL WHERE message_key = %s AND status = '{SENDING}' "
                "AND attempts = %s"
            ),
            sent,
        )

    def waiting(self) -> int:
        """Emails due or waiting for a retry (`pending`), read through its partial index."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT count(*) FROM {self.emails} WHERE status = %s"), (PENDING,)
            )
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def next_due(self) -> float | None:
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT min(next_attempt_at) FROM {self.emails} WHERE status = %s"),
                (PENDING,),
            )
            row = cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # -- reading, for operators, the walkthrough and tests --------------------------------

    def deliveries(
        self, *, tenant_id: str | None = None, recipient: str | None = None
    ) -> list[Delivery]:
        conditions, params = [], []
        if tenant_id is not None:
            conditions.append("tenant_id = %s")
            params.append(tenant_id)
        if recipient is not None:
            conditions.append("recipient = %s")
            params.append(recipient.strip().lower())
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT recipient, kind, status, subject, tenant_id, message_key, event_id, "
                    f"position, attempts, sent_at, last_error FROM {self.emails}{where} "
                    "ORDER BY position, recipient, kind"
                ),
                params,
            )
            rows = cur.fetchall()
        return [
            Delivery(
                recipient=r[0],
                kind=r[1],
                status=r[2],
                subject=r[3],
                tenant_id=r[4],
                message_key=UUID(str(r[5])),
                event_id=UUID(str(r[6])),
                position=int(r[7]),
                attempts=int(r[8]),
                sent_at=None if r[9] is None else float(r[9]),
                last_error=r[10],
            )
            for r in rows
        ]

    def status_counts(self) -> dict[str, int]:
        with self.transaction() as cur:
            cur.execute(f"SELECT status, count(*) FROM {self.emails} GROUP BY status")
            rows = cur.fetchall()
        return {r[0]: int(r[1]) for r in rows}
