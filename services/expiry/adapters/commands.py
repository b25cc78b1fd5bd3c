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
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from pydantic import ValidationError

from services.expiry.domain.dispatch import Firing
from shared.contract import Reply
from shared.senders import broker_user
from shared.topology import COMMANDS_EXCHANGE_NAME

log = logging.getLogger(__name__)

ReplyHandler = Callable[[Reply], None]


class AmqpCommandSender:
    def __init__(
        self,
        amqp_url: str,
        *,
        on_reply: ReplyHandler,
        exchange_name: str = COMMANDS_EXCHANGE_NAME,
        publish_timeout: float = 10.0,
    ) -> None:
        self._url = amqp_url
        self._on_reply = on_reply
        self._exchange_name = exchange_name
        self._publish_timeout = publish_timeout
        # Named by us, not by the server: a robust connection re-declares it by name after
        # a reconnect, and server names (amq.gen-*) may not be declared by clients.
        self.reply_queue_name = f"expiry.replies.{uuid4().hex[:12]}"
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": "expiry"}
        )
        try:
            await self._declare(self._connection)
        except BaseException:
            await self.close()
            raise

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        # on_return_raises: a command nobody can receive (the invitation service's queue
        # does not exist yet) fails the send, so it is retried instead of silently lost.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(self.reply_queue_name, exclusive=True, auto_delete=True)
        await queue.consume(self._on_message, no_ack=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @property
    def connected(self) -> bool:
        """Open now (a robust connection reconnects by itself; this is the meantime)."""
        return self._connection is not None and not self._connection.is_closed

    async def send(self, firing: Firing) -> None:
        if self._exchange is None:
            raise ConnectionError("the command sender is not started")
        command_id = str(firing.command.command_id)
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
                user_id=broker_user(self._url),
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
