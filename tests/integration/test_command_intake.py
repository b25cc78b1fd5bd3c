"""Commands over the real broker: replies, refusals, dead letters, idempotency."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aio_pika
import pytest

from shared.command_client import CommandClient
from shared.topology import (
    DEAD_LETTER_QUEUE_NAME,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_ROUTING_KEY_HEADER,
)
from tests.support import EventTap, invitation_service_ready, wait_for

pytestmark = pytest.mark.integration


def invite(tenant: str, email: str, **extra: Any) -> dict[str, Any]:
    return {
        "command_id": str(uuid.uuid4()),
        "actor": "admin@example.com",
        "tenant_id": tenant,
        "email": email,
        "role": "user",
        **extra,
    }


async def dead_letters(amqp_url: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(DEAD_LETTER_QUEUE_NAME, passive=True)
        found = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
        return found


async def test_an_invite_is_answered_on_reply_to_with_the_contract_result(
    start_service, client: CommandClient, tenant: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    reply = await client.send("invite_user", invite(tenant, " New.Person@Example.COM "))
    assert reply.status == "accepted"
    assert reply.error is None
    assert reply.result is not None
    assert set(reply.result) >= {
        "invitation_id",
        "account_id",
        "outcome",
        "temp_password_delivery",
        "invitation_expires_at",
    }
    assert reply.result["outcome"] == "temp_password_issued"
    assert reply.result["temp_password_delivery"] == "automatic"


async def test_malformed_and_unknown_messages_are_answered_dead_lettered_and_do_not_block(
    start_service, client: CommandClient, tenant: str, amqp_url: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    await dead_letters(amqp_url)  # start from an empty dead-letter queue

    not_json = await client.publish_raw("invite_user", b"{not json")
    not_object = await client.publish_raw("invite_user", b"[1, 2]")
    unknown = await client.send("make_coffee", {"command_id": str(uuid.uuid4())})
    invalid = await client.send("invite_user", {**invite(tenant, "a@example.com"), "x": 1})
    assert not_json is not None and not_object is not None
    replies = [await not_json, await not_object, unknown, invalid]
    codes = [r.error.code for r in replies if r.error is not None]
    assert codes == ["invalid_command", "invalid_command", "unknown_command", "invalid_command"]
    # A validation error says what is wrong without echoing the input.
    assert invalid.error is not None
    assert invalid.error.details["errors"][0]["loc"] == ["x"]
    assert "input" not in invalid.error.details["errors"][0]

    # The queue keeps flowing after them.
    good = await client.send("invite_user", invite(tenant, "after-the-bad-ones@example.com"))
    assert good.status == "accepted"

    seen: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def four_dead_letters() -> list[aio_pika.abc.AbstractIncomingMessage] | None:
        seen.extend(await dead_letters(amqp_url))
        return seen if len(seen) >= 4 else None

    dead = await wait_for(four_dead_letters, timeout=10, what="four dead letters")
    reasons = sorted(str(m.headers[DEAD_LETTER_REASON_HEADER]) for m in dead)
    assert reasons == ["invalid_command", "invalid_command", "invalid_command", "unknown_command"]
    assert {str(m.headers[DEAD_LETTER_ROUTING_KEY_HEADER]) for m in dead} == {
        "invite_user",
        "make_coffee",
    }
    assert b"{not json" in [m.body for m in dead]


async def test_unreadable_bodies_are_answered_and_dead_lettered_on_their_first_delivery(
    start_service, client: CommandClient, tenant: str, amqp_url: str
) -> None:
    start_service(COMMAND_MAX_BYTES="65536")
    await invitation_service_ready(client)
    await dead_letters(amqp_url)  # start from an empty dead-letter queue
    bodies = {
        "huge number": b'{"command_id": ' + b"9" * 5000 + b"}",
        "deep nesting": b"[" * 100_000 + b"]" * 100_000,
        "invalid UTF-8": b'{"command_id": "\xff\xfe"}',
        "over the size limit": json.dumps(
            invite(tenant, "big@example.com", display_name="x" * 70_000)
        ).encode(),
    }
    futures = {what: await client.publish_raw("invite_user", body) for what, body in bodies.items()}
    for what, future in futures.items():
        assert future is not None
        reply = await future
        assert reply.error is not None and reply.error.code == "invalid_command", what

    seen: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def all_dead_lettered() -> list[aio_pika.abc.AbstractIncomingMessage] | None:
        seen.extend(await dead_letters(amqp_url))
        return seen if len(seen) >= len(bodies) else None

    dead = await wait_for(all_dead_lettered, timeout=10, what="the unreadable bodies dead-lettered")
    assert len(dead) == len(bodies)  # once each: never retried until the broker gives up
    assert {str(m.headers[DEAD_LETTER_REASON_HEADER]) for m in dead} == {"invalid_command"}
    assert not any("x-death" in (m.headers or {}) for m in dead)
    good = await client.send("invite_user", invite(tenant, "after-the-unreadable@example.com"))
    assert good.status == "accepted"


async def test_a_refused_command_gets_its_reason_code_and_details(
    start_service, client: CommandClient, tenant: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    first = await client.send("invite_user", invite(tenant, "twice@example.com"))
    again = await client.send("invite_user", invite(tenant, "twice@example.com"))
    assert again.status == "rejected"
    assert again.error is not None
    assert again.error.code == "invitation_pending"
    assert first.result is not None
    assert again.error.details == {"invitation_id": first.result["invitation_id"]}


async def test_the_same_command_id_gets_the_first_reply_even_after_a_restart(
    start_service, client: CommandClient, tenant: str, amqp_url: str
) -> None:
    service = start_service()
    await invitation_service_ready(client)
    command = invite(tenant, "idempotent@example.com")
    async with EventTap(amqp_url) as tap:
        first = await client.send("invite_user", command)
        await wait_for(lambda: tap.of_type("UserInvited"), what="UserInvited")
        service.stop()

        start_service()
        await invitation_service_ready(client)
        again = await client.send("invite_user", command)
        reused = await client.send("invite_user", {**command, "email": "other@example.com"})
        marker = await client.send("invite_user", invite(tenant, "marker@example.com"))
        assert marker.result is not None
        await wait_for(
            lambda: tap.for_invitation(marker.result["invitation_id"]), what="marker event"
        )
    assert again == first
    assert reused.error is not None
    assert reused.error.code == "command_id_reused"
    invited = [e.data["email"] for e in tap.of_type("UserInvited")]
    assert invited.count("idempotent@example.com") == 1
