"""The notifier's email rows as Python values, and the column lists that read and write them.

`OutboxEmail` is a row claimed for sending, `Delivery` a row as operators read it, and
`PlanStep` one planning transaction's writes (see common.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from services.notifier.domain.delivery import PENDING
from services.notifier.domain.emails import PlannedEmail

Json = dict[str, Any]


class Cursor(Protocol):
    """What the shared SQL needs of a cursor (psycopg's or sqlite3's)."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, query: Any, params_seq: Any, /) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


@dataclass(frozen=True)
class OutboxEmail:
    """A row claimed for sending."""

    key: UUID
    event_id: UUID
    position: int
    kind: str
    recipient: str
    locale: str
    tenant_id: str | None
    context: Json
    invitation_id: UUID | None
    link_generation: int | None
    temp_password_id: UUID | None
    attempts: int
    last_error: str | None
    # When the event occurred (POSIX seconds) and its command's W3C trace context; None
    # for rows planned before these columns existed.
    event_at: float | None = None
    traceparent: str | None = None


@dataclass(frozen=True)
class Delivery:
    """What one person received (or is due to): for the walkthrough and operators."""

    recipient: str
    kind: str
    status: str
    subject: str | None
    tenant_id: str | None
    message_key: UUID
    event_id: UUID
    position: int
    attempts: int
    sent_at: float | None
    last_error: str | None


@dataclass
class PlanStep:
    """One planning transaction's writes."""

    position: int
    events: int
    emails: list[PlannedEmail] = field(default_factory=list)
    puts: dict[str, Json] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)
    # New rows are `pending` (to send); a rebuild records history's as `replayed`.
    status: str = PENDING
    # Invitation -> position of the batch's last event that superseded it: its invitation
    # emails planned before that position and still pending must not be sent (dead links).
    superseded: dict[UUID, int] = field(default_factory=dict)


# Reads the planning state of the given keys (those found) inside a planning transaction.
StateLoader = Callable[[Iterable[str]], dict[str, Json]]

# Sent invitation emails that carry no password, still to report (the partial index and
# its query say it identically, so that PostgreSQL and SQLite use the index).
UNREPORTED_INVITATION_EMAIL = (
    "status = 'sent' AND delivery_recorded = 0 AND temp_password_id IS NULL "
    "AND invitation_id IS NOT NULL AND kind IN ('invitation_linked', 'invitation_manual')"
)

# The columns of `outbox_email`, in its order.
EMAIL_COLUMNS = (
    "message_key, event_id, position, kind, recipient, locale, tenant_id, context, "
    "invitation_id, link_generation, temp_password_id, attempts, last_error, event_at, "
    "traceparent"
)


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def outbox_email(row: Sequence[Any]) -> OutboxEmail:
    return OutboxEmail(
        key=UUID(str(row[0])),
        event_id=UUID(str(row[1])),
        position=int(row[2]),
        kind=row[3],
        recipient=row[4],
        locale=row[5],
        tenant_id=row[6],
        context=json.loads(row[7]),
        invitation_id=_uuid(row[8]),
        link_generation=None if row[9] is None else int(row[9]),
        temp_password_id=_uuid(row[10]),
        attempts=int(row[11]),
        last_error=row[12],
        event_at=None if row[13] is None else float(row[13]),
        traceparent=row[14],
    )


# The columns of `planned_row`, in its order.
PLANNED_COLUMNS = (
    "message_key, event_id, position, kind, recipient, locale, tenant_id, context, "
    "invitation_id, link_generation, temp_password_id, planned_at, status, event_at, traceparent"
)


def planned_row(email: PlannedEmail, planned_at: float, status: str) -> tuple[Any, ...]:
    return (
        str(email.key),
        str(email.event_id),
        email.position,
        str(email.kind),
        email.recipient,
        email.locale,
        email.tenant_id,
        json.dumps(dict(email.context), sort_keys=True),
        None if email.invitation_id is None else str(email.invitation_id),
        email.link_generation,
        None if email.temp_password_id is None else str(email.temp_password_id),
        planned_at,
        status,
        email.event_at,
        email.traceparent,
    )
