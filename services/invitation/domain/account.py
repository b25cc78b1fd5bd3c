"""Account: a person's global identity, keyed by normalised email.

It holds the one live temporary password (if any): its slow hash and lifecycle. The
sealed copy for delivery lives outside the event store (see eventstore/side_tables.py),
so destroying it is final even though the events are immutable (rule 13).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import account_uuid
from services.invitation.domain.names import check_name
from shared.contract.codes import RejectionCode

TOPIC = "invitations:Account"


class Account(Aggregate):
    TOPIC = TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC}.Event"

    @staticmethod
    def create_id(email: str) -> UUID:
        return account_uuid(email)

    @event("Created", topic=f"{TOPIC}.Created")
    def __init__(
        self,
        email: str,
        origin: str,
        display_name: str | None,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.email = email
        self.origin = origin  # "registered" elsewhere, or "invited" (created by an invitation)
        self.display_name = display_name
        self.password_set = origin == "registered"
        self.temp_password_id: UUID | None = None
        self.temp_invitation_id: UUID | None = None
        self.temp_tenant_id: str | None = None
        self.temp_valid_until: datetime | None = None
        self.temp_delivery: str | None = None
        self.temp_hash: str | None = None
        self.temp_active = False  # usable to sign in
        self.temp_sealed = False  # a sealed copy still exists for delivery

    @classmethod
    def register(cls, email: str, display_name: str | None, cause: Cause) -> Account:
        check_name("display_name", display_name)
        return cls(email=email, origin="registered", display_name=display_name, **cause.stamp())

    @classmethod
    def create_for_invitation(cls, email: str, display_name: str | None, cause: Cause) -> Account:
        return cls(email=email, origin="invited", display_name=display_name, **cause.stamp())

    @property
    def has_unused_temp_password_from(self) -> UUID | None:
        """The invitation whose temporary password is still live and never used, if any."""
        if self.temp_active and not self.password_set:
            return self.temp_invitation_id
        return None

    @property
    def can_sign_in(self) -> bool:
        """A password of its own, or a live temporary one."""
        return self.password_set or self.temp_active

    # -- temporary password lifecycle ---------------------------------------------------

    def issue_temp_password(
        self,
        temp_password_id: UUID,
        invitation_id: UUID,
        password_hash: str,
        valid_until: datetime,
        delivery: str,
        cause: Cause,
    ) -> None:
        self._temp_password_issued(
            temp_password_id=temp_password_id,
            invitation_id=invitation_id,
            account_id=self.id,
            email=self.email,
            password_hash=password_hash,
            valid_until=valid_until,
            delivery=delivery,
            **cause.stamp(),
        )

    @event("TempPasswordIssued", topic=f"{TOPIC}.TempPasswordIssued")
    def _temp_password_issued(
        self,
        temp_password_id: UUID,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        password_hash: str,
        valid_until: datetime,
        delivery: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.temp_password_id = temp_password_id
        self.temp_invitation_id = invitation_id
        self.temp_tenant_id = tenant_id
        self.temp_valid_until = valid_until
        self.temp_delivery = delivery
        self.temp_hash = password_hash
        self.temp_active = True
        self.temp_sealed = True

    def record_delivered(self, temp_password_id: UUID, cause: Cause) -> bool:
        """The automatic email went out: destroy the sealed copy. Repeats change nothing."""
        if (
            temp_password_id != self.temp_password_id
            or not self.temp_sealed
            or self.temp_delivery != "automatic"  # a manual one is only ever retrieved
        ):
            return False
        self._delivered(**self._temp_fields(), delivery="automatic", **self._stamp(cause))
        return True

    def retrieve_manual(self, temp_password_id: UUID, cause: Cause) -> None:
        """An administrator takes the manual password: allowed exactly once."""
        if (
            temp_password_id != self.temp_password_id
            or not self.temp_sealed
            or self.temp_delivery != "manual"
        ):
            raise DomainError(
                RejectionCode.TEMP_PASSWORD_NOT_AVAILABLE,
                "this temporary password was already retrieved, expired or replaced",
                {"temp_password_id": str(temp_password_id)},
            )
        self._retrieved(**self._temp_fields(), **self._stamp(cause))

    @event("TempPasswordRetrieved", topic=f"{TOPIC}.TempPasswordRetrieved")
    def _retrieved(
        self,
        temp_password_id: UUID,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.temp_sealed = False

    # Also how retrievals were recorded before `TempPasswordRetrieved` (delivery "manual").
    @event("TempPasswordDelivered", topic=f"{TOPIC}.TempPasswordDelivered")
    def _delivered(
        self,
        temp_password_id: UUID,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        delivery: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.temp_sealed = False

    def expire_temp_password(self, temp_password_id: UUID, cause: Cause) -> bool:
        if temp_password_id != self.temp_password_id or not self.temp_active:
            return False  # replaced, used or already expired: nothing left to do
        assert self.temp_valid_until is not None
        if cause.at < self.temp_valid_until:
            raise DomainError(
                RejectionCode.NOT_DUE,
                "the temporary password is still valid",
                {"due_at": self.temp_valid_until.isoformat()},
            )
        self._expired(**self._temp_fields(), **self._stamp(cause))
        return True

    @event("TempPasswordExpired", topic=f"{TOPIC}.TempPasswordExpired")
    def _expired(
        self,
        temp_password_id: UUID,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.temp_active = False
        self.temp_sealed = False

    def revoke_temp_password(self, cause: Cause) -> None:
        """Withdraw the live temporary password (its invitation was revoked or re-sent)."""
        if not self.temp_active:
            return
        self._revoked(**self._temp_fields(), **self._stamp(cause))

    @event("TempPasswordRevoked", topic=f"{TOPIC}.TempPasswordRevoked")
    def _revoked(
        self,
        temp_password_id: UUID,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.temp_active = False
        self.temp_sealed = False

    def record_password_changed(self, cause: Cause) -> None:
        self._password_changed(account_id=self.id, email=self.email, **cause.stamp())

    @event("PasswordChanged", topic=f"{TOPIC}.PasswordChanged")
    def _password_changed(
        self,
        account_id: UUID,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.password_set = True
        self.temp_active = False
        self.temp_sealed = False

    # -- helpers -------------------------------------------------------------------------

    def _temp_fields(self) -> dict[str, Any]:
        return {
            "temp_password_id": self.temp_password_id,
            "invitation_id": self.temp_invitation_id,
            "account_id": self.id,
            "email": self.email,
        }

    def _stamp(self, cause: Cause) -> dict[str, Any]:
        # Temporary-password events belong to the tenant whose invitation issued them.
        return cause.for_tenant(self.temp_tenant_id).stamp()
