"""Rules 2, 3, 6, 20-22 on the membership: roles, access end dates, one pending offer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.membership import (
    Membership,
    check_access_end,
    check_role_and_expiry,
)
from shared.contract.codes import RejectionCode
from tests.fakes import T0

MakeCause = Callable[..., Cause]
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _refusal(check: Callable[[], object]) -> RejectionCode:
    with pytest.raises(DomainError) as refused:
        check()
    return refused.value.code


# -- rules 2 and 3: role and access end date -------------------------------------------


@pytest.mark.parametrize("role", ["user", "administrator"])
def test_user_and_administrator_need_no_end_date(role: str) -> None:
    check_role_and_expiry(role, None, contractor_enabled=False, now=T0)


@pytest.mark.parametrize("role", ["owner", "Admin", "USER", "", "contractor "])
def test_unknown_role_is_refused_invalid_role(role: str) -> None:
    code = _refusal(lambda: check_role_and_expiry(role, None, True, T0))
    assert code == RejectionCode.INVALID_ROLE


def test_contractor_is_refused_while_contractors_are_disabled() -> None:
    code = _refusal(lambda: check_role_and_expiry("contractor", T0 + DAY, False, T0))
    assert code == RejectionCode.CONTRACTOR_DISABLED


def test_contractor_without_end_date_is_refused_contractor_expiry_required() -> None:
    code = _refusal(lambda: check_role_and_expiry("contractor", None, True, T0))
    assert code == RejectionCode.CONTRACTOR_EXPIRY_REQUIRED


@pytest.mark.parametrize("role", ["user", "administrator"])
def test_end_date_on_another_role_is_refused_expiry_not_allowed(role: str) -> None:
    code = _refusal(lambda: check_role_and_expiry(role, T0 + DAY, True, T0))
    assert code == RejectionCode.EXPIRY_NOT_ALLOWED


def test_contractor_with_a_future_end_date_is_accepted() -> None:
    check_role_and_expiry("contractor", T0 + 30 * DAY, True, T0)


@pytest.mark.parametrize("end", [T0, T0 - SECOND, T0 - 365 * DAY])
def test_end_date_not_in_the_future_is_refused_expiry_in_past(end: datetime) -> None:
    assert _refusal(lambda: check_access_end(end, T0)) == RejectionCode.EXPIRY_IN_PAST


def test_end_date_one_second_ahead_is_accepted() -> None:
    check_access_end(T0 + SECOND, T0)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2030, 1, 7, 9, 0, tzinfo=UTC),  # the five years hold one leap day
        datetime(2031, 3, 1, 0, 0, tzinfo=UTC),  # ... two leap days (2032 and 2036)
        datetime(2097, 3, 1, 0, 0, tzinfo=UTC),  # ... none (2100 is not a leap year)
    ],
)
def test_end_date_exactly_five_years_ahead_is_accepted_and_a_second_more_refused(
    now: datetime,
) -> None:
    five_years = now.replace(year=now.year + 5)
    check_access_end(five_years, now)
    code = _refusal(lambda: check_access_end(five_years + SECOND, now))
    assert code == RejectionCode.EXPIRY_TOO_FAR


def test_five_years_from_a_leap_day_end_on_the_28th_of_february() -> None:
    now = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    check_access_end(datetime(2033, 2, 28, 12, 0, tzinfo=UTC), now)
    code = _refusal(lambda: check_access_end(datetime(2033, 3, 1, 12, 0, tzinfo=UTC), now))
    assert code == RejectionCode.EXPIRY_TOO_FAR


def test_end_date_in_another_timezone_is_compared_as_an_instant() -> None:
    paris_winter = timezone(timedelta(hours=1))
    # 10:00 in Paris is 09:00 UTC = T0: not in the future.
    same_instant = datetime(2030, 1, 7, 10, 0, tzinfo=paris_winter)
    assert _refusal(lambda: check_access_end(same_instant, T0)) == RejectionCode.EXPIRY_IN_PAST


# -- rule 6: one pending offer per (tenant, email), members are not re-invited ----------


def _offered(cause: MakeCause, role: str = "user", end: datetime | None = None) -> Membership:
    membership = Membership.start("acme", "bob@example.com", cause())
    membership.offer(uuid4(), role, end, cause())
    return membership


def test_second_offer_is_refused_with_the_pending_invitation_id(cause: MakeCause) -> None:
    membership = _offered(cause)
    with pytest.raises(DomainError) as refused:
        membership.offer(uuid4(), "user", None, cause())
    assert refused.value.code == RejectionCode.INVITATION_PENDING
    assert refused.value.details == {"invitation_id": str(membership.invitation_id)}


def test_active_member_is_refused_already_member(cause: MakeCause) -> None:
    membership = _offered(cause)
    assert membership.invitation_id is not None
    membership.activate(membership.invitation_id, cause())
    assert _refusal(membership.check_invitable) == RejectionCode.ALREADY_MEMBER


def test_withdrawn_offer_can_be_made_again(cause: MakeCause) -> None:
    membership = _offered(cause)
    assert membership.invitation_id is not None
    membership.withdraw(membership.invitation_id, cause())
    membership.offer(uuid4(), "administrator", None, cause())
    assert membership.role == "administrator"


def test_withdrawing_an_older_invitation_leaves_the_current_offer(cause: MakeCause) -> None:
    membership = _offered(cause)
    membership.withdraw(uuid4(), cause())
    assert membership.status == "invited"


# -- rules 20-22: contractors -------------------------------------------------------------


def _contractor(cause: MakeCause, end: datetime = T0 + 30 * DAY) -> Membership:
    return _offered(cause, "contractor", end)


def test_a_user_is_not_a_contractor(cause: MakeCause) -> None:
    membership = _offered(cause)
    code = _refusal(lambda: membership.change_contractor_expiry(T0 + DAY, cause()))
    assert code == RejectionCode.NOT_A_CONTRACTOR


def test_contractor_end_date_moves_later_and_earlier(cause: MakeCause) -> None:
    membership = _contractor(cause)
    membership.change_contractor_expiry(T0 + 60 * DAY, cause())
    membership.change_contractor_expiry(T0 + 2 * DAY, cause())
    assert membership.access_expires_at == T0 + 2 * DAY
    changes = [
        e for e in membership.collect_events() if isinstance(e, Membership.ContractorExpiryChanged)
    ]
    assert [(c.previous_access_expires_at, c.access_expires_at) for c in changes] == [
        (T0 + 30 * DAY, T0 + 60 * DAY),
        (T0 + 60 * DAY, T0 + 2 * DAY),
    ]


@pytest.mark.parametrize(
    ("end", "code"),
    [(T0 - DAY, RejectionCode.EXPIRY_IN_PAST), (T0 + 6 * 365 * DAY, RejectionCode.EXPIRY_TOO_FAR)],
)
def test_contractor_end_date_moves_only_into_the_near_future(
    cause: MakeCause, end: datetime, code: RejectionCode
) -> None:
    membership = _contractor(cause)
    assert _refusal(lambda: membership.change_contractor_expiry(end, cause())) == code
    assert membership.access_expires_at == T0 + 30 * DAY


def test_reminder_is_refused_before_its_offset(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    code = _refusal(lambda: membership.remind_expiry(7 * DAY, cause(T0 + 23 * DAY - SECOND)))
    assert code == RejectionCode.NOT_DUE


def test_reminder_goes_out_once_per_offset(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    assert membership.remind_expiry(7 * DAY, cause(T0 + 23 * DAY)) is True
    assert membership.remind_expiry(7 * DAY, cause(T0 + 24 * DAY)) is False
    assert membership.remind_expiry(DAY, cause(T0 + 29 * DAY)) is True
    reminders = [
        e
        for e in membership.collect_events()
        if isinstance(e, Membership.ContractorExpiryApproaching)
    ]
    assert [r.offset for r in reminders] == [(7 * DAY).total_seconds(), DAY.total_seconds()]


def test_reminders_follow_a_new_end_date(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    membership.remind_expiry(7 * DAY, cause(T0 + 23 * DAY))
    membership.change_contractor_expiry(T0 + 60 * DAY, cause(T0 + 23 * DAY))
    code = _refusal(lambda: membership.remind_expiry(7 * DAY, cause(T0 + 24 * DAY)))
    assert code == RejectionCode.NOT_DUE
    assert membership.remind_expiry(7 * DAY, cause(T0 + 53 * DAY)) is True


def test_no_reminder_once_the_access_has_ended(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    assert membership.remind_expiry(DAY, cause(T0 + 30 * DAY)) is False


def test_contractor_expiry_is_refused_before_the_end_date(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    code = _refusal(lambda: membership.expire_contractor(cause(T0 + 30 * DAY - SECOND)))
    assert code == RejectionCode.NOT_DUE


def test_contractor_expires_at_the_end_date_once_and_is_kept(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    assert membership.expire_contractor(cause(T0 + 31 * DAY)) is True
    assert membership.expire_contractor(cause(T0 + 32 * DAY)) is False
    assert membership.status == "expired"
    assert membership.role == "contractor"
    expired = membership.collect_events()[-1]
    assert isinstance(expired, Membership.ContractorExpired)
    assert (expired.access_expires_at, expired.expired_at) == (T0 + 30 * DAY, T0 + 31 * DAY)


def test_an_expired_contractor_end_date_can_no_longer_be_moved(cause: MakeCause) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    membership.expire_contractor(cause(T0 + 30 * DAY))
    code = _refusal(
        lambda: membership.change_contractor_expiry(T0 + 90 * DAY, cause(T0 + 31 * DAY))
    )
    assert code == RejectionCode.NOT_A_CONTRACTOR


def test_lapsed_invitation_of_an_expired_contractor_is_not_offered_again(
    cause: MakeCause,
) -> None:
    membership = _contractor(cause, T0 + 30 * DAY)
    invitation_id = membership.invitation_id
    assert invitation_id is not None
    membership.expire_contractor(cause(T0 + 30 * DAY))
    code = _refusal(lambda: membership.reoffer(invitation_id, cause(T0 + 31 * DAY)))
    assert code == RejectionCode.INVITATION_NOT_PENDING
