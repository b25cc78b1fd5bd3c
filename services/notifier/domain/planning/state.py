"""What planning remembers of past events, and the keys it is kept under.

State keys:
- `tenant:{tenant_id}`: `extra` (admin_notification_emails), `admins` (active
  administrators -> their locale), `one_admin_reminded`;
- `inv:{invitation_id}`: what the emails say about an invitation (email, role, locale...);
- `member:{tenant_id}:{email}`: the invitee's locale and name, for contractor reminders;
- `pending:{invitation_id}:{correlation_id}`: one half of an invitation email. The
  variant (linked / automatic / manual) is decided by two events of one transaction
  (UserInvited or InvitationResent, plus AccountLinked or TempPasswordIssued), in either
  order; the first is kept here until the second arrives;
- `batch:{batch_id}`: manual passwords issued by a mass invite, told once it completes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from services.notifier.domain.emails import normalise_address
from shared.contract import EventEnvelope

Json = dict[str, Any]


class State(Protocol):
    """The notifier's memory of past events. `put` after every change of a value."""

    def get(self, key: str) -> Json | None: ...

    def put(self, key: str, value: Json) -> None: ...

    def delete(self, key: str) -> None: ...


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def tenant_key(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def invitation_key(invitation_id: UUID) -> str:
    return f"inv:{invitation_id}"


def member_key(tenant_id: str, email: str) -> str:
    return f"member:{tenant_id}:{normalise_address(email)}"


def pending_key(invitation_id: UUID, correlation_id: str | None) -> str:
    return f"pending:{invitation_id}:{correlation_id or ''}"


def batch_key(batch_id: UUID | str) -> str:
    return f"batch:{batch_id}"


def keys_for(envelope: EventEnvelope) -> list[str]:
    """The state an event will read, so a batch can load it in one query (a hint only)."""
    data, tenant = envelope.data, envelope.tenant_id
    keys = [tenant_key(tenant)] if tenant else []
    invitation_id = data.get("invitation_id")
    if invitation_id:
        keys.append(f"inv:{invitation_id}")
        keys.append(f"pending:{invitation_id}:{envelope.correlation_id or ''}")
    email = data.get("email")
    if tenant and isinstance(email, str):
        keys.append(member_key(tenant, email))
    if data.get("batch_id"):
        keys.append(batch_key(data["batch_id"]))
    return keys
