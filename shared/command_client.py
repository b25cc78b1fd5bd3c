"""Send commands to the invitation service and await their replies (aio-pika).

Used by our own services (expiry, notifier), the walkthrough and the tests. One
exclusive reply queue per client; replies are matched by correlation id. Every command
carries AMQP `user_id` = the login of `amqp_url` (rule 29: the invitation service refuses
a command without it). (FastStream's
`broker.request` to an exchange failed here with Direct Reply-To: "fast reply consumer
does not exist", so this stays on aio-pika.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import uuid4

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.contract import Reply
from shared.senders import broker_user
from shared.topology import COMMANDS_EXCHANGE_NAME


class CommandClient:
    def __init__(self, amqp_url: str, *, user_id: bool = True) -> None:
        """`user_id=False` sends commands without it: only to test their refusal."""
        self._url = amqp_url
        self._user_id = broker_user(amqp_url) if user_id else None
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._reply_queue: aio_pika.abc.AbstractQueue | None = None
        self._waiting: dict[str, asyncio.Future[Reply]] = {}

    async def __aenter__(self) -> CommandClient:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._reply_queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        for future in self._waiting.values():
            future.cancel()
        if self._connection is not None:
            await self._connection.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(Reply.model_validate_json(message.body))

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        reply: bool = True,
        content_type: str = "application/json",
        message_id: str | None = None,
    ) -> asyncio.Future[Reply] | None:
        assert self._exchange is not None, "not connected"
        assert self._reply_queue is not None, "not connected"
        correlation_id = str(uuid4())
        future: asyncio.Future[Reply] | None = None
        if reply:
            future = asyncio.get_running_loop().create_future()
            self._waiting[correlation_id] = future
        await self._exchange.publish(
            aio_pika.Message(
                body,
                content_type=content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=correlation_id,
                message_id=message_id or correlation_id,
                reply_to=self._reply_queue.name if reply else None,
                user_id=self._user_id,
            ),
            routing_key=routing_key,
        )
        return future

    async def send(self, name: str, body: dict[str, Any], *, within: float = 30.0) -> Reply:
        """Publish command `name` and wait for its one reply."""
        message_id = str(body.get("command_id") or uuid4())
        future = await self.publish_raw(
            name, json.dumps(body, default=str).encode(), message_id=message_id
        )
        assert future is not None
        return await asyncio.wait_for(future, within)

    async def fire(self, name: str, body: dict[str, Any]) -> None:
        """Publish command `name` without asking for a reply."""
        message_id = str(body.get("command_id") or uuid4())
        await self.publish_raw(
            name, json.dumps(body, default=str).encode(), reply=False, message_id=message_id
        )
