"""A mass invite whose service is killed between two slices is finished, once, after it."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import sql

from shared.command_client import CommandClient
from tests.support import invitation_service_ready, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 3000


def _schema(database_url: str) -> str:
    return database_url.rpartition("schema=")[2]


def _stored(database_url: str, command_id: str) -> tuple[int, bool]:
    """How many slices of the command are stored, and whether its reply is."""
    base, _, _ = database_url.partition("?")
    table = sql.Identifier(_schema(database_url), "invitations_commands")
    with psycopg.connect(base) as conn:
        slices = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE command_id LIKE %s").format(table),
            (f"{command_id}:slice:%",),
        ).fetchone()
        replied = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE command_id = %s").format(table), (command_id,)
        ).fetchone()
    assert slices is not None and replied is not None
    return int(slices[0]), bool(replied[0])


def _invited_events(database_url: str) -> int:
    base, _, _ = database_url.partition("?")
    table = sql.Identifier(_schema(database_url), "invitations_events")
    with psycopg.connect(base) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE topic = %s").format(table),
            ("invitations:Invitation.Invited",),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_mass_invite_killed_between_slices_is_finished_once_after_a_restart(
    start_service, client: CommandClient, tenant: str, database_url: str
) -> None:
    # Small slices, so that the kill lands between two of them.
    slices = {"MASS_INVITE_SLICE": "40", "MASS_INVITE_SLICE_SECONDS": "0.05"}
    service = start_service(**slices)
    await invitation_service_ready(client)
    before = _invited_events(database_url)
    command_id = str(uuid.uuid4())
    rows = [{"email": f"crash-{i}-{tenant}@example.com", "role": "user"} for i in range(ROWS)]
    body = {"command_id": command_id, "actor": "admin@example.com", "tenant_id": tenant}
    reply = await client.publish_raw(
        "mass_invite", json.dumps({**body, "invitees": rows}).encode(), message_id=command_id
    )
    assert reply is not None

    await wait_for(
        lambda: _stored(database_url, command_id)[0] >= 2, timeout=60, what="two slices stored"
    )
    service.kill()
    stored_slices, replied = _stored(database_url, command_id)
    assert not replied, "finished before the kill: make the mass invite bigger"

    start_service(**slices)  # the broker redelivers the unacknowledged command to it
    answer = await wait_for(lambda: reply.done() and reply.result(), timeout=120, what="reply")

    assert answer.status == "accepted", answer.error
    assert answer.result is not None
    statuses = {row["status"] for row in answer.result["rows"]}
    assert statuses == {"invited"}  # none refused as already pending: nobody decided twice
    assert [row["index"] for row in answer.result["rows"]] == list(range(ROWS))
    assert answer.result["invited"] == ROWS
    assert _invited_events(database_url) - before == ROWS
    assert _stored(database_url, command_id)[0] > stored_slices  # it went on after them
