"""Rules 20-22: a contractor's end date, reminders and expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from .console import Admin, NewEmail

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
EXPIRY = "service:expiry"


def _contractor(admin: Admin, email: str, days: int = 30) -> tuple[str, datetime]:
    admin.enable_contractors()
    end = admin.clock.now + days * DAY
    return admin.invite(email, "contractor", access_expires_at=end)["invitation_id"], end


def _code(admin: Admin, name: str, **fields: object) -> str:
    before = admin.position()
    reply = admin.send(name, **fields)
    assert reply.error is not None, reply
    assert admin.position() == before
    return reply.error.code


def test_contractor_expiry_is_refused_not_due_before_the_end(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _, end = _contractor(admin, email)
    admin.clock.now = end - SECOND
    assert _code(admin, "expire_contractor", email=email, actor=EXPIRY) == "not_due"


def test_accepted_contractor_expires_at_the_end_and_stays_expired(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id, end = _contractor(admin, email)
    admin.accept(invitation_id, email)
    admin.clock.now = end + DAY  # the expiry service was down: it catches up
    assert admin.ok("expire_contractor", email=email, actor=EXPIRY)["expired"] is True
    expired = admin.events("ContractorExpired")[-1].data
    assert (expired["access_expires_at"], expired["expired_at"]) == (
        end.isoformat(),
        admin.clock.now.isoformat(),
    )
    assert "InvitationLapsed" not in admin.event_types()
    change = admin.send("set_contractor_expiry", email=email, access_expires_at=end + 30 * DAY)
    assert change.error is not None
    assert change.error.code == "not_a_contractor"


def test_contractor_expiry_lapses_a_still_pending_invitation(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id, end = _contractor(admin, email, days=2)  # before the 7-day link ends
    admin.clock.now = end
    position = admin.position()
    admin.ok("expire_contractor", email=email, actor=EXPIRY)
    assert admin.event_types(after=position) == [
        "ContractorExpired",
        "InvitationLapsed",
        "TempPasswordRevoked",  # rule 36: no way in is left behind
    ]
    assert admin.events("InvitationLapsed")[-1].data["invitation_id"] == invitation_id
    reply = admin.accept(invitation_id, email)
    assert reply.error is not None
    assert reply.error.code == "invitation_lapsed"
    resend = admin.send("resend_invitation", invitation_id=invitation_id)
    assert resend.error is not None
    assert resend.error.code == "invitation_not_pending"


def test_expired_contractor_can_be_invited_again_explicitly(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id, end = _contractor(admin, email)
    admin.accept(invitation_id, email)
    admin.clock.now = end
    admin.ok("expire_contractor", email=email)
    again = admin.invite(email, "contractor", access_expires_at=end + 30 * DAY)
    assert again["invitation_id"] != invitation_id


def test_end_date_moves_later_and_expiry_follows(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _, end = _contractor(admin, email)
    later = end + 10 * DAY
    result = admin.ok("set_contractor_expiry", email=email.upper(), access_expires_at=later)
    assert result["access_expires_at"] == later.isoformat()
    changed = admin.events("ContractorExpiryChanged")[-1].data
    assert (changed["previous_access_expires_at"], changed["access_expires_at"]) == (
        end.isoformat(),
        later.isoformat(),
    )
    admin.clock.now = end
    assert _code(admin, "expire_contractor", email=email) == "not_due"
    admin.clock.now = later
    assert admin.ok("expire_contractor", email=email)["expired"] is True


def test_end_date_moves_earlier_and_expiry_follows(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invitation_id, _ = _contractor(admin, email)
    admin.accept(invitation_id, email)
    earlier = admin.clock.now + 3 * DAY
    admin.ok("set_contractor_expiry", email=email, access_expires_at=earlier)
    admin.clock.now = earlier
    assert admin.ok("expire_contractor", email=email)["expired"] is True
    assert admin.events("ContractorExpired")[-1].data["access_expires_at"] == earlier.isoformat()


def test_end_date_of_a_pending_contractor_moves_with_the_invitation(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id, end = _contractor(admin, email)
    later = end + 5 * DAY
    admin.ok("set_contractor_expiry", email=email, access_expires_at=later)
    reply = admin.accept(invitation_id, email)
    assert reply.result is not None
    assert reply.result["access_expires_at"] == later.isoformat()


@pytest.mark.parametrize(
    ("shift", "code"),
    [(timedelta(0), "expiry_in_past"), (-DAY, "expiry_in_past"), (6 * 366 * DAY, "expiry_too_far")],
)
def test_end_date_moves_only_into_the_near_future(
    admin: Admin, new_email: NewEmail, shift: timedelta, code: str
) -> None:
    email = new_email()
    _contractor(admin, email)
    moment = admin.clock.now + shift
    assert _code(admin, "set_contractor_expiry", email=email, access_expires_at=moment) == code


def test_end_date_of_a_user_is_refused_not_a_contractor(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.invite(email)
    end = admin.clock.now + DAY
    assert _code(admin, "set_contractor_expiry", email=email, access_expires_at=end) == (
        "not_a_contractor"
    )
    assert _code(admin, "expire_contractor", email=email) == "not_a_contractor"
    assert _code(admin, "remind_contractor_expiry", email=email, offset=DAY) == ("not_a_contractor")


def test_unknown_email_is_refused_not_a_contractor(admin: Admin, new_email: NewEmail) -> None:
    end = admin.clock.now + DAY
    assert _code(admin, "set_contractor_expiry", email=new_email(), access_expires_at=end) == (
        "not_a_contractor"
    )


def test_reminder_is_refused_not_due_before_its_offset(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _, end = _contractor(admin, email)
    admin.clock.now = end - 7 * DAY - SECOND
    code = _code(admin, "remind_contractor_expiry", email=email, offset=7 * DAY, actor=EXPIRY)
    assert code == "not_due"


def test_reminders_go_out_once_per_offset(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _, end = _contractor(admin, email)
    admin.clock.now = end - 7 * DAY
    assert admin.ok("remind_contractor_expiry", email=email, offset=7 * DAY)["reminded"] is True
    position = admin.position()
    again = admin.ok("remind_contractor_expiry", email=email, offset=7 * DAY)
    assert again["reminded"] is False
    assert admin.position() == position
    admin.clock.now = end - DAY
    admin.ok("remind_contractor_expiry", email=email, offset=DAY)
    reminders = admin.events("ContractorExpiryApproaching")
    assert [(r.data["offset"], r.data["access_expires_at"]) for r in reminders] == [
        ("P7D", end.isoformat()),
        ("P1D", end.isoformat()),
    ]
    assert {r.tenant_id for r in reminders} == {admin.tenant_id}


def test_reminders_follow_a_new_end_date(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _, end = _contractor(admin, email)
    admin.clock.now = end - 7 * DAY
    admin.ok("remind_contractor_expiry", email=email, offset=7 * DAY)
    later = end + 30 * DAY
    admin.ok("set_contractor_expiry", email=email, access_expires_at=later)
    assert _code(admin, "remind_contractor_expiry", email=email, offset=7 * DAY) == "not_due"
    admin.clock.now = later - 7 * DAY
    assert admin.ok("remind_contractor_expiry", email=email, offset=7 * DAY)["reminded"] is True
