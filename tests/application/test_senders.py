"""The sender of a command (its AMQP user_id) is recorded and part of its idempotency key."""

from __future__ import annotations

from .console import Admin, NewEmail


def test_the_sender_is_recorded_in_every_event_beside_the_claimed_actor(
    admin: Admin, new_email: NewEmail
) -> None:
    before = admin.position()
    command = admin.command("invite_user", email=new_email(), role="user", actor="service:expiry")
    reply = admin.service.handle("invite_user", command, sender="backend-billing")
    assert reply.status == "accepted", reply.error
    events = admin.events(after=before)
    assert {e.event_type for e in events} >= {"UserInvited", "TempPasswordIssued"}
    assert {(e.actor, e.sender) for e in events} == {("service:expiry", "backend-billing")}


def test_the_same_command_id_from_another_sender_is_refused_not_answered_with_the_first(
    admin: Admin, new_email: NewEmail
) -> None:
    command = admin.command("invite_user", email=new_email(), role="user")
    first = admin.service.handle("invite_user", command, sender="backend-a")
    assert first.status == "accepted"
    position = admin.position()

    again = admin.service.handle("invite_user", command, sender="backend-a")
    stolen = admin.service.handle("invite_user", command, sender="backend-b")

    assert again == first
    assert stolen.error is not None
    assert stolen.error.code == "command_id_reused"
    assert stolen.result is None  # nothing of the first reply
    assert admin.position() == position
