"""Rule 34: a member removed or given another role, and the last-administrator guard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.invitation.application import IncomingCommand
from shared.sealed_box import RecipientKeys

from .console import Admin, NewEmail

DAY = timedelta(days=1)
EXPIRY = "service:expiry"


def _member(admin: Admin, email: str, role: str = "user", **fields: Any) -> str:
    invitation_id = str(admin.invite(email, role, **fields)["invitation_id"])
    assert admin.accept(invitation_id, email).status == "accepted"
    return invitation_id


def _code(admin: Admin, name: str, **fields: object) -> str:
    before = admin.position()
    reply = admin.send(name, **fields)
    assert reply.error is not None, reply
    assert admin.position() == before, "a refused command recorded nothing"
    return reply.error.code


def test_a_removed_member_is_recorded_with_the_role_they_had(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _member(admin, email)
    result = admin.ok("remove_member", email=email.upper(), reason="left the company")
    assert (result["email"], result["role"]) == (email, "user")
    removed = admin.events("MemberRemoved")[-1]
    assert removed.tenant_id == admin.tenant_id
    assert {k: removed.data[k] for k in ("email", "role", "reason")} == {
        "email": email,
        "role": "user",
        "reason": "left the company",
    }
    assert removed.data["account_id"] == result["account_id"]
    assert _code(admin, "remove_member", email=email) == "not_a_member"


def test_only_an_active_member_can_be_removed_or_change_role(
    admin: Admin, new_email: NewEmail
) -> None:
    pending = new_email()
    admin.invite(pending)
    for email in (pending, new_email()):
        assert _code(admin, "remove_member", email=email) == "not_a_member"
        assert _code(admin, "change_role", email=email, role="administrator") == "not_a_member"


def test_a_removed_member_can_be_invited_again(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _member(admin, email)
    admin.ok("remove_member", email=email)
    again = admin.invite(email, "administrator")
    assert again["outcome"] in ("account_linked", "temp_password_issued")


def test_the_last_administrator_can_be_neither_removed_nor_demoted(
    admin: Admin, new_email: NewEmail
) -> None:
    first = new_email("first")
    _member(admin, first, "administrator")
    assert _code(admin, "remove_member", email=first) == "last_administrator"
    assert _code(admin, "change_role", email=first, role="user") == "last_administrator"
    second = new_email("second")
    _member(admin, second)
    admin.ok("change_role", email=second, role="administrator")
    admin.ok("change_role", email=first, role="user")
    assert _code(admin, "remove_member", email=second) == "last_administrator"
    admin.ok("remove_member", email=first)
    changed = admin.events("MemberRoleChanged")
    assert [(e.data["email"], e.data["previous_role"], e.data["role"]) for e in changed] == [
        (second, "user", "administrator"),
        (first, "administrator", "user"),
    ]


def test_two_administrators_removing_each_other_at_once_leave_one(
    admin: Admin, new_email: NewEmail
) -> None:
    one, two = new_email("one"), new_email("two")
    _member(admin, one, "administrator")
    _member(admin, two, "administrator")
    replies = admin.service.handle_batch(
        [
            IncomingCommand("remove_member", admin.command("remove_member", email=one)),
            IncomingCommand("remove_member", admin.command("remove_member", email=two)),
        ]
    )
    assert [r.status for r in replies] == ["accepted", "rejected"]
    assert replies[1].error is not None
    assert replies[1].error.code == "last_administrator"


def test_a_role_refusal_comes_before_the_last_administrator_guard(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _member(admin, email, "administrator")
    assert _code(admin, "change_role", email=email, role="owner") == "invalid_role"


def test_a_change_to_contractor_follows_the_contractor_rules(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _member(admin, email)
    end = admin.clock.now + 30 * DAY
    assert (
        _code(admin, "change_role", email=email, role="contractor", access_expires_at=end)
        == "contractor_disabled"
    )
    admin.enable_contractors()
    assert _code(admin, "change_role", email=email, role="contractor") == (
        "contractor_expiry_required"
    )
    past = admin.clock.now - DAY
    assert (
        _code(admin, "change_role", email=email, role="contractor", access_expires_at=past)
        == "expiry_in_past"
    )
    assert (
        _code(admin, "change_role", email=email, role="administrator", access_expires_at=end)
        == "expiry_not_allowed"
    )
    result = admin.ok("change_role", email=email, role="contractor", access_expires_at=end)
    assert (result["role"], result["access_expires_at"]) == ("contractor", end.isoformat())
    changed = admin.events("MemberRoleChanged")[-1].data
    assert changed["access_expires_at"] == end.isoformat()
    admin.clock.now = end - DAY
    assert admin.ok("remind_contractor_expiry", email=email, offset=DAY, actor=EXPIRY)["reminded"]
    admin.clock.now = end
    assert admin.ok("expire_contractor", email=email, actor=EXPIRY)["expired"] is True


def test_a_change_away_from_contractor_ends_the_contractor_deadlines(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    email = new_email()
    end = admin.clock.now + 30 * DAY
    _member(admin, email, "contractor", access_expires_at=end)
    admin.ok("change_role", email=email, role="user")
    assert admin.events("MemberRoleChanged")[-1].data["access_expires_at"] is None
    admin.clock.now = end
    assert _code(admin, "expire_contractor", email=email, actor=EXPIRY) == "not_a_contractor"


def test_the_contractor_role_again_with_another_date_moves_the_end(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    email = new_email()
    end = admin.clock.now + 30 * DAY
    _member(admin, email, "contractor", access_expires_at=end)
    assert (
        admin.ok("change_role", email=email, role="contractor", access_expires_at=end)["changed"]
        is False
    )
    later = end + 10 * DAY
    admin.ok("change_role", email=email, role="contractor", access_expires_at=later)
    assert admin.events("ContractorExpiryChanged")[-1].data["access_expires_at"] == (
        later.isoformat()
    )


def test_the_same_role_again_changes_nothing(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    _member(admin, email)
    before = admin.position()
    assert admin.ok("change_role", email=email, role="user")["changed"] is False
    assert admin.position() == before


def test_removing_a_member_withdraws_their_unused_temporary_password(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    _member(admin, email)  # signed in with the temporary password, never replaced it
    temp_password_id = admin.temp_password_id(email)
    result = admin.ok("remove_member", email=email)
    assert result["temp_password_withdrawn"] is True
    revoked = admin.events("TempPasswordRevoked")[-1].data
    assert revoked["temp_password_id"] == str(temp_password_id)
    assert not admin.is_sealed(temp_password_id)
    expired = admin.ok(
        "expire_temp_password",
        email=email,
        temp_password_id=temp_password_id,
        actor=EXPIRY,
    )
    assert expired["expired"] is False


def test_a_contractor_whose_access_ends_loses_the_unused_temporary_password(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    email = new_email()
    end = admin.clock.now + 2 * DAY
    admin.invite(email, "contractor", access_expires_at=end, temp_password_delivery="manual")
    temp_password_id = admin.temp_password_id(email)
    admin.clock.now = end
    position = admin.position()
    assert admin.ok("expire_contractor", email=email, actor=EXPIRY)["temp_password_withdrawn"]
    assert admin.event_types(after=position) == [
        "ContractorExpired",
        "InvitationLapsed",
        "TempPasswordRevoked",
    ]
    assert not admin.is_sealed(temp_password_id)
    reply = admin.send(
        "retrieve_temp_password", email=email, recipient_public_key=RecipientKeys().public_key
    )
    assert reply.error is not None
    assert reply.error.code == "temp_password_not_available"


@pytest.mark.parametrize("with_invitation", [True, False])
def test_an_undeliverable_email_is_recorded_once(
    admin: Admin, new_email: NewEmail, with_invitation: bool
) -> None:
    email = new_email()
    invitation_id = admin.invite(email)["invitation_id"] if with_invitation else None
    report: dict[str, Any] = {
        "message_key": "4b0f6a3e-2f76-4c55-9a0a-2a3c1e0b7d11",
        "kind": "invitation_automatic" if with_invitation else "member_removed",
        "recipient": email,
        "invitation_id": invitation_id,
        "reason": "550 5.1.1 mailbox unknown",
        "actor": "service:notifier",
    }
    assert admin.ok("record_notification_failed", **report)["recorded"] is True
    failed = admin.events("NotificationFailed")
    assert [e.data for e in failed] == [
        {
            "kind": report["kind"],
            "recipient": email,
            "invitation_id": invitation_id,
            "reason": "550 5.1.1 mailbox unknown",
            "message_key": report["message_key"],
        }
    ]
    assert failed[0].tenant_id == admin.tenant_id
    before = admin.position()
    assert admin.ok("record_notification_failed", **report)["recorded"] is False
    assert admin.position() == before
