from __future__ import annotations

import base64
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.invitation.application import InvitationService
from services.invitation.eventstore import GENESIS, InvitationStore, link_hash, store_env
from shared.contract import InviteUser
from tests.support import suffix

pytestmark = pytest.mark.integration


@pytest.fixture
def populated(store, tenant):
    for _ in range(3):
        invitation = store.invite(tenant, f"p-{suffix()}@example.com")
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=invitation)
    return store


def positions(store) -> list[int]:
    return [
        r[0]
        for r in store.sql(
            "SELECT notification_id FROM invitations_events ORDER BY notification_id"
        )
    ]


def invited_positions(store) -> list[int]:
    return [
        r[0]
        for r in store.sql(
            "SELECT notification_id FROM invitations_events WHERE "
            "topic = 'invitations:Invitation.Invited' "
            "ORDER BY notification_id"
        )
    ]


def rewrite_state(store, position: int, old: str, new: str) -> None:
    """An edit that keeps the row readable: only the stored JSON changes."""
    changed = store.sql(
        "UPDATE invitations_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
        "%s, %s), 'UTF8') WHERE notification_id = %s RETURNING notification_id",
        (old, new, position),
    )
    assert changed, "nothing was changed"


def bad_positions(output: str) -> set[int]:
    return {int(p) for p in re.findall(r"position (\d+):", output)}


def test_an_intact_history_passes_and_gets_a_signed_checkpoint(populated):
    first = populated.run("verify")
    again = populated.run("verify")

    assert first.exit_code == 0, first.output
    assert f"intact: {len(positions(populated))} events" in first.stdout
    assert "latest checkpoint #1" in first.stdout
    assert again.exit_code == 0, again.output
    assert "1 signed checkpoint(s) matched" in again.stdout


def test_a_changed_event_is_reported_at_its_position(populated):
    target = invited_positions(populated)[1]
    rewrite_state(populated, target, '"role":"user"', '"role":"administrator"')

    result = populated.run("verify")

    assert result.exit_code == 1
    assert f"first bad position {target}" in result.stdout
    assert bad_positions(result.stdout) == {target}


def test_a_removed_event_is_reported_at_its_position(populated):
    target = positions(populated)[2]
    populated.sql("DELETE FROM invitations_events WHERE notification_id = %s", (target,))

    result = populated.run("verify")

    assert result.exit_code == 1
    assert bad_positions(result.stdout) == {target}
    assert "event removed" in result.stdout


def test_a_removed_event_and_its_link_break_the_next_link(populated):
    target, following = positions(populated)[2:4]
    populated.sql("DELETE FROM invitations_events WHERE notification_id = %s", (target,))
    populated.sql("DELETE FROM invitations_chain WHERE notification_id = %s", (target,))

    result = populated.run("verify")

    assert result.exit_code == 1
    assert bad_positions(result.stdout) == {following}


def test_reordered_events_are_reported_at_both_positions(populated):
    a, b = positions(populated)[1], positions(populated)[5]
    populated.sql(
        "UPDATE invitations_events SET notification_id = -1 WHERE notification_id = %s", (a,)
    )
    populated.sql(
        "UPDATE invitations_events SET notification_id = %s WHERE notification_id = %s", (a, b)
    )
    populated.sql(
        "UPDATE invitations_events SET notification_id = %s WHERE notification_id = -1", (b,)
    )

    result = populated.run("verify")

    assert result.exit_code == 1
    assert bad_positions(result.stdout) == {a, b}


def _rewrite_chain(store) -> None:
    """What someone with write access but without the key can do: recompute every link."""
    previous = GENESIS
    for position, originator, version, topic, state in store.sql(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM invitations_events ORDER BY notification_id"
    ):
        previous = link_hash(
            previous, position, UUID(str(originator)), version, topic, bytes(state)
        )
        store.sql(
            "UPDATE invitations_chain SET hash = %s WHERE notification_id = %s",
            (previous, position),
        )


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(populated):
    assert populated.run("verify").exit_code == 0  # signs checkpoint #1 at the head
    target = invited_positions(populated)[0]
    rewrite_state(populated, target, "@example.com", "@evil.example")
    _rewrite_chain(populated)

    result = populated.run("verify")

    assert result.exit_code == 1
    assert "differs from checkpoint #1" in result.stdout


def test_truncation_back_before_a_checkpoint_is_detected(populated):
    assert populated.run("verify").exit_code == 0
    tail = positions(populated)[-2:]
    populated.sql("DELETE FROM invitations_events WHERE notification_id = ANY(%s)", (tail,))
    populated.sql("DELETE FROM invitations_chain WHERE notification_id = ANY(%s)", (tail,))

    result = populated.run("verify")

    assert result.exit_code == 1
    assert "history is truncated" in result.stdout


