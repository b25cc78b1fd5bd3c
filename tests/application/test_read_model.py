"""Rule 28 for the read model: rebuilt from the event store alone, it equals the live one."""

from __future__ import annotations

from datetime import timedelta

from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.eventstore.read_model.projection import Fold
from services.invitation.eventstore.read_model.rebuild import rebuild_store
from shared.sealed_box import RecipientKeys

from .console import Admin, NewEmail

DAY = timedelta(days=1)


def _history(admin: Admin, new_email: NewEmail) -> None:
    """Every kind of event the read model follows, in one tenant."""
    admin.enable_contractors()
    people = {n: new_email(n) for n in ("ann", "ben", "cat", "dan", "eve", "fay", "gus")}
    admin.ok("register_account", email=people["gus"])
    ann = admin.invite(people["ann"], "administrator")
    ben = admin.invite(people["ben"], "contractor", access_expires_at=admin.clock.now + 3 * DAY)
    cat = admin.invite(people["cat"], temp_password_delivery="manual")
    gus = admin.invite(people["gus"])
    batch = admin.ok(
        "mass_invite",
        invitees=[
            {"email": people["dan"], "role": "user"},
            {"email": people["eve"], "role": "user"},
            {"email": "broken", "role": "user"},
            {"email": people["fay"], "role": "user"},
        ],
    )
    dan, eve, _, fay = batch["rows"]
    admin.ok(
        "record_temp_password_delivered",
        email=people["ann"],
        temp_password_id=admin.temp_password_id(people["ann"]),
    )
    admin.ok("record_invitation_email_sent", invitation_id=gus["invitation_id"], link_generation=1)
    admin.ok(
        "retrieve_temp_password",
        invitation_id=cat["invitation_id"],
        recipient_public_key=RecipientKeys().public_key,
    )
    admin.accept(ann["invitation_id"], people["ann"])
    admin.ok("record_password_changed", email=people["ann"])
    admin.accept(ben["invitation_id"], people["ben"])
    admin.ok(
        "set_contractor_expiry", email=people["ben"], access_expires_at=admin.clock.now + 2 * DAY
    )
    admin.ok("resend_invitation", invitation_id=dan["invitation_id"])
    admin.ok("revoke_invitation", invitation_id=eve["invitation_id"], reason="left")
    admin.ok("record_password_changed", email=people["fay"])  # before any use of hers
    admin.accept(gus["invitation_id"], people["gus"])
    admin.ok("change_role", email=people["gus"], role="administrator")
    admin.ok("remove_member", email=people["gus"], reason="left")
    admin.ok(
        "record_notification_failed",
        message_key="4b0f6a3e-2f76-4c55-9a0a-2a3c1e0b7d11",
        kind="invitation_automatic",
        recipient=people["fay"],
        invitation_id=fay["invitation_id"],
        reason="550 5.1.1 mailbox unknown",
    )
    admin.clock.advance(8 * DAY)
    admin.ok("expire_contractor", email=people["ben"])
    admin.ok("lapse_invitation", invitation_id=fay["invitation_id"])
    admin.ok(
        "expire_temp_password",
        email=people["dan"],
        temp_password_id=admin.temp_password_id(people["dan"]),
    )


def test_the_rebuilt_tables_equal_the_live_ones(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    _history(admin, new_email)
    Admin(service, admin.secrets_key, admin.clock).invite(new_email("elsewhere"))
    tables = service.store.recorder.read_model  # type: ignore[attr-defined]
    live = tables.dump()
    position = tables.position()
    assert len(live["invitations"]) == 8
    assert len(live["batch_rows"]) == 4

    applied = rebuild_store(service.store)

    assert tables.dump() == live
    assert tables.position() == position
    assert applied > 40


def test_a_rebuild_restores_tables_that_were_emptied(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    _history(admin, new_email)
    tables = service.store.recorder.read_model  # type: ignore[attr-defined]
    live = tables.dump()
    with tables.exclusive() as cursor:
        tables.replace_all(cursor, Fold())
    assert tables.dump()["invitations"] == []

    rebuild_store(service.store)

    assert tables.dump() == live
    assert admin.ok("list_invitations")["invitations"]


def test_one_save_of_new_and_existing_rows_folds_as_the_rebuild_does(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    """A batch is one save: rows it creates are folded before its transaction, the others
    inside it (read_model/saves.py); the result must not depend on that split."""
    old, manual, again = (new_email(n) for n in ("old", "manual", "again"))
    old_invitation = admin.invite(old)["invitation_id"]
    admin.invite(manual, temp_password_delivery="manual")
    newcomer = new_email("new")
    batch = [
        IncomingCommand("invite_user", admin.command("invite_user", email=newcomer, role="user")),
        IncomingCommand(
            "accept_invitation",
            admin.command("accept_invitation", token=admin.token(old_invitation), email=old),
        ),
        IncomingCommand(
            "record_password_changed", admin.command("record_password_changed", email=manual)
        ),
        IncomingCommand(
            "mass_invite",
            admin.command("mass_invite", invitees=[{"email": again, "role": "user"}]),
        ),
        IncomingCommand("resend_invitation", admin.command("resend_invitation", email=newcomer)),
    ]
    replies = service.handle_batch(batch)
    assert [r.status for r in replies] == ["accepted"] * 5
    tables = service.store.recorder.read_model  # type: ignore[attr-defined]
    live = tables.dump()

    rebuild_store(service.store)

    assert tables.dump() == live
    states = {
        i["email"]: (i["status"], i["temp_password"])
        for i in admin.ok("list_invitations")["invitations"]
    }
    assert states[old] == ("accepted", "awaiting_delivery")
    assert states[manual] == ("pending", "withdrawn")
    assert states[newcomer] == ("pending", "awaiting_delivery")
