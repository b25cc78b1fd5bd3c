"""An email the notifier could not deliver (rule 35), recorded once per email.

One short stream per undeliverable email, keyed by the notifier's message key: a repeated
report finds it already there and records nothing. It carries the tenant and the
recipient (`email`), so the stream index lists it in that person's and that tenant's
history (eventstore/chain.py).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause
from services.invitation.domain.ids import notification_failure_uuid

TOPIC = "invitations:NotificationFailure"


class NotificationFailure(Aggregate):
    TOPIC = TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC}.Event"

    @staticmethod
    def create_id(message_key: UUID) -> UUID:
        return notification_failure_uuid(message_key)

    @event("Recorded", topic=f"{TOPIC}.Recorded")
    def __init__(
        self,
        message_key: UUID,
        kind: str,
        email: str,
        invitation_id: UUID | None,
        reason: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.kind = kind
        self.email = email
        self.invitation_id = invitation_id
        self.reason = reason

    @classmethod
    def record(
        cls,
        *,
        message_key: UUID,
        kind: str,
        recipient: str,
        invitation_id: UUID | None,
        reason: str,
        cause: Cause,
    ) -> NotificationFailure:
        return cls(
            message_key=message_key,
            kind=kind,
            email=recipient,
            invitation_id=invitation_id,
            reason=reason,
            **cause.stamp(),
        )
