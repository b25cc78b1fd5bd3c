"""Rule 32: the queries answer from the read model, page by page, and record nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.invitation.application import InvitationService
from shared import contract as c
from shared.contract.results import InvitationView, MemberView

from .console import Admin, NewEmail

DAY = timedelta(days=1)


def at(text: str) -> datetime:
    """A time of a reply (RFC 3339, `Z` or `+00:00`)."""
    return datetime.fromisoformat(text)


def _rejected(reply: c.Reply, code: str) -> None:
    assert reply.status == "rejected", reply.result
    assert reply.error is not None
    assert reply.error.code == code, reply.error


def test_an_invitation_is_found_by_id_and_by_email_with_the_contract_fields(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invited = admin.invite(email.upper(), "administrator")

    by_id = admin.ok("get_invitation", invitation_id=invited["invitation_id"])["invitation"]
    by_email = admin.ok("get_invitation", email=f" {email.upper()} ")["invitation"]

    assert by_id == by_email
    assert set(by_id) == set(InvitationView.model_fields)
    assert by_id["invitation_id"] == invited["invitation_id"]
    assert (by_id["tenant_id"], by_id["email"], by_id["role"]) == (
        admin.tenant_id,
        email,
        "administrator",
    )
    assert (by_id["status"], by_id["outcome"], by_id["temp_password_delivery"]) == (
        "pending",
        "temp_password_issued",
        "automatic",
    )
    assert by_id["invited_by"] == admin.actor
    assert at(by_id["invited_at"]) == admin.clock.now
    assert at(by_id["invitation_expires_at"]) == at(invited["invitation_expires_at"])
    assert (by_id["invitation_email"], by_id["temp_password"]) == ("pending", "awaiting_delivery")


def test_another_tenants_invitation_is_not_found(admin: Admin, new_email: NewEmail) -> None:
    invited = admin.invite(new_email())
    other = Admin(admin.service, admin.secrets_key, admin.clock)

    _rejected(
        other.send("get_invitation", invitation_id=invited["invitation_id"]),
        "invitation_not_found",
    )
    _rejected(other.send("get_invitation", invitation_id=uuid4()), "invitation_not_found")


def test_invitations_are_listed_newest_first_and_filtered(
    admin: Admin, new_email: NewEmail
) -> None:
    admin.enable_contractors()
    first, second, third = (new_email(n) for n in ("first", "second", "third"))
    one = admin.invite(first)
    admin.invite(second, "contractor", access_expires_at=admin.clock.now + 30 * DAY)
    three = admin.invite(third, "administrator")
    admin.send("revoke_invitation", invitation_id=three["invitation_id"])
    admin.accept(one["invitation_id"], first)

    def emails(**filters: Any) -> list[str]:
        page = admin.ok("list_invitations", **filters)
        return [i["email"] for i in page["invitations"]]

    assert emails() == [third, second, first]
    assert emails(status=["pending"]) == [second]
    assert emails(status=["accepted", "revoked"]) == [third, first]
    assert emails(role="contractor") == [second]
    assert emails(email=first.upper()) == [first]
    accepted = admin.ok("list_invitations", status=["accepted"])["invitations"][0]
    assert at(accepted["accepted_at"]) == admin.clock.now


def test_pages_follow_each_other_to_the_end(admin: Admin, new_email: NewEmail) -> None:
    emails = [new_email(f"p{i}") for i in range(7)]
    for email in emails:
        admin.invite(email)

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        fields: dict[str, Any] = {"page_size": 3}
        if token is not None:
            fields["page_token"] = token
        page = admin.ok("list_invitations", **fields)
        seen += [i["email"] for i in page["invitations"]]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break

    assert seen == list(reversed(emails))
    assert pages == 3


def test_a_page_token_works_only_for_its_query_tenant_and_filters(
    admin: Admin, new_email: NewEmail
) -> None:
    for _ in range(3):
        admin.invite(new_email())
    token = admin.ok("list_invitations", page_size=1)["next_page_token"]
    assert token is not None
    other = Admin(admin.service, admin.secrets_key, admin.clock)

    assert admin.send("list_invitations", page_size=1, page_token=token).status == "accepted"
    for reply in (
        other.send("list_invitations", page_size=1, page_token=token),
        admin.send("list_invitations", page_size=1, page_token=token, status=["pending"]),
        admin.send("list_members", page_token=token),
        admin.send("list_invitations", page_token=token[:-2] + "xx"),
        admin.send("list_invitations", page_token="not-a-token"),
    ):
        _rejected(reply, "invalid_command")


@pytest.mark.parametrize("page_size", [0, 501])
def test_a_page_size_out_of_range_is_refused(admin: Admin, page_size: int) -> None:
    with pytest.raises(ValidationError):
        admin.command("list_invitations", page_size=page_size)


def test_members_are_those_who_accepted(admin: Admin, new_email: NewEmail) -> None:
    admin.enable_contractors()
    alice, bob, carol = (new_email(n) for n in ("alice", "bob", "carol"))
    ends = admin.clock.now + 2 * DAY
    a = admin.invite(alice, "administrator")
    b = admin.invite(bob, "contractor", access_expires_at=ends)
    admin.invite(carol)
    admin.accept(a["invitation_id"], alice)
    admin.accept(b["invitation_id"], bob)

    members = admin.ok("list_members")["members"]
    assert [(m["email"], m["role"], m["status"]) for m in members] == sorted(
        [(alice, "administrator", "active"), (bob, "contractor", "active")]
    )
    assert set(members[0]) == set(MemberView.model_fields)
    bob_row = next(m for m in members if m["email"] == bob)
    assert at(bob_row["access_expires_at"]) == ends
    assert bob_row["invitation_id"] == b["invitation_id"]
    assert at(bob_row["member_since"]) == admin.clock.now

    admin.clock.advance(3 * DAY)
    admin.ok("expire_contractor", email=bob)
    assert [m["email"] for m in admin.ok("list_members", status=["expired"])["members"]] == [bob]
    assert [m["email"] for m in admin.ok("list_members", role="administrator")["members"]] == [
        alice
    ]


def test_a_token_is_looked_up_only_while_it_is_the_current_link(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invited = admin.invite(email, "administrator")
    first = admin.token(invited["invitation_id"])
    before = admin.position()

    found = admin.ok("lookup_invitation_token", token=first)["invitation"]
    assert (found["email"], found["role"], found["tenant_id"]) == (
        email,
        "administrator",
        admin.tenant_id,
    )
    assert admin.position() == before  # looked up, nothing recorded
    admin.ok("resend_invitation", invitation_id=invited["invitation_id"])

    _rejected(admin.send("lookup_invitation_token", token=first), "invalid_token")
    _rejected(admin.send("lookup_invitation_token", token="garbage"), "invalid_token")
    _rejected(admin.send("lookup_invitation_token", token=admin.token(uuid4())), "invalid_token")
    second = admin.token(invited["invitation_id"], 2)
    assert admin.ok("lookup_invitation_token", token=second)["invitation"]["email"] == email


def test_the_mass_invite_report_pages_its_rows_with_their_live_state(
    admin: Admin, new_email: NewEmail
) -> None:
    ann, ben, cat = (new_email(n) for n in ("ann", "ben", "cat"))
    result = admin.ok(
        "mass_invite",
        temp_password_delivery="manual",
        invitees=[
            {"email": ann, "role": "user"},
            {"email": "broken", "role": "user"},
            {"email": ben, "role": "user"},
            {"email": cat, "role": "user"},
        ],
    )
    rows = result["rows"]
    admin.accept(rows[0]["invitation_id"], ann)
    admin.ok("revoke_invitation", invitation_id=rows[2]["invitation_id"])

    first = admin.ok("get_mass_invite_report", batch_id=result["batch_id"], page_size=3)
    rest = admin.ok(
        "get_mass_invite_report",
        batch_id=result["batch_id"],
        page_size=3,
        page_token=first["next_page_token"],
    )

    assert (first["invited"], first["refused"], rest["next_page_token"]) == (3, 1, None)
    report = first["rows"] + rest["rows"]
    assert [r["index"] for r in report] == [0, 1, 2, 3]
    assert [(r["status"], r.get("invitation_status"), r.get("temp_password")) for r in report] == [
        ("invited", "accepted", "awaiting_retrieval"),
        ("refused", None, None),
        ("invited", "revoked", "withdrawn"),
        ("invited", "pending", "awaiting_retrieval"),
    ]
    assert report[1]["error"]["code"] == "invalid_email"
    assert report[0]["outcome"] == rows[0]["outcome"]
    assert report[0]["invitation_email"] == "pending"


def test_another_tenants_report_is_not_found(admin: Admin, new_email: NewEmail) -> None:
    batch = admin.ok("mass_invite", invitees=[{"email": new_email(), "role": "user"}])
    other = Admin(admin.service, admin.secrets_key, admin.clock)

    _rejected(
        other.send("get_mass_invite_report", batch_id=batch["batch_id"]), "invitation_not_found"
    )
    _rejected(admin.send("get_mass_invite_report", batch_id=uuid4()), "invitation_not_found")


def test_queries_record_nothing_not_even_their_reply(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    invited = admin.invite(new_email())
    before = admin.position()
    query = admin.command("get_invitation", invitation_id=invited["invitation_id"])

    first = service.handle("get_invitation", query)
    again = service.handle("get_invitation", query)

    assert first == again
    assert first.status == "accepted"
    assert admin.position() == before
    assert service.side_tables.lookup_replies([str(query.command_id)]) == {}


def test_the_invitation_email_and_password_states_follow_the_events(
    admin: Admin, new_email: NewEmail
) -> None:
    auto, manual, linked = (new_email(n) for n in ("auto", "manual", "linked"))
    admin.ok("register_account", email=linked)
    auto_id = admin.invite(auto)["invitation_id"]
    manual_id = admin.invite(manual, temp_password_delivery="manual")["invitation_id"]
    linked_id = admin.invite(linked)["invitation_id"]

    def state(invitation_id: str) -> tuple[str, str]:
        found = admin.ok("get_invitation", invitation_id=invitation_id)["invitation"]
        return found["invitation_email"], found["temp_password"]

    assert state(linked_id) == ("pending", "none")
    admin.ok(
        "record_temp_password_delivered", email=auto, temp_password_id=admin.temp_password_id(auto)
    )
    for invitation_id in (manual_id, linked_id):
        admin.ok("record_invitation_email_sent", invitation_id=invitation_id, link_generation=1)
    assert state(auto_id) == ("sent", "delivered")
    assert state(manual_id) == ("sent", "awaiting_retrieval")
    assert state(linked_id) == ("sent", "none")

    admin.ok("resend_invitation", invitation_id=linked_id)
    assert state(linked_id) == ("pending", "none")
    # A late report of the first link's email is no news.
    late = admin.ok("record_invitation_email_sent", invitation_id=linked_id, link_generation=1)
    assert late["recorded"] is False
    assert state(linked_id) == ("pending", "none")

    admin.clock.advance(8 * DAY)
    admin.ok("expire_temp_password", email=manual, temp_password_id=admin.temp_password_id(manual))
    assert state(manual_id) == ("sent", "expired")


def test_a_removed_member_and_a_changed_role_show_in_list_members(
    admin: Admin, new_email: NewEmail
) -> None:
    first, moved, gone = new_email("first"), new_email("moved"), new_email("gone")
    for email, role in ((first, "administrator"), (moved, "user"), (gone, "user")):
        invited = admin.invite(email, role)
        assert admin.accept(invited["invitation_id"], email).status == "accepted"

    admin.ok("change_role", email=moved, role="administrator")
    admin.ok("remove_member", email=gone, reason="left")

    members = {m["email"]: m for m in admin.ok("list_members")["members"]}
    assert (members[moved]["role"], members[moved]["status"]) == ("administrator", "active")
    assert members[gone]["status"] == "removed"
    removed = admin.ok("list_members", status=["removed"])["members"]
    assert [m["email"] for m in removed] == [gone]
    administrators = admin.ok("list_members", role="administrator", status=["active"])
    assert {m["email"] for m in administrators["members"]} == {first, moved}


def test_an_invitation_whose_email_bounced_reads_failed_until_it_is_resent(
    admin: Admin, new_email: NewEmail
) -> None:
    email = new_email()
    invited = admin.invite(email)
    admin.ok(
        "record_notification_failed",
        message_key=str(uuid4()),
        kind="invitation_automatic",
        recipient=email,
        invitation_id=invited["invitation_id"],
        reason="550 5.1.1 mailbox unknown",
        actor="service:notifier",
    )

    found = admin.ok("get_invitation", invitation_id=invited["invitation_id"])["invitation"]
    assert found["invitation_email"] == "failed"
    admin.ok("resend_invitation", invitation_id=invited["invitation_id"])
    found = admin.ok("get_invitation", invitation_id=invited["invitation_id"])["invitation"]
    assert found["invitation_email"] == "pending"
