"""A mass invite is decided a slice of rows per transaction, between other commands, and a
crash between slices neither loses a row nor decides one twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from shared.contract import Reply
from shared.secrets import TempPasswordHasher
from tests.fakes import FakeClock

from .conftest import CHEAP_HASH
from .console import Admin, NewEmail, Store

SLICE = 2


def open_sliced(store: Store, secrets_key: bytes, clock: FakeClock) -> InvitationService:
    return InvitationService(
        InvitationStore(env=store_env(store.url)),
        secrets_key=secrets_key,
        hasher=TempPasswordHasher(CHEAP_HASH),
        clock=clock,
        mass_invite_slice=SLICE,
    )


@pytest.fixture
def sliced(store: Store, secrets_key: bytes, clock: FakeClock) -> Iterator[InvitationService]:
    service = open_sliced(store, secrets_key, clock)
    yield service
    service.close()


@pytest.fixture
def admin_of_sliced(sliced: InvitationService, secrets_key: bytes, clock: FakeClock) -> Admin:
    return Admin(sliced, secrets_key, clock)


def _rows(new_email: NewEmail) -> list[dict[str, Any]]:
    """Seven rows over four slices of two: a duplicate of row 0 in the second slice."""
    first = new_email()
    return [
        {"email": first, "role": "user"},
        {"email": new_email(), "role": "user"},
        {"email": "not-an-email", "role": "user"},
        {"email": first.upper(), "role": "administrator"},
        {"email": new_email(), "role": "owner"},
        {"email": new_email(), "role": "user"},
        {"email": new_email(), "role": "administrator"},
    ]


EXPECTED = [
    (0, "invited", None),
    (1, "invited", None),
    (2, "refused", "invalid_email"),
    (3, "refused", "duplicate_in_batch"),
    (4, "refused", "invalid_role"),
    (5, "invited", None),
    (6, "invited", None),
]


def _statuses(result: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [(r["index"], r["status"], r.get("error", {}).get("code")) for r in result["rows"]]


def test_a_mass_invite_is_stored_slice_by_slice_and_answered_once_with_the_whole_report(
    admin_of_sliced: Admin, new_email: NewEmail
) -> None:
    admin = admin_of_sliced
    command = admin.command("mass_invite", invitees=_rows(new_email))
    job = admin.service.mass_invite_job(IncomingCommand("mass_invite", command))
    outcomes: list[Reply | None] = []
    invited_after_each = []
    while not outcomes or outcomes[-1] is None:
        outcomes.append(admin.service.work([], job)[1])
        invited_after_each.append(len(admin.events("UserInvited")))
    assert outcomes[:-1] == [None, None, None, None]
    # Each slice's invitations as it is stored; then the report, in a step of its own.
    assert invited_after_each == [2, 2, 3, 4, 4]
    reply = outcomes[-1]
    assert reply is not None and reply.result is not None
    assert _statuses(reply.result) == EXPECTED
    assert (reply.result["invited"], reply.result["refused"]) == (4, 3)
    assert [e.event_type for e in admin.events("MassInviteCompleted")] == ["MassInviteCompleted"]
    # The same command again: its first reply, nothing new.
    position = admin.position()
    assert admin.service.handle("mass_invite", command) == reply
    assert admin.position() == position


def test_other_commands_are_decided_between_the_slices_of_a_mass_invite(
    admin_of_sliced: Admin, new_email: NewEmail
) -> None:
    admin = admin_of_sliced
    other = Admin(admin.service, admin.secrets_key, admin.clock)  # another tenant
    command = admin.command("mass_invite", invitees=_rows(new_email))
    job = admin.service.mass_invite_job(IncomingCommand("mass_invite", command))
    invite = IncomingCommand(
        "invite_user", other.command("invite_user", email=new_email(), role="user")
    )

    replies, finished = admin.service.work([], job)
    assert finished is None
    replies, finished = admin.service.work([invite], job)
    assert finished is None
    assert replies[0].status == "accepted"
    assert not admin.events("MassInviteCompleted")  # decided while the mass invite runs
    while finished is None:
        finished = admin.service.work([], job)[1]
    assert finished.result is not None
    assert _statuses(finished.result) == EXPECTED


def test_a_row_is_judged_when_its_slice_is_decided(
    admin_of_sliced: Admin, new_email: NewEmail
) -> None:
    """Rule 9 per row: an invite that landed between two slices refuses its later row."""
    admin = admin_of_sliced
    rows = [{"email": new_email(), "role": "user"} for _ in range(4)]
    command = admin.command("mass_invite", invitees=rows)
    job = admin.service.mass_invite_job(IncomingCommand("mass_invite", command))
    admin.service.work([], job)
    pending = admin.invite(rows[3]["email"])["invitation_id"]
    while (finished := admin.service.work([], job)[1]) is None:
        pass
    assert finished.result is not None
    assert finished.result["rows"][3]["error"]["code"] == "invitation_pending"
    assert finished.result["rows"][3]["error"]["details"] == {"invitation_id": pending}


def test_a_mass_invite_interrupted_between_slices_resumes_to_the_same_outcome(
    store: Store,
    secrets_key: bytes,
    clock: FakeClock,
    admin_of_sliced: Admin,
    new_email: NewEmail,
) -> None:
    admin = admin_of_sliced
    command = admin.command("mass_invite", invitees=_rows(new_email))
    item = IncomingCommand("mass_invite", command, "backend")
    job = admin.service.mass_invite_job(item)
    admin.service.work([], job)
    admin.service.work([], job)
    before = {e.data["email"]: e.data for e in admin.events("UserInvited")}
    assert len(before) == 2
    admin.service.close()  # the process dies between two slices

    restarted = open_sliced(store, secrets_key, clock)
    try:
        # The broker redelivers the command (same command_id, same body).
        reply = restarted.handle_batch([item])[0]
        again = restarted.handle_batch([item])[0]
        other_body = admin.command(
            "mass_invite", invitees=_rows(new_email), command_id=command.command_id
        )
        reused = restarted.handle_batch([IncomingCommand("mass_invite", other_body, "backend")])[0]
        reader = Admin(restarted, secrets_key, clock, tenant_id=admin.tenant_id)
        invited = reader.events("UserInvited")
        completed = reader.events("MassInviteCompleted")
    finally:
        restarted.close()
    assert reply.result is not None
    assert _statuses(reply.result) == EXPECTED
    assert again == reply
    assert reused.error is not None and reused.error.code == "command_id_reused"
    emails = [e.data["email"] for e in invited]
    assert len(emails) == len(set(emails)) == 4  # nobody invited twice
    batch_id = reply.result["batch_id"]
    assert {e.data["batch_id"] for e in invited} == {batch_id}
    for row in reply.result["rows"][:2]:  # the rows stored before the crash kept their ids
        assert row["invitation_id"] == before[row["email"]]["invitation_id"]
    assert [e.data for e in completed] == [{"batch_id": batch_id, "invited": 4, "refused": 3}]


def test_a_resent_command_id_with_another_body_is_refused_while_its_slices_run(
    admin_of_sliced: Admin, new_email: NewEmail
) -> None:
    admin = admin_of_sliced
    command = admin.command("mass_invite", invitees=_rows(new_email))
    job = admin.service.mass_invite_job(IncomingCommand("mass_invite", command))
    admin.service.work([], job)
    changed = admin.command("mass_invite", invitees=_rows(new_email), command_id=command.command_id)
    reply: Reply = admin.service.handle("mass_invite", changed)
    assert reply.error is not None and reply.error.code == "command_id_reused"
    assert len(admin.events("UserInvited")) == 2
