"""Sending the expiry commands: to RabbitMQ (aio-pika), or to a recording fake.

Each command asks for a reply (`reply_to` = this instance's exclusive queue,
`correlation_id` = the command id). The reply is what turns a `not_due` into a retry and
what stops the re-sends; FastStream's `broker.request` is not used because it holds a
lock for each round trip, one command at a time, where a burst of deadlines needs
hundreds in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import uuid4

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from pydantic import ValidationError

from services.expiry.domain.dispatch import Firing
from shared.contract import Reply
from shared.service import close_channel
from shared.telemetry import TRACEPARENT, SpanKind, child_span, current_traceparent
from shared.topology import COMMANDS_EXCHANGE_NAME

log = logging.getLogger(__name__)

ReplyHandler = Callable[[Reply], None]


class AmqpCommandSender:
    """Sends on a channel of its own on `connection` (the service's one)."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        *,
        user_id: str,
        on_reply: ReplyHandler,
        exchange_name: str = COMMANDS_EXCHANGE_NAME,
        publish_timeout: float = 10.0,
    ) -> None:
        self._connection = connection
        self._user_id = user_id  # the connection's broker login (rule 29)
        self._on_reply = on_reply
        self._exchange_name = exchange_name
        self._publish_timeout = publish_timeout
        # Named by us, not by the server: a robust connection re-declares it by name after
        # a reconnect, and server names (amq.gen-*) may not be declared by clients.
        self.reply_queue_name = f"expiry.replies.{uuid4().hex[:12]}"
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def start(self) -> None:
        """Declare and consume the replies; again after a failed start, on a fresh channel."""
        await self.close()
        # on_return_raises: a command nobody can receive (the invitation service's queue
        # does not exist yet) fails the send, so it is retried instead of silently lost.
        self._channel = channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(self.reply_queue_name, exclusive=True, auto_delete=True)
        await queue.consume(self._on_message, no_ack=True)
        self._exchange = exchange

    async def close(self) -> None:
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None:
            await close_channel(channel)

    async def send(self, firing: Firing) -> None:
        if self._exchange is None:
            raise ConnectionError("the command sender is not started")
        command_id = str(firing.command.command_id)
        with child_span(
            f"{self._exchange_name} {firing.name} publish",
            firing.traceparent,
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "rabbitmq", "messaging.message.id": command_id},
        ):
            await self._publish(firing, command_id, current_traceparent())

    async def _publish(self, firing: Firing, command_id: str, traceparent: str | None) -> None:
        assert self._exchange is not None
        await self._exchange.publish(
            aio_pika.Message(
                firing.command.model_dump_json().encode(),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=command_id,
                correlation_id=command_id,
                reply_to=self.reply_queue_name,
                app_id="expiry",
                # Its commands are internal: accepted only from INTERNAL_SENDERS.
                user_id=self._user_id,
                # The deadline's event's trace, continued by the intake (FastStream's
                # middleware); absent when that event was not traced or tracing is off.
                headers={} if traceparent is None else {TRACEPARENT: traceparent},
            ),
            routing_key=firing.name,
            mandatory=True,
            timeout=self._publish_timeout,
        )

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            reply = Reply.model_validate_json(message.body)
        except ValidationError:
            log.warning(
                "ignored a reply that is not a Reply (correlation %s)", message.correlation_id
            )
            return
        if reply.command_id is None and message.correlation_id:
            reply = reply.model_copy(update={"command_id": message.correlation_id})
        self._on_reply(reply)


class RecordingCommandSender:
    """A working fake: records what was sent and, if given `respond`, answers at once.

    `respond` plays the invitation service (e.g. `InvitationService.handle` in-process);
    returning None means no reply (a lost message). `fail_next` makes sends raise.
    """

    def __init__(
        self,
        respond: Callable[[Firing], Reply | None] | None = None,
        on_reply: ReplyHandler | None = None,
    ) -> None:
        self.sent: list[Firing] = []
        self.respond = respond
        self.on_reply = on_reply
        self.fail_next = 0

    async def send(self, firing: Firing) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("fake broker unavailable")
        self.sent.append(firing)
        if self.respond is not None and self.on_reply is not None:
            reply = self.respond(firing)
            if reply is not None:
                self.on_reply(reply)

    def names(self) -> list[str]:
        return [firing.name for firing in self.sent]
