"""RabbitMQ topology, declared once. Names are part of the public contract."""

from __future__ import annotations

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

COMMANDS_EXCHANGE_NAME = "invitations.commands"
EVENTS_EXCHANGE_NAME = "invitations.events"
COMMANDS_QUEUE_NAME = "invitation.commands"
DEAD_LETTER_QUEUE_NAME = "invitation.commands.dead"
# Broker-level dead-lettering (a message rejected after its delivery limit, e.g. one
# that crashes the service every time) goes through this exchange to the same queue.
DEAD_LETTER_EXCHANGE_NAME = "invitations.commands.dlx"

# Headers put on a dead-lettered command, beside RabbitMQ's own x-death.
DEAD_LETTER_REASON_HEADER = "x-dead-letter-reason"
DEAD_LETTER_DETAIL_HEADER = "x-dead-letter-detail"
DEAD_LETTER_ROUTING_KEY_HEADER = "x-original-routing-key"

COMMAND_DELIVERY_LIMIT = 5

COMMANDS_EXCHANGE = RabbitExchange(COMMANDS_EXCHANGE_NAME, type=ExchangeType.TOPIC, durable=True)
EVENTS_EXCHANGE = RabbitExchange(EVENTS_EXCHANGE_NAME, type=ExchangeType.TOPIC, durable=True)
DEAD_LETTER_EXCHANGE = RabbitExchange(
    DEAD_LETTER_EXCHANGE_NAME, type=ExchangeType.FANOUT, durable=True
)

COMMANDS_QUEUE = RabbitQueue(
    COMMANDS_QUEUE_NAME,
    queue_type=QueueType.QUORUM,
    durable=True,
    routing_key="#",
    arguments={
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE_NAME,
        "x-delivery-limit": COMMAND_DELIVERY_LIMIT,
    },
)
DEAD_LETTER_QUEUE = RabbitQueue(
    DEAD_LETTER_QUEUE_NAME, queue_type=QueueType.QUORUM, durable=True, routing_key=""
)


def event_queue(name: str, *, delivery_limit: int = 10) -> RabbitQueue:
    """A consumer's durable quorum queue on the events exchange, with its own dead letters.

    Bound with `#` by the caller; poison events go to `<name>.dead` after `delivery_limit`.
    """
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key="#",
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{name}.dead",
            "x-delivery-limit": delivery_limit,
        },
    )
