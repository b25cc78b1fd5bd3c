"""The active administrators of one tenant: where the last-administrator rule is decided.

Each membership decides its own changes, but "the tenant keeps at least one active
administrator" (rule 34) is about all of them at once: two administrators removing each
other at the same moment must not both succeed. So every change of who administers a
tenant (an administrator's invitation accepted, a role changed to or from administrator,
an administrator removed) also goes through this one stream per tenant; two such commands
then conflict on it, and the second is decided again on the state the first left
(application/batches.py).

The roster only ever holds people who really are active administrators, so the guard
may refuse too much, never too little: administrators who joined before this stream
existed are not in it until their membership changes; with none of them listed, the
last-administrator guard refuses to remove or demote any administrator (it cannot tell
that another remains) until another one is promoted or accepts an invitation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import administrators_uuid
from shared.contract.codes import RejectionCode

TOPIC = "invitations:Administrators"


class Administrators(Aggregate):
    TOPIC = TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC}.Event"

    @staticmethod
    def create_id(tenant_id: str) -> UUID:
        return administrators_uuid(tenant_id)

    @event("Created", topic=f"{TOPIC}.Created")
    def __init__(
        self,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        assert tenant_id is not None
        self.tenant_id: str = tenant_id
        self.emails: list[str] = []

    @classmethod
    def start(cls, tenant_id: str, cause: Cause) -> Administrators:
        return cls(**cause.for_tenant(tenant_id).stamp())

    def check_can_lose(self, email: str) -> None:
        """Refused `last_administrator` unless another active administrator remains."""
        if not [other for other in self.emails if other != email]:
            raise DomainError(
                RejectionCode.LAST_ADMINISTRATOR,
                "the tenant's last active administrator can be neither removed nor demoted",
                {"email": email},
            )

    def join(self, email: str, cause: Cause) -> None:
        if email not in self.emails:
            self._joined(email=email, **self._stamp(cause))

    @event("Joined", topic=f"{TOPIC}.Joined")
    def _joined(
        self,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str,
        sender: str | None = None,
    ) -> None:
        self.emails = sorted([*self.emails, email])

    def leave(self, email: str, cause: Cause) -> None:
        if email in self.emails:
            self._left(email=email, **self._stamp(cause))

    @event("Left", topic=f"{TOPIC}.Left")
    def _left(
        self,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str,
        sender: str | None = None,
    ) -> None:
        self.emails = [e for e in self.emails if e != email]

    def _stamp(self, cause: Cause) -> dict[str, Any]:
        return cause.for_tenant(self.tenant_id).stamp()
