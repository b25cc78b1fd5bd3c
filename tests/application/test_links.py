"""Rules 16-19: link validity and lapse, resend, revoke, accept, and their refusals."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from shared.secrets import TokenSigner

from .console import Admin, NewEmail

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def _code(reply: object) -> str:
    error = getattr(reply, "error", None)
    assert error is not None, reply
    return str(error.code)


# -- rule 16: lapse ------------------------------------------------------------------------


def test_lapse_is_refused_not_due_while_the_link_is_valid(
    admin: Admin, new_email: NewEmail
) -> None:
    invitation_id = admin.invite(new_email())["invitation_id"]
    admin.clock.advance(7 * DAY - SECOND)
    reply = admin.send("lapse_invitation", invitation_id=invitation_id, actor="service:expiry")
    assert _code(reply) == "not_due"
    assert reply.error is not None
    assert reply.error.details["due_at"] == (admin.clock.now + SECOND).isoformat()


def test_invitation_lapses_once_its_link_expires(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.clock.advance(7 * DAY)
    result = admin.ok("lapse_invitation", invitation_id=invitation_id, actor="service:expiry")
    assert result["lapsed"] is True
    lapsed = admin.events("InvitationLapsed")[-1]
    assert (lapsed.data["invitation_id"], lapsed.actor) == (invitation_id, "service:expiry")
    assert _code(admin.accept(invitation_id, email)) == "invitation_lapsed"


def test_link_is_refused_invitation_lapsed_even_before_the_lapse_is_recorded(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.clock.advance(7 * DAY)
    assert _code(admin.accept(invitation_id, email)) == "invitation_lapsed"


def test_lapsed_invitation_frees_the_email_for_a_new_invite(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.clock.advance(7 * DAY)
    admin.ok("lapse_invitation", invitation_id=invitation_id)
    assert admin.invite(email)["invitation_id"] != invitation_id


# -- rule 17: resend -----------------------------------------------------------------------


def test_resend_gives_a_new_link_and_the_old_one_stops_working(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.clock.advance(DAY)
    resent = admin.ok("resend_invitation", invitation_id=invitation_id)
    assert resent["invitation_expires_at"] == (admin.clock.now + 7 * DAY).isoformat()
    event = admin.events("InvitationResent")[-1].data
    assert (event["link_generation"], event["invitation_expires_at"]) == (
        2,
        resent["invitation_expires_at"],
    )
    assert _code(admin.accept(invitation_id, email, generation=1)) == "invalid_token"
    assert admin.events("InvitationAcceptanceRefused")[-1].data["reason"] == "invalid_token"
    assert admin.accept(invitation_id, email, generation=2).status == "accepted"


def test_resend_by_email_finds_the_pending_invitation(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    resent = admin.ok("resend_invitation", email=email.upper())
    assert resent["invitation_id"] == invitation_id


def test_lapsed_invitation_can_be_resent_and_accepted(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.clock.advance(7 * DAY)
    admin.ok("lapse_invitation", invitation_id=invitation_id)
    admin.ok("resend_invitation", invitation_id=invitation_id)
    assert admin.accept(invitation_id, email, generation=2).status == "accepted"


def test_lapsed_invitation_is_not_resent_once_a_newer_one_is_pending(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    old = admin.invite(email)["invitation_id"]
    admin.clock.advance(7 * DAY)
    admin.ok("lapse_invitation", invitation_id=old)
    new = admin.invite(email)["invitation_id"]
    reply = admin.send("resend_invitation", invitation_id=old)
    assert _code(reply) == "invitation_pending"
    assert reply.error is not None
    assert reply.error.details["invitation_id"] == new


def test_fourth_resend_within_an_hour_is_refused_resend_rate_limited(
    admin: Admin, new_email: NewEmail
) -> None:
    invitation_id = admin.invite(new_email())["invitation_id"]
    first = admin.clock.now
    for _ in range(3):
        admin.ok("resend_invitation", invitation_id=invitation_id)
        admin.clock.advance(MINUTE)
    before = admin.position()
    admin.clock.now = first + HOUR - SECOND
    reply = admin.send("resend_invitation", invitation_id=invitation_id)
    assert _code(reply) == "resend_rate_limited"
    assert reply.error is not None
    assert reply.error.details["retry_after"] == (first + HOUR).isoformat()
    assert admin.position() == before
    admin.clock.now = first + HOUR
    admin.ok("resend_invitation", invitation_id=invitation_id)


@pytest.mark.parametrize("end", ["accepted", "revoked"])
def test_accepted_or_revoked_invitation_is_refused_invitation_not_pending(
    admin: Admin, new_email: NewEmail, end: str
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    if end == "accepted":
        admin.accept(invitation_id, email)
    else:
        admin.ok("revoke_invitation", invitation_id=invitation_id)
    for command in ("resend_invitation", "revoke_invitation"):
        reply = admin.send(command, invitation_id=invitation_id)
        assert _code(reply) == "invitation_not_pending"
        assert reply.error is not None
        assert reply.error.details["status"] == end


@pytest.mark.parametrize("command", ["resend_invitation", "revoke_invitation"])
def test_unknown_invitation_is_refused_invitation_not_found(
    admin: Admin, new_email: NewEmail, command: str
) -> None:
    assert _code(admin.send(command, invitation_id=uuid4())) == "invitation_not_found"
    assert _code(admin.send(command, email=new_email())) == "invitation_not_found"


def test_another_tenants_invitation_is_not_found(admin: Admin, new_email: NewEmail) -> None:
    invitation_id = admin.invite(new_email())["invitation_id"]
    stranger = Admin(admin.service, admin.secrets_key, admin.clock)
    for command in ("resend_invitation", "revoke_invitation", "lapse_invitation"):
        reply = stranger.send(command, invitation_id=invitation_id)
        assert _code(reply) == "invitation_not_found"


# -- rule 18: revoke -----------------------------------------------------------------------


def test_revoked_link_stops_working(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.ok("revoke_invitation", email=email, reason="wrong person")
    revoked = admin.events("InvitationRevoked")[-1].data
    assert revoked == {"invitation_id": invitation_id, "reason": "wrong person"}
    assert _code(admin.accept(invitation_id, email)) == "invitation_revoked"


def test_lapsed_invitation_can_be_revoked(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.clock.advance(7 * DAY)
    admin.ok("lapse_invitation", invitation_id=invitation_id)
    position = admin.position()
    admin.ok("revoke_invitation", invitation_id=invitation_id)
    assert admin.event_types(after=position)[0] == "InvitationRevoked"
    assert _code(admin.accept(invitation_id, email)) == "invitation_revoked"
    resend = admin.send("resend_invitation", invitation_id=invitation_id)
    assert _code(resend) == "invitation_not_pending"


def test_reinvite_after_a_revoke_gives_the_invitee_a_way_to_sign_in(
    admin: Admin, new_email: NewEmail
) -> None:
    # The first temporary password was withdrawn with the revoke; linking the account
    # again would leave the invitee with no password at all.
    email = new_email()
    first = admin.invite(email)
    admin.ok("revoke_invitation", invitation_id=first["invitation_id"])
    second = admin.invite(email)
    assert second["outcome"] == "temp_password_issued"
    assert admin.service.open_sealed(admin.temp_password_id(email)) is not None


# -- rule 19: accept -----------------------------------------------------------------------


def test_invitee_accepts_with_the_link_token_and_becomes_a_member(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invited = admin.invite(email, "administrator")
    reply = admin.accept(invited["invitation_id"], email.upper())
    assert reply.status == "accepted"
    assert reply.result is not None
    assert (reply.result["email"], reply.result["role"]) == (email, "administrator")
    accepted = admin.events("InvitationAccepted")[-1]
    assert accepted.data == {
        "invitation_id": invited["invitation_id"],
        "account_id": invited["account_id"],
        "email": email,
        "role": "administrator",
    }
    assert accepted.tenant_id == admin.tenant_id


def test_second_acceptance_is_refused_invitation_already_accepted(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    admin.accept(invitation_id, email)
    assert _code(admin.accept(invitation_id, email)) == "invitation_already_accepted"


def test_other_signed_in_email_is_refused_email_mismatch_and_stays_pending(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    reply = admin.accept(invitation_id, new_email("eve"))
    assert _code(reply) == "email_mismatch"
    assert reply.error is not None
    assert reply.error.details["invitation_id"] == invitation_id
    refused = admin.events("InvitationAcceptanceRefused")[-1].data
    assert refused == {"invitation_id": invitation_id, "reason": "email_mismatch"}
    assert _code(admin.send("invite_user", email=email, role="user")) == "invitation_pending"
    assert admin.accept(invitation_id, email).status == "accepted"


@pytest.mark.parametrize("token", ["not-a-token", "A" * 48])
def test_unknown_token_is_refused_invalid_token(
    admin: Admin, new_email: NewEmail, token: str
) -> None:
    before = admin.position()
    reply = admin.send("accept_invitation", token=token, email=new_email())
    assert _code(reply) == "invalid_token"
    assert admin.position() == before


def test_token_signed_with_another_key_is_refused_invalid_token(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    forged = TokenSigner(b"x" * 32).token(UUID(invitation_id), 1)
    reply = admin.send("accept_invitation", token=forged, email=email)
    assert _code(reply) == "invalid_token"


def test_token_used_in_another_tenant_is_refused_invalid_token(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"]
    stranger = Admin(admin.service, admin.secrets_key, admin.clock)
    assert _code(stranger.accept(invitation_id, email)) == "invalid_token"