def test_truncation_with_its_checkpoints_removed_needs_the_recorded_count(populated):
    assert populated.run("verify").exit_code == 0
    tail = positions(populated)[-2:]
    populated.sql("DELETE FROM invitations_events WHERE notification_id = ANY(%s)", (tail,))
    populated.sql("DELETE FROM invitations_chain WHERE notification_id = ANY(%s)", (tail,))
    populated.sql("DELETE FROM invitations_chain_checkpoints")

    unaware = populated.run("verify", "--no-checkpoint")
    counted = populated.run("verify", "--no-checkpoint", "--expect-checkpoint", "1")

    assert unaware.exit_code == 0
    assert counted.exit_code == 1
    assert "checkpoint #1 was expected" in counted.stdout


def test_a_forged_checkpoint_has_a_bad_signature(populated):
    assert populated.run("verify").exit_code == 0
    populated.sql("UPDATE invitations_chain_checkpoints SET events = events + 1")

    result = populated.run("verify")

    assert result.exit_code == 1
    assert "checkpoint #1 has a bad signature" in result.stdout


def test_checkpoints_signed_with_another_key_do_not_verify(populated):
    assert populated.run("verify").exit_code == 0

    other_key = base64.b64encode(secrets.token_bytes(32)).decode()
    result = populated.run("verify", SECRETS_KEY=other_key)

    assert result.exit_code == 1
    assert "bad signature" in result.stdout


def test_new_events_after_a_checkpoint_extend_the_chain(populated, tenant):
    assert populated.run("verify").exit_code == 0
    populated.invite(tenant, f"late-{suffix()}@example.com")

    result = populated.run("verify")

    assert result.exit_code == 0, result.output
    assert "latest checkpoint #2" in result.stdout


def test_concurrent_writers_keep_one_unbroken_chain(store, tenant):
    services = [
        InvitationService(InvitationStore(env=store_env(store.url)), secrets_key=store.secrets_key)
        for _ in range(4)
    ]

    def invite_many(service: InvitationService) -> None:
        for _ in range(8):
            reply = service.handle(
                "invite_user",
                InviteUser(
                    command_id=uuid4(),
                    actor="admin@example.com",
                    tenant_id=tenant,
                    email=f"c-{suffix()}@example.com",
                    role="user",
                ),
            )
            assert reply.status == "accepted"

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(invite_many, services))
    finally:
        for service in services:
            service.close()

    result = store.run("verify")
    assert result.exit_code == 0, result.output
    assert f"intact: {len(positions(store))} events" in result.stdout


def test_an_sqlite_store_is_verified_the_same_way(tmp_path, tenant):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    key = secrets.token_bytes(32)
    service = InvitationService(InvitationStore(env=store_env(url)), secrets_key=key)
    for _ in range(3):
        service.handle(
            "invite_user",
            InviteUser(
                command_id=uuid4(),
                actor="admin@example.com",
                tenant_id=tenant,
                email=f"s-{suffix()}@example.com",
                role="user",
            ),
        )
    env = {"DATABASE_URL": url, "SECRETS_KEY": base64.b64encode(key).decode()}
    try:
        intact = CliRunner().invoke(app, ["verify"], env=env)
        audited = CliRunner().invoke(
            app, ["audit", "--tenant", tenant, "--format", "json"], env=env
        )
        import sqlite3

        with sqlite3.connect(tmp_path / "store.db") as db:
            db.execute(
                "UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), "
                "'user', 'administrator') AS BLOB) WHERE rowid = 3"
            )
        tampered = CliRunner().invoke(app, ["verify"], env=env)
    finally:
        service.close()

    assert intact.exit_code == 0, intact.output
    assert len(audited.stdout.splitlines()) == 6
    assert tampered.exit_code == 1
    assert "first bad position 3" in tampered.stdout
    assert "differs from checkpoint #1" in tampered.stdout  # signed by the first run


def test_an_event_inserted_by_hand_has_no_chain_link(populated):
    populated.sql(
        "INSERT INTO invitations_events (originator_id, originator_version, topic, state) "
        "SELECT gen_random_uuid(), 1, topic, state FROM invitations_events "
        "ORDER BY notification_id LIMIT 1"
    )
    forged = positions(populated)[-1]

    result = populated.run("verify")

    assert result.exit_code == 1
    assert bad_positions(result.stdout) == {forged}
    assert "no chain link" in result.stdout
