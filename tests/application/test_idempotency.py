"""Idempotency: a command_id gets its first reply again; time-driven repeats are harmless."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from services.invitation.application import IncomingCommand, InvitationService

from .console import Admin, NewEmail

DAY = timedelta(days=1)


def test_repeated_invite_gets_the_identical_reply_and_no_new_event(
    admin: Admin, new_email: NewEmail
) -> None:
    command = admin.command("invite_user", email=new_email(), role="user")
    first = admin.service.handle("invite_user", command)
    position, sealed = admin.position(), admin.sealed_count()
    again = admin.service.handle("invite_user", command)
    assert again == first
    assert admin.position() == position
    assert admin.sealed_count() == sealed


def test_repeated_rejected_command_gets_the_same_rejection(admin: Admin) -> None:
    command = admin.command("invite_user", email="nope", role="user")
    first = admin.service.handle("invite_user", command)
    assert first.error is not None
    assert admin.service.handle("invite_user", command) == first


def test_first_reply_is_kept_even_when_the_situation_changed(
    admin: Admin, new_email: NewEmail
) -> None:
    invitation_id = admin.invite(new_email())["invitation_id"]
    lapse = admin.command("lapse_invitation", invitation_id=invitation_id)
    first = admin.service.handle("lapse_invitation", lapse)
    assert first.error is not None
    assert first.error.code == "not_due"
    admin.clock.advance(8 * DAY)
    assert admin.service.handle("lapse_invitation", lapse) == first


def test_replies_survive_a_restart(
    admin: Admin, new_email: NewEmail, reopen: Callable[[], InvitationService]
) -> None:
    command = admin.command("invite_user", email=new_email(), role="administrator")
    first = admin.service.handle("invite_user", command)
    position = admin.position()
    restarted = reopen()
    assert restarted.handle("invite_user", command) == first
    assert (restarted.store.recorder.max_notification_id() or 0) == position


def test_command_id_with_a_different_body_is_refused_command_id_reused(
    admin: Admin, new_email: NewEmail
) -> None:
    command = admin.command("invite_user", email=new_email(), role="user")
    admin.service.handle("invite_user", command)
    position = admin.position()
    other = admin.command(
        "invite_user", email=new_email(), role="user", command_id=command.command_id
    )
    reply = admin.service.handle("invite_user", other)
    assert reply.error is not None
    assert reply.error.code == "command_id_reused"
    assert admin.position() == position
    # The original still gets its own first reply.
    assert admin.service.handle("invite_user", command).status == "accepted"


def test_command_id_reused_under_another_command_name_is_refused(
    admin: Admin, new_email: NewEmail
) -> None:
    command = admin.command("register_account", email=new_email())
    admin.service.handle("register_account", command)
    reply = admin.service.handle(
        "record_password_changed",
        admin.command(
            "record_password_changed",
            email=command.email,  # type: ignore[attr-defined]
            command_id=command.command_id,
        ),
    )
    assert reply.error is not None
    assert reply.error.code == "command_id_reused"


def test_a_batch_answers_in_order_and_replays_a_repeated_id(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    email = new_email()
    invite = admin.command("invite_user", email=email, role="user")
    second = admin.command("invite_user", email=email.upper(), role="user")
    replies = service.handle_batch(
        [
            IncomingCommand("invite_user", invite),
            IncomingCommand("invite_user", second),
            IncomingCommand("invite_user", invite),
        ]
    )
    assert replies[0].status == "accepted"
    assert replies[1].error is not None
    assert replies[1].error.code == "invitation_pending"
    assert replies[2] == replies[0]
    assert len(admin.events("UserInvited")) == 1


# -- time-driven commands: accepted without a new event when repeated --------------------


def _repeat_is_harmless(admin: Admin, name: str, **fields: object) -> dict[str, object]:
    admin.ok(name, actor="service:expiry", **fields)
    position, sealed = admin.position(), admin.sealed_count()
    result = admin.ok(name, actor="service:expiry", **fields)  # a new command_id
    assert admin.position() == position
    assert admin.sealed_count() == sealed
    return result


def test_repeated_lapse_is_harmless(admin: Admin, new_email: NewEmail) -> None:
    invitation_id = admin.invite(new_email())["invitation_id"]
    admin.clock.advance(7 * DAY)
    assert _repeat_is_harmless(admin, "lapse_invitation", invitation_id=invitation_id) == {
        "invitation_id": invitation_id,
        "lapsed": False,
    }


def test_repeated_temp_password_expiry_is_harmless(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.invite(email)
    temp_id = admin.temp_password_id(email)
    admin.clock.advance(7 * DAY)
    result = _repeat_is_harmless(
        admin, "expire_temp_password", email=email, temp_password_id=temp_id
    )
    assert result["expired"] is False


def test_repeated_contractor_expiry_is_harmless(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.enable_contractors()
    admin.invite(email, "contractor", access_expires_at=admin.clock.now + DAY)
    admin.clock.advance(DAY)
    assert _repeat_is_harmless(admin, "expire_contractor", email=email)["expired"] is False


def test_repeated_reminder_is_harmless(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.enable_contractors()
    admin.invite(email, "contractor", access_expires_at=admin.clock.now + 10 * DAY)
    admin.clock.advance(3 * DAY)
    result = _repeat_is_harmless(admin, "remind_contractor_expiry", email=email, offset=7 * DAY)
    assert result["reminded"] is False


def test_repeated_delivery_record_is_harmless(admin: Admin, new_email: NewEmail) -> None:
    email = new_email()
    admin.invite(email)
    temp_id = admin.temp_password_id(email)
    result = _repeat_is_harmless(
        admin, "record_temp_password_delivered", email=email, temp_password_id=temp_id
    )
    assert result["recorded"] is False


def test_registering_an_existing_account_again_changes_nothing(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    result = _repeat_is_harmless(admin, "register_account", email=email)
    assert result["created"] is False
    assert len(admin.events("AccountRegistered")) == 1
