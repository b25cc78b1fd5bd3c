"""Membership: one account's access to one tenant, keyed by (tenant, email).

It is the uniqueness guard of rule 6 (one pending invitation, no re-invite of an active
member) and carries a contractor's end date, reminders and expiry (rules 20-22).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import account_uuid, membership_uuid
from shared.contract.codes import RejectionCode

TOPIC = "invitations:Membership"
MAX_ACCESS_YEARS = 5  # "at most 5 years ahead", in calendar years

NONE, INVITED, ACTIVE, EXPIRED = "none", "invited", "active", "expired"
ROLES = ("user", "administrator", "contractor")


def check_role_and_expiry(
    role: str, access_expires_at: datetime | None, contractor_enabled: bool, now: datetime
) -> None:
    """Rules 2 and 3, before any lookup."""
    if role not in ROLES:
        raise DomainError(
            RejectionCode.INVALID_ROLE, f"role must be one of {', '.join(ROLES)}", {"role": role}
        )
    if role != "contractor":
        if access_expires_at is not None:
            raise DomainError(
                RejectionCode.EXPIRY_NOT_ALLOWED, "only contractors have an access end date"
            )
        return
    if not contractor_enabled:
        raise DomainError(
            RejectionCode.CONTRACTOR_DISABLED, "contractor invites are disabled for this tenant"
        )
    if access_expires_at is None:
        raise DomainError(
            RejectionCode.CONTRACTOR_EXPIRY_REQUIRED, "a contractor needs access_expires_at"
        )
    check_access_end(access_expires_at, now)


def check_access_end(access_expires_at: datetime, now: datetime) -> None:
    if access_expires_at.tzinfo is None:
        raise DomainError(RejectionCode.INVALID_COMMAND, "access_expires_at needs a timezone")
    if access_expires_at <= now:
        raise DomainError(RejectionCode.EXPIRY_IN_PAST, "access_expires_at is not in the future")
    if access_expires_at > years_after(now, MAX_ACCESS_YEARS):
        raise DomainError(RejectionCode.EXPIRY_TOO_FAR, "access_expires_at is over 5 years ahead")


def years_after(moment: datetime, years: int) -> datetime:
    """The same calendar instant `years` later (29 February becomes 28 February).

    A fixed number of days is wrong at the boundary: five years span one or two leap days.
    """
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


class Membership(Aggregate):
    TOPIC = TOPIC

    class Event(Aggregate.Event):
        TOPIC = f"{TOPIC}.Event"

    @staticmethod
    def create_id(tenant_id: str, email: str) -> UUID:
        return membership_uuid(tenant_id, email)

    @event("Created", topic=f"{TOPIC}.Created")
    def __init__(
        self,
        email: str,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str,
        sender: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.email = email
        self.status = NONE
        self.role: str | None = None
        self.invitation_id: UUID | None = None
        self.access_expires_at: datetime | None = None
        self.reminded_offsets: list[float] = []  # seconds, for the current end date

    @classmethod
    def start(cls, tenant_id: str, email: str, cause: Cause) -> Membership:
        stamp = cause.for_tenant(tenant_id).stamp()
        return cls(email=email, **stamp)

    @property
    def account_id(self) -> UUID:
        return account_uuid(self.email)

    def check_invitable(self) -> None:
        if self.status == INVITED:
            raise DomainError(
                RejectionCode.INVITATION_PENDING,
                "this email already has a pending invitation",
                {"invitation_id": str(self.invitation_id)},
            )
        if self.status == ACTIVE:
            raise DomainError(
                RejectionCode.ALREADY_MEMBER, "this email is already a member of the tenant"
            )

    def offer(
        self, invitation_id: UUID, role: str, access_expires_at: datetime | None, cause: Cause
    ) -> None:
        self.check_invitable()
        self._offered(
            invitation_id=invitation_id,
            role=role,
            access_expires_at=access_expires_at,
            **self._stamp(cause),
        )

    @event("Offered", topic=f"{TOPIC}.Offered")
    def _offered(
        self,
        invitation_id: UUID,
        role: str,
        access_expires_at: datetime | None,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = INVITED
        self.role = role
        self.invitation_id = invitation_id
        self.access_expires_at = access_expires_at
        self.reminded_offsets = []

    def check_reofferable(self, invitation_id: UUID) -> None:
        """A lapsed invitation may be resent only if nothing newer took its place."""
        if self.status == EXPIRED and self.invitation_id == invitation_id:
            raise DomainError(
                RejectionCode.INVITATION_NOT_PENDING,
                "the contractor's access has ended; invite them again instead",
                {"invitation_id": str(invitation_id)},
            )
        if self.invitation_id != invitation_id:
            self.check_invitable()

    def reoffer(self, invitation_id: UUID, cause: Cause) -> None:
        """Back to invited after a resend of a lapsed invitation."""
        if self.status == INVITED and self.invitation_id == invitation_id:
            return
        self.check_reofferable(invitation_id)
        assert self.role is not None
        self._offered(
            invitation_id=invitation_id,
            role=self.role,
            access_expires_at=self.access_expires_at,
            **self._stamp(cause),
        )

    def withdraw(self, invitation_id: UUID, cause: Cause) -> None:
        """The invitation was revoked or lapsed: no pending offer any more."""
        if self.status != INVITED or self.invitation_id != invitation_id:
            return
        self._withdrawn(invitation_id=invitation_id, **self._stamp(cause))

    @event("Withdrawn", topic=f"{TOPIC}.Withdrawn")
    def _withdrawn(
        self,
        invitation_id: UUID,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = NONE

    def activate(self, invitation_id: UUID, cause: Cause) -> None:
        self._activated(invitation_id=invitation_id, **self._stamp(cause))

    @event("Activated", topic=f"{TOPIC}.Activated")
    def _activated(
        self,
        invitation_id: UUID,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = ACTIVE

    # -- contractors -------------------------------------------------------------------

    def check_contractor(self) -> datetime:
        if self.role != "contractor" or self.status not in (INVITED, ACTIVE):
            raise DomainError(
                RejectionCode.NOT_A_CONTRACTOR,
                "no pending or active contractor with this email in the tenant",
                {"status": self.status, "role": self.role},
            )
        assert self.access_expires_at is not None
        return self.access_expires_at

    def change_contractor_expiry(self, access_expires_at: datetime, cause: Cause) -> None:
        previous = self.check_contractor()
        check_access_end(access_expires_at, cause.at)
        self._expiry_changed(
            account_id=self.account_id,
            email=self.email,
            access_expires_at=access_expires_at,
            previous_access_expires_at=previous,
            **self._stamp(cause),
        )

    @event("ContractorExpiryChanged", topic=f"{TOPIC}.ContractorExpiryChanged")
    def _expiry_changed(
        self,
        account_id: UUID,
        email: str,
        access_expires_at: datetime,
        previous_access_expires_at: datetime,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.access_expires_at = access_expires_at
        self.reminded_offsets = []

    def remind_expiry(self, offset: timedelta, cause: Cause) -> bool:
        """Rule 21: at most one reminder per offset and end date; never before its time."""
        end = self.check_contractor()
        if offset.total_seconds() in self.reminded_offsets:
            return False
        due = end - offset
        if cause.at < due:
            raise DomainError(
                RejectionCode.NOT_DUE, "the reminder is not due yet", {"due_at": due.isoformat()}
            )
        if cause.at >= end:
            return False  # too late to remind: the expiry itself is due
        self._expiry_approaching(
            account_id=self.account_id,
            email=self.email,
            access_expires_at=end,
            offset=offset.total_seconds(),
            **self._stamp(cause),
        )
        return True

    @event("ContractorExpiryApproaching", topic=f"{TOPIC}.ContractorExpiryApproaching")
    def _expiry_approaching(
        self,
        account_id: UUID,
        email: str,
        access_expires_at: datetime,
        offset: float,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.reminded_offsets = [*self.reminded_offsets, offset]

    def expire_contractor(self, cause: Cause) -> bool:
        """Rule 20: the access ends; kept for audit, never silently restored."""
        if self.status == EXPIRED:
            return False
        end = self.check_contractor()
        if cause.at < end:
            raise DomainError(
                RejectionCode.NOT_DUE,
                "the contractor's access has not ended yet",
                {"due_at": end.isoformat()},
            )
        self._expired(
            account_id=self.account_id,
            email=self.email,
            access_expires_at=end,
            expired_at=cause.at,
            **self._stamp(cause),
        )
        return True

    @event("ContractorExpired", topic=f"{TOPIC}.ContractorExpired")
    def _expired(
        self,
        account_id: UUID,
        email: str,
        access_expires_at: datetime,
        expired_at: datetime,
        timestamp: datetime,
        actor: str,
        correlation_id: str,
        tenant_id: str | None,
        sender: str | None = None,
    ) -> None:
        self.status = EXPIRED

    def _stamp(self, cause: Cause) -> dict[str, Any]:
        return cause.for_tenant(self.tenant_id).stamp()
