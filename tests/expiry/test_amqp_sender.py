"""The AMQP command sender on the real broker: what a command message looks like,
how its reply comes back, and what happens when nobody can receive it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage

from services.expiry.adapters.commands import AmqpCommandSender
from services.expiry.domain.deadlines import contractor_reminder, seconds
from services.expiry.domain.dispatch import Dispatcher, Firing
from shared.contract import COMMANDS, Reply
from tests.support import unique, wait_for

pytestmark = pytest.mark.integration


def a_firing() -> Firing:
    dispatcher = Dispatcher()
    at = seconds(datetime(2030, 1, 1, tzinfo=UTC))
    dispatcher.set(contractor_reminder("acme", "carol@example.com", 2.0), at)
    return dispatcher.due(at)[0]


@pytest_asyncio.fixture
async def connection(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(amqp_url)
    yield connection
    await connection.close()


async def test_a_command_goes_out_by_name_with_its_id_and_its_reply_comes_back(
    amqp_url: str, connection: aio_pika.abc.AbstractRobustConnection
) -> None:
    exchange_name = unique("commands")
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, "#")
    received: list[AbstractIncomingMessage] = []

    async def answer(message: AbstractIncomingMessage) -> None:
        received.append(message)
        reply = Reply.accepted(message.correlation_id or "", {"reminded": True})
        await channel.default_exchange.publish(
            aio_pika.Message(
                reply.model_dump_json().encode(), correlation_id=message.correlation_id
            ),
            routing_key=message.reply_to or "",
        )

    await queue.consume(answer, no_ack=True)
    replies: list[Reply] = []
    sender = AmqpCommandSender(
        connection, user_id="guest", on_reply=replies.append, exchange_name=exchange_name
    )
    await sender.start()
    try:
        firing = a_firing()
        await sender.send(firing)
        await wait_for(lambda: replies, timeout=10, what="the reply")
    finally:
        await sender.close()

    message = received[0]
    command_id = str(firing.command.command_id)
    assert message.routing_key == "remind_contractor_expiry"
    assert message.message_id == command_id
    assert message.correlation_id == command_id
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert COMMANDS["remind_contractor_expiry"].model_validate_json(message.body) == firing.command
    assert replies[0].command_id == command_id
    assert replies[0].status == "accepted"


async def test_a_command_nobody_can_receive_fails_its_send(
    connection: aio_pika.abc.AbstractRobustConnection,
) -> None:
    sender = AmqpCommandSender(
        connection, user_id="guest", on_reply=lambda _: None, exchange_name=unique("unbound")
    )
    await sender.start()
    try:
        with pytest.raises(aio_pika.exceptions.PublishError):
            await sender.send(a_firing())
    finally:
        await sender.close()


async def test_a_command_carries_the_trace_context_of_its_deadlines_event(
    amqp_url: str, connection: aio_pika.abc.AbstractRobustConnection, spans: Any
) -> None:
    exchange_name = unique("commands")
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, "#")
    received: list[AbstractIncomingMessage] = []

    async def keep(message: AbstractIncomingMessage) -> None:
        received.append(message)

    await queue.consume(keep, no_ack=True)
    sender = AmqpCommandSender(
        connection, user_id="guest", on_reply=lambda _: None, exchange_name=exchange_name
    )
    await sender.start()
    event_trace = "00-5b8aa5a2d2c872e8321cf37308d69df2-051581bf3cb55c13-01"
    try:
        await sender.send(dataclasses.replace(a_firing(), traceparent=event_trace))
        await sender.send(a_firing())  # a deadline whose event was not traced
        await wait_for(lambda: len(received) == 2, timeout=10, what="both commands")
    finally:
        await sender.close()

    header = (received[0].headers or {}).get("traceparent")
    assert isinstance(header, str)
    _, trace_id, span_id, _ = header.split("-")
    assert trace_id == "5b8aa5a2d2c872e8321cf37308d69df2"
    (publish,) = [s for s in spans.get_finished_spans() if s.context.span_id == int(span_id, 16)]
    assert publish.name == f"{exchange_name} remind_contractor_expiry publish"
    assert publish.parent.span_id == int("051581bf3cb55c13", 16)
    assert "traceparent" not in (received[1].headers or {})
