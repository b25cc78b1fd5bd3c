"""Roles and a contractor's end date (rules 2, 3 and 34): checks shared by an invitation
and a change of role."""

from __future__ import annotations

from datetime import datetime

from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode

MAX_ACCESS_YEARS = 5  # "at most 5 years ahead", in calendar years

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
