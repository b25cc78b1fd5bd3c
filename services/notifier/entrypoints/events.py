"""The notifier's queue on `invitations.events`: a low-latency wake-up, not the truth.

The notifier plans from the event store itself (planner.py), so an event it missed
on the broker (down, purged, dead-lettered) is still notified, and a redelivered or
republished one changes nothing. A delivery here only says "there is something new".
A message that is not an event envelope is rejected to `<queue>.dead` (the queue's
dead-letter route) and never blocks the queue.

Why aio-pika directly and not a FastStream subscriber: every published event of a type
that can lead to an email arrives here (two or three per invite), and the work per
delivery is to set an event. FastStream's per-message path (middlewares, dependency
injection, an ack per message) cost a quarter of the notifier's CPU under load (py-spy,
bench/README.md). Here a delivery costs a validation and a list append; acks go out
together, one `multiple` ack for everything handled since the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import AMQPError
from pydantic import ValidationError

from shared.contract import EventEnvelope
from shared.service import close_channel
from shared.topology import EVENTS_EXCHANGE_NAME, event_queue

log = logging.getLogger(__name__)

# Acks go out once this many deliveries are handled, or when no more are waiting; well
# under any sensible prefetch, so the broker never stalls waiting for them.
ACK_EVERY = 64


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"


class WakeupConsumer:
    """Consumes `queue_name`, bound to `event_types` on `invitations.events`.

    Only the types the planner reads are bound: the others could never lead to an email,
    and each binding less is a quorum-queue write less per event on the broker. It has a
    channel of its own on `connection` (the service's one, which the skeleton owns).
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue_name: str,
        wake: Callable[[EventEnvelope], None],
        *,
        event_types: Iterable[str],
        prefetch: int,
    ) -> None:
        self._connection = connection
        self._queue_name = queue_name
        self._wake = wake
        self._event_types = sorted(event_types)
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._handled: list[AbstractIncomingMessage] = []
        self._malformed: list[AbstractIncomingMessage] = []
        self._pending = asyncio.Event()
        self._settler: asyncio.Task[None] | None = None
        self.consuming = False
        self.settled = 0  # deliveries acked or rejected so far

    async def start(self) -> None:
        """Declare, bind and consume; again after a failed start, on a fresh channel."""
        await self.stop()
        self._channel = channel = await self._connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._prefetch)
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # The dead-letter queue exists before the first delivery can be rejected to it.
        await channel.declare_queue(
            dead_letter_queue_name(self._queue_name),
            durable=True,
            arguments={"x-queue-type": "quorum"},
        )
        queue = await channel.declare_queue(
            self._queue_name, durable=True, arguments=event_queue(self._queue_name).arguments
        )
        for event_type in self._event_types:
            await queue.bind(exchange, routing_key=event_type)
        # Earlier versions bound the queue with `#`; unbinding a missing binding is a no-op.
        await queue.unbind(exchange, routing_key="#")
        self._settler = asyncio.create_task(self._settle(), name="notifier-wakeup-acks")
        await queue.consume(self._on_message)
        self.consuming = True

    async def stop(self) -> None:
        self.consuming = False
        channel, self._channel = self._channel, None
        if self._settler is not None:
            self._settler.cancel()
            await asyncio.gather(self._settler, return_exceptions=True)
            self._settler = None
        # Deliveries handled but not yet acked come back on the next start: a wake-up
        # more, which finds nothing new to plan. (Closing the channel cancels the consumer.)
        if channel is not None:
            await close_channel(channel)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(message.body)
        except ValidationError as error:
            log.warning(
                "dead-lettered a message that is not an event envelope (%s, %d problem(s))",
                message.routing_key,
                error.error_count(),
            )
            self._malformed.append(message)
        else:
            self._wake(envelope)
            self._handled.append(message)
        if len(self._handled) >= ACK_EVERY or self._malformed:
            self._pending.set()
        elif not self._pending.is_set():
            # Once the deliveries already read have had their turn on the loop.
            asyncio.get_running_loop().call_soon(self._pending.set)

    async def _settle(self) -> None:
        """Acks and rejects, in delivery order, from this one task."""
        while True:
            await self._pending.wait()
            self._pending.clear()
            handled, self._handled = self._handled, []
            malformed, self._malformed = self._malformed, []
            # Delivery tags count per channel, and a reconnect opens a new one.
            for channel in {id(m.channel): m.channel for m in handled + malformed}.values():
                acks = [m for m in handled if m.channel is channel]
                rejects = [m for m in malformed if m.channel is channel]
                try:
                    await _settle(acks, rejects)
                    self.settled += len(acks) + len(rejects)
                except (AMQPError, aio_pika.exceptions.ChannelInvalidStateError) as error:
                    # That channel is gone: the broker redelivers what it did not get
                    # acked, which only wakes the planner again.
                    log.info("could not settle wake-ups on a closed channel: %s", error)


async def _settle(
    handled: list[AbstractIncomingMessage], malformed: list[AbstractIncomingMessage]
) -> None:
    """A `multiple` ack covers every earlier delivery of the channel, so the acks of tags
    before a rejected delivery go first, then its reject, then the rest."""
    acked = sorted(handled, key=_tag)
    for message in sorted(malformed, key=_tag):
        earlier = [m for m in acked if _tag(m) < _tag(message)]
        if earlier:
            await earlier[-1].ack(multiple=True)
            acked = acked[len(earlier) :]
        await message.reject(requeue=False)
    if acked:
        await acked[-1].ack(multiple=True)


def _tag(message: AbstractIncomingMessage) -> int:
    return message.delivery_tag or 0
