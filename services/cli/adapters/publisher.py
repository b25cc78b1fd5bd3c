"""Publishing stored events again to `invitations.events`, as the relay does.

The relay's message (shared/event_message.py: the envelope JSON, message_id =
event_id, persistent, same properties and headers), routing key = event type, with
publisher confirms; a window of confirms in flight keeps it fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import aio_pika
from aio_pika import ExchangeType, Message

from shared.contract import EventEnvelope
from shared.event_message import to_message
from shared.topology import EVENTS_EXCHANGE_NAME


def envelope_message(envelope: EventEnvelope) -> Message:
    """The relay's own message, marked as a republication for whoever inspects it."""
    message = to_message(envelope)
    message.headers = {**message.headers, "x-republished": True}
    return message


async def republish(
    amqp_url: str,
    envelopes: Iterable[EventEnvelope],
    *,
    window: int = 256,
    progress: Callable[[EventEnvelope], None] = lambda envelope: None,
) -> int:
    """Publish each envelope; returns once every one is confirmed by the broker."""
    connection = await aio_pika.connect(amqp_url)
    count = 0
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE_NAME, ExchangeType.TOPIC, durable=True
        )
        in_flight: set[asyncio.Task[object]] = set()
        for envelope in envelopes:
            if len(in_flight) >= window:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a nack raises DeliveryError here
            in_flight.add(
                asyncio.ensure_future(
                    exchange.publish(envelope_message(envelope), routing_key=envelope.event_type)
                )
            )
            count += 1
            progress(envelope)
        if in_flight:
            for task in (await asyncio.wait(in_flight))[0]:
                task.result()
    finally:
        await connection.close()
    return count
