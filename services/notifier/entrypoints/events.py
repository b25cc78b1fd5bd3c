"""The notifier's queue on `invitations.events`: a low-latency wake-up, not the truth.

The notifier plans from the event store itself (application.py), so an event it missed
on the broker (down, purged, dead-lettered) is still notified, and a redelivered or
republished one changes nothing. A delivery here only says "there is something new";
it is acked as soon as the planner is woken. A message that is not an event envelope is
rejected to `<queue>.dead` (the queue's dead-letter route) and never blocks the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from faststream import AckPolicy
from faststream.exceptions import RejectMessage
from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitMessage, RabbitQueue
from pydantic import ValidationError

from shared.contract import EventEnvelope
from shared.topology import EVENTS_EXCHANGE, event_queue

log = logging.getLogger(__name__)


def dead_letter_queue(queue_name: str) -> RabbitQueue:
    return RabbitQueue(
        f"{queue_name}.dead", queue_type=QueueType.QUORUM, durable=True, routing_key=""
    )


def register_wakeup(
    broker: RabbitBroker,
    queue_name: str,
    wake: Callable[[EventEnvelope], None],
    *,
    prefetch: int,
) -> None:
    async def raw_body(message: RabbitMessage) -> bytes:
        return message.body

    @broker.subscriber(
        event_queue(queue_name),
        EVENTS_EXCHANGE,
        decoder=raw_body,
        ack_policy=AckPolicy.REJECT_ON_ERROR,
        channel=Channel(prefetch_count=prefetch),
        title=queue_name,
        description="Every event (bound with #): wakes the notifier, which reads the store.",
    )
    async def on_event(body: bytes, message: RabbitMessage) -> None:
        try:
            envelope = EventEnvelope.model_validate_json(body)
        except ValidationError as error:
            log.warning(
                "dead-lettered a message that is not an event envelope (%s, %d problem(s))",
                message.raw_message.routing_key,
                error.error_count(),
            )
            raise RejectMessage from None
        wake(envelope)
