"""The wake-up consumer on a real RabbitMQ vhost: bindings, batched acks, dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from uuid import uuid4

import aio_pika
import pytest

from services.notifier.domain.planning import EVENT_TYPES
from services.notifier.entrypoints.events import ACK_EVERY, WakeupConsumer
from shared.contract import EventEnvelope
from shared.topology import EVENTS_EXCHANGE_NAME
from tests.support import temporary_vhost, wait_for

pytestmark = pytest.mark.integration

QUEUE = "notifier.events"


def envelope(event_type: str) -> bytes:
    return (
        EventEnvelope(
            event_id=uuid4(),
            event_type=event_type,
            occurred_at=datetime.now(UTC),
            position=1,
            tenant_id="acme",
            aggregate_id=uuid4(),
            aggregate_version=1,
            correlation_id="cmd-1",
            actor="admin@acme.test",
            data={},
        )
        .model_dump_json()
        .encode()
    )


@pytest.fixture
def amqp_url() -> Iterator[str]:
    with temporary_vhost() as url:
        yield url


class Woken:
    def __init__(self, connection: aio_pika.abc.AbstractRobustConnection) -> None:
        self.types: list[str] = []
        self.consumer = WakeupConsumer(
            connection,
            QUEUE,
            lambda e: self.types.append(e.event_type),
            event_types=EVENT_TYPES,
            prefetch=ACK_EVERY * 2,
        )


@pytest.fixture
async def woken(amqp_url: str) -> AsyncIterator[Woken]:
    connection = await aio_pika.connect_robust(amqp_url)
    woken = Woken(connection)
    await woken.consumer.start()
    yield woken
    await woken.consumer.stop()
    await connection.close()


async def publish(amqp_url: str, bodies: list[tuple[str, bytes]], *, to_queue: bool) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = (
            channel.default_exchange
            if to_queue
            else await channel.get_exchange(EVENTS_EXCHANGE_NAME, ensure=True)
        )
        for routing_key, body in bodies:
            await exchange.publish(
                aio_pika.Message(body), routing_key=QUEUE if to_queue else routing_key
            )


async def queue_counts(amqp_url: str, name: str) -> tuple[int, int]:
    """(ready + unacked messages, consumers) of `name`, from a passive declare."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)


async def test_only_the_event_types_planning_reads_reach_the_queue(
    amqp_url: str, woken: Woken
) -> None:
    await publish(
        amqp_url,
        [
            ("TempPasswordDelivered", envelope("TempPasswordDelivered")),
            ("UserInvited", envelope("UserInvited")),
        ],
        to_queue=False,
    )
    await wait_for(lambda: woken.types == ["UserInvited"], what="the UserInvited wake-up")
    assert "TempPasswordDelivered" not in EVENT_TYPES


async def test_a_burst_is_acked_in_full_and_junk_in_the_middle_is_dead_lettered(
    amqp_url: str, woken: Woken
) -> None:
    # More than the prefetch: the burst only gets through if the batched acks flow.
    good = [("", envelope("UserInvited"))] * (ACK_EVERY * 3 + 7)
    junk = [("", b"not json at all"), ("", b'{"event_type": "UserInvited"}')]
    await publish(amqp_url, good[:100] + junk[:1] + good[100:] + junk[1:], to_queue=True)

    await wait_for(lambda: woken.consumer.settled == len(good) + len(junk), what="all settled")
    assert len(woken.types) == len(good)
    # Unacked deliveries would be back in the queue once the consumer is gone.
    await woken.consumer.stop()
    assert await queue_counts(amqp_url, QUEUE) == (0, 0)
    assert await queue_counts(amqp_url, f"{QUEUE}.dead") == (2, 0)
