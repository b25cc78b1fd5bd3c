from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika import DeliveryMode, ExchangeType
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from shared.topology import EVENTS_EXCHANGE_NAME
from tests.support import suffix

pytestmark = pytest.mark.integration


@pytest.fixture
async def events_queue(store) -> AsyncIterator[AbstractQueue]:
    """A queue of this test's own, bound to every event, gone when the test ends."""
    connection = await aio_pika.connect(store.env["AMQP_URL"])
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE_NAME, ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(
        f"test.cli.republish.{suffix()}", exclusive=True, auto_delete=True
    )
    await queue.bind(exchange, routing_key="#")
    yield queue
    await connection.close()


async def receive(
    queue: AbstractQueue, wanted: set[str], timeout: float = 10
) -> list[AbstractIncomingMessage]:
    """Messages whose id is wanted, in arrival order; other tests' events are skipped."""
    received: list[AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + timeout
    async with queue.iterator() as messages:
        while {m.message_id for m in received} != wanted:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, f"missing {wanted - {m.message_id for m in received}}"
            message = await asyncio.wait_for(anext(messages), remaining)
            await message.ack()
            if message.message_id in wanted:
                received.append(message)
    return received


async def test_a_range_is_published_again_with_the_same_message_ids(store, tenant, events_queue):
    for _ in range(3):
        store.invite(tenant, f"r-{suffix()}@example.com")
    envelopes = store.envelopes()
    chosen = envelopes[1:5]

    result = await asyncio.to_thread(
        store.run,
        "republish",
        "--from-position",
        str(chosen[0].position),
        "--to-position",
        str(chosen[-1].position),
    )

    assert result.exit_code == 0, result.output
    assert f"republished {len(chosen)} event(s)" in result.stdout
    messages = await receive(events_queue, {str(e.event_id) for e in chosen})
    assert [m.message_id for m in messages] == [str(e.event_id) for e in chosen]
    assert [m.routing_key for m in messages] == [e.event_type for e in chosen]
    assert [m.body.decode() for m in messages] == [e.model_dump_json() for e in chosen]
    assert {m.delivery_mode for m in messages} == {DeliveryMode.PERSISTENT}
    assert {m.content_type for m in messages} == {"application/json"}
    assert [(m.correlation_id, m.headers["position"]) for m in messages] == [
        (e.correlation_id, e.position) for e in chosen
    ]


async def test_only_the_given_types_are_published_again(store, tenant, events_queue):
    for _ in range(2):
        store.invite(tenant, f"t-{suffix()}@example.com")
    invited = [e for e in store.envelopes() if e.event_type == "UserInvited"]

    result = await asyncio.to_thread(
        store.run,
        "republish",
        "--from-position",
        "1",
        "--type",
        "UserInvited",
    )

    assert result.exit_code == 0, result.output
    assert f"republished {len(invited)} event(s)" in result.stdout  # of 4 in the store
    messages = await receive(events_queue, {str(e.event_id) for e in invited})
    assert [m.message_id for m in messages] == [str(e.event_id) for e in invited]


def test_an_empty_range_publishes_nothing(store, tenant):
    store.invite(tenant, f"e-{suffix()}@example.com")

    result = store.run("republish", "--from-position", "1000000")

    assert result.exit_code == 0, result.output
    assert "republished 0 event(s)" in result.stdout
