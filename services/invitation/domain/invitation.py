"""Invitation: a pending offer of membership, from `pending` to accepted, revoked or lapsed.

The link's token is never stored: only its hash and the link generation it was made
for, so a resend (a new generation) invalidates every older link.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.names import check_name
from shared.contract.codes import RejectionCode

TOPIC = "invitations:Invitation"
MAX_RESENDS_PER_HOUR = 3
_HOUR = timedelta(hours=1)

PENDING, ACCEPTED, REVOKED, LAPSED = "pending", "accepted", "revoked", "lapsed"

_STATUS_REFUSAL = {
    ACCEPTED: RejectionCode.INVITATION_ALREADY_ACCEPTED,
    REVOKED: RejectionCode.INVITATION_REVOKED,
    LAPSED: RejectionCode.INVITATION_LAPSED,
}


class Invitation(Aggregate):
    TOPIC = TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC}.Event"

    @staticmethod
    def create_id(invitation_id: UUID) -> UUID:
        return invitation_id

    @event("Invited", topic=f"{TOPIC}.Invited")
    def __init__(
        self,
        invitation_id: UUID,
        email: str,
        role: str,
        access_expires_at: datetime | None,
        invitation_expires_at: datetime,
        invited_by: str,
        batch_id: UUID | None,
        display_name: str | None,
        locale: str | None,
        account_id: UUID,
        token_hash: str,
        link_generation: int,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        inviter_name: str | None = None,
        sender: str | None = None,
    ) -> None:
        assert tenant_id is not None
        self.tenant_id: str = tenant_id
        self.email = email
        self.role = role
        self.access_expires_at = access_expires_at
        self.expires_at = invitation_expires_at
        self.invited_by = invited_by
        self.batch_id = batch_id
        self.display_name = display_name
        self.inviter_name = inviter_name
        self.locale = locale
        self.account_id = account_id
        self.token_hash = token_hash
        self.link_generation = link_generation
        self.status = PENDING
        self.resent_at: list[datetime] = []
        self.email_sent_generation = 0  # the last link whose email was handed over

    @classmethod
    def invite(
        cls,
        *,
        invitation_id: UUID,
        email: str,
        role: str,
        access_expires_at: datetime | None,
        ttl: timedelta,
        batch_id: UUID | None,
        display_name: str | None,
        locale: str | None,
        account_id: UUID,
        token_hash: str,
        cause: Cause,
        inviter_name: str | None = None,
    ) -> Invitation:
        check_name("display_name", display_name)
        check_name("inviter_name", inviter_name)
        return cls(
            invitation_id=invitation_id,
            email=email,
            role=role,
            access_expires_at=access_expires_at,
            invitation_expires_at=cause.at + ttl,
            invited_by=cause.actor,
            batch_id=batch_id,
            display_name=display_name,
            inviter_name=inviter_name,
            locale=locale,
            account_id=account_id,
            token_hash=token_hash,
            link_generation=1,
            **cause.stamp(),
        )

    def record_account_linked(self, cause: Cause) -> None:
        self._account_linked(
            invitation_id=self.id, account_id=self.account_id, email=self.email, **cause.stamp()
        )

    @event("AccountLinked", topic=f"{TOPIC}.AccountLinked")
    def _account_linked(
        self,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        pass

    # -- resend ----------------------------------------------------------------------

    def check_resendable(self, now: datetime) -> None:
        if self.status not in (PENDING, LAPSED):
            raise DomainError(
                RejectionCode.INVITATION_NOT_PENDING,
                f"the invitation is {self.status}",
                {"invitation_id": str(self.id), "status": self.status},
            )
        recent = [t for t in self.resent_at if now - t < _HOUR]
        if len(recent) >= MAX_RESENDS_PER_HOUR:
            retry_at = min(recent) + _HOUR
            raise DomainError(
                RejectionCode.RESEND_RATE_LIMITED,
                f"at most {MAX_RESENDS_PER_HOUR} resends per invitation per hour",
                {"invitation_id": str(self.id), "retry_after": retry_at.isoformat()},
            )

    def resend(
        self, ttl: timedelta, token_hash: str, temp_password_reissued: bool, cause: Cause
    ) -> None:
        self.check_resendable(cause.at)
        self._resent(
            invitation_id=self.id,
            invitation_expires_at=cause.at + ttl,
            temp_password_reissued=temp_password_reissued,
            token_hash=token_hash,
            link_generation=self.link_generation + 1,
            **self._stamp(cause),
        )

    @event("Resent", topic=f"{TOPIC}.Resent")
    def _resent(
        self,
        invitation_id: UUID,
        invitation_expires_at: datetime,
        temp_password_reissued: bool,
        token_hash: str,
        link_generation: int,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = PENDING
        self.expires_at = invitation_expires_at
        self.token_hash = token_hash
        self.link_generation = link_generation
        self.resent_at = [*self.resent_at, timestamp][-MAX_RESENDS_PER_HOUR:]

    # -- the invitation email ------------------------------------------------------------

    def record_email_sent(self, link_generation: int, cause: Cause) -> bool:
        """The email of link `link_generation` went out (linked or manual: no password in
        it). Only the current link's counts, once; a late report of an older one is no
        news, and neither is a repeat."""
        if link_generation != self.link_generation or self.email_sent_generation >= (
            link_generation
        ):
            return False
        self._email_sent(
            invitation_id=self.id, link_generation=link_generation, **self._stamp(cause)
        )
        return True

    @event("EmailSent", topic=f"{TOPIC}.EmailSent")
    def _email_sent(
        self,
        invitation_id: UUID,
        link_generation: int,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.email_sent_generation = link_generation

    # -- revoke ----------------------------------------------------------------------

    def check_revocable(self) -> None:
        if self.status not in (PENDING, LAPSED):
            raise DomainError(
                RejectionCode.INVITATION_NOT_PENDING,
                f"the invitation is {self.status}",
                {"invitation_id": str(self.id), "status": self.status},
            )

    def revoke(self, reason: str | None, cause: Cause) -> None:
        self.check_revocable()
        self._revoked(invitation_id=self.id, reason=reason, **self._stamp(cause))

    @event("Revoked", topic=f"{TOPIC}.Revoked")
    def _revoked(
        self,
        invitation_id: UUID,
        reason: str | None,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = REVOKED

    # -- lapse -----------------------------------------------------------------------

    def lapse(self, cause: Cause, *, access_ended: bool = False) -> bool:
        """The link expired unused (rule 16), or the contractor's access ended (rule 20).

        Refused `not_due` before the link's expiry; a repeat changes nothing.
        """
        if self.status != PENDING:
            return False
        if cause.at < self.expires_at and not access_ended:
            raise DomainError(
                RejectionCode.NOT_DUE,
                "the invitation link is still valid",
                {"due_at": self.expires_at.isoformat()},
            )
        self._lapsed(invitation_id=self.id, **self._stamp(cause))
        return True

    @event("Lapsed", topic=f"{TOPIC}.Lapsed")
    def _lapsed(
        self,
        invitation_id: UUID,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = LAPSED

    # -- accept ----------------------------------------------------------------------

    def acceptance_refusal(self, token_hash: str, email: str, now: datetime) -> DomainError | None:
        """Why this token and signed-in email cannot accept now, or None if they can."""
        if token_hash != self.token_hash:
            return DomainError(RejectionCode.INVALID_TOKEN, "this link is no longer valid")
        if self.status in _STATUS_REFUSAL:
            return DomainError(_STATUS_REFUSAL[self.status], f"the invitation is {self.status}")
        if now >= self.expires_at:
            return DomainError(RejectionCode.INVITATION_LAPSED, "the invitation link expired")
        if self.access_expires_at is not None and now >= self.access_expires_at:
            # The expiry service may not have run yet; the access has ended all the same.
            return DomainError(RejectionCode.INVITATION_LAPSED, "the contractor's access ended")
        if email != self.email:
            return DomainError(
                RejectionCode.EMAIL_MISMATCH,
                "signed in with a different email than the one invited",
            )
        return None

    def refuse_acceptance(self, reason: str, cause: Cause) -> None:
        self._acceptance_refused(invitation_id=self.id, reason=reason, **self._stamp(cause))

    @event("AcceptanceRefused", topic=f"{TOPIC}.AcceptanceRefused")
    def _acceptance_refused(
        self,
        invitation_id: UUID,
        reason: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        pass

    def accept(self, cause: Cause) -> None:
        self._accepted(
            invitation_id=self.id,
            account_id=self.account_id,
            email=self.email,
            role=self.role,
            **self._stamp(cause),
        )

    @event("Accepted", topic=f"{TOPIC}.Accepted")
    def _accepted(
        self,
        invitation_id: UUID,
        account_id: UUID,
        email: str,
        role: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = ACCEPTED

    def change_access_expiry(self, access_expires_at: datetime, cause: Cause) -> None:
        """Keeps the contractor's end date on the invitation in step (rule 22)."""
        self._access_expiry_changed(access_expires_at=access_expires_at, **self._stamp(cause))

    @event("AccessExpiryChanged", topic=f"{TOPIC}.AccessExpiryChanged")
    def _access_expiry_changed(
        self,
        access_expires_at: datetime,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.access_expires_at = access_expires_at

    def _stamp(self, cause: Cause) -> dict[str, Any]:
        return cause.for_tenant(self.tenant_id).stamp()
