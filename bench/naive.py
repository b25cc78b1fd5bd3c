"""The naive pipeline the throughput figure is compared with, built from the same parts.

What a first version of this system would do, one thing at a time:

- `python -m bench.naive intake`: consumes `invitation.commands` with prefetch 1; per
  command, one eventsourcing save (`InvitationService.handle`: the same aggregates, side
  tables and idempotency as the real service), then reads the events it stored and
  publishes them to `invitations.events` one by one, awaiting each publisher confirm,
  then replies and acks.
- `python -m bench.naive mailer`: one consumer of every event (prefetch 1): plans the
  emails with the notifier's own planning function, opens the sealed password, renders
  with the notifier's templates, sends over one reused SMTP connection and, for an
  automatic password, publishes `record_temp_password_delivered` (as the real notifier
  does, so the sealed copy is destroyed: the same work per invite).

The same broker, database server and SMTP sink as the real services; its own vhost and
schema. It reads the services' environment (DATABASE_URL, AMQP_URL, SMTP_*,
SECRETS_KEY). `naive_stack` starts both processes, like `bench.services.running_stack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench.services import LOG_DIR, Stack, fresh_stack, wait_until_answering
from services.invitation.application import InvitationService
from services.invitation.entrypoints.commands import Malformed, parse_command
from services.invitation.eventstore import (
    EventLog,
    InvitationStore,
    SealedPasswords,
    store_env,
)
from services.notifier.adapters.commands import delivered_command
from services.notifier.adapters.composer import Composer
from services.notifier.adapters.ledger import OutboxEmail
from services.notifier.adapters.rendering import Renderer
from services.notifier.adapters.smtp import SmtpMailer
from services.notifier.bootstrap import sealed_copies, smtp_config
from services.notifier.domain.planning import plan
from services.notifier.settings import NotifierSettings
from shared.contract import EventEnvelope, Reply
from shared.event_loop import run
from shared.secrets import TokenSigner
from shared.topology import COMMANDS_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME
from tests.support import ServiceProcess

__all__ = ["naive_stack"]

_QUORUM = {"x-queue-type": "quorum"}
MAILER_QUEUE = "naive.mailer"


async def _stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def intake(settings: NotifierSettings) -> None:
    store = InvitationStore(env=store_env(settings.database_url))
    service = InvitationService(store, secrets_key=settings.secrets_key_bytes)
    events = EventLog(settings.database_url, store=store)
    position = events.max_position()
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=1)
    commands = await channel.declare_exchange(
        COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
    )
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue("invitation.commands", durable=True, arguments=_QUORUM)
    await queue.bind(commands, "#")

    async def on_command(message: AbstractIncomingMessage) -> None:
        nonlocal position
        parsed = parse_command(message.routing_key or "", message.body, message.user_id)
        if isinstance(parsed, Malformed):
            reply = Reply.rejected(parsed.command_id, parsed.code, parsed.message)
        else:
            reply = await asyncio.to_thread(
                service.handle, parsed.name, parsed.command, parsed.sender
            )
            stored, last = await asyncio.to_thread(events.read_with_high_water, position, 1000)
            for envelope in stored:  # one at a time, each confirm awaited
                await exchange.publish(
                    aio_pika.Message(
                        envelope.model_dump_json().encode(),
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=str(envelope.event_id),
                    ),
                    routing_key=envelope.event_type,
                )
            position = last
        if message.reply_to:
            await channel.default_exchange.publish(
                aio_pika.Message(
                    reply.model_dump_json().encode(),
                    content_type="application/json",
                    correlation_id=message.correlation_id,
                ),
                routing_key=message.reply_to,
            )
        await message.ack()

    await queue.consume(on_command)
    await _stopped()
    await connection.close()
    service.close()


async def mailer(settings: NotifierSettings) -> None:
    events = EventLog(settings.database_url)
    passwords = SealedPasswords(sealed_copies(events), settings.secrets_key_bytes)
    composer = Composer(
        Renderer(settings.product_name),
        TokenSigner(settings.secrets_key_bytes),
        settings.smtp_from,
        settings.public_base_url,
    )
    smtp = SmtpMailer(smtp_config(settings))
    state: dict[str, dict[str, Any]] = {}
    memory = _Memory(state)
    connection = await aio_pika.connect_robust(settings.amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=1)
    commands = await channel.declare_exchange(
        COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
    )
    exchange = await channel.declare_exchange(
        EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(MAILER_QUEUE, durable=True, arguments=_QUORUM)
    await queue.bind(exchange, "#")

    async def on_event(message: AbstractIncomingMessage) -> None:
        envelope = EventEnvelope.model_validate_json(message.body)
        for email in plan(memory, envelope):
            password: str | None = None
            if email.temp_password_id is not None:
                opened = await asyncio.to_thread(passwords.open_many, [email.temp_password_id])
                value = opened[email.temp_password_id]
                password = value if isinstance(value, str) else None
            row = OutboxEmail(
                key=email.key,
                event_id=email.event_id,
                position=email.position,
                kind=email.kind,
                recipient=email.recipient,
                locale=email.locale,
                tenant_id=email.tenant_id,
                context=dict(email.context),
                invitation_id=email.invitation_id,
                link_generation=email.link_generation,
                temp_password_id=email.temp_password_id,
                attempts=0,
                last_error=None,
            )
            _, body = composer.compose(row, password, time.time())
            await smtp.send(body, email.recipient)
            if password is not None and email.temp_password_id is not None:
                await _record_delivered(commands, email.recipient, email.temp_password_id)
        await message.ack()

    await queue.consume(on_event)
    await _stopped()
    await connection.close()
    await smtp.close()
    events.close()


async def _record_delivered(
    exchange: aio_pika.abc.AbstractExchange, email: str, temp_password_id: UUID
) -> None:
    command = delivered_command(email, temp_password_id)
    await exchange.publish(
        aio_pika.Message(
            command.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(command.command_id),
        ),
        routing_key="record_temp_password_delivered",
    )


class _Memory:
    """The planner's state in a dict: the naive mailer remembers nothing across restarts."""

    def __init__(self, values: dict[str, dict[str, Any]]) -> None:
        self._values = values

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._values.get(key)
        return None if value is None else json.loads(json.dumps(value))

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._values[key] = json.loads(json.dumps(value, default=str))

    def delete(self, key: str) -> None:
        self._values.pop(key, None)


@contextlib.asynccontextmanager
async def naive_stack(log_dir: Path = LOG_DIR) -> AsyncIterator[Stack]:
    """The naive intake and mailer as processes, on a fresh schema, vhost and sink."""
    with fresh_stack(log_dir) as stack:
        try:
            for role in ("intake", "mailer"):
                stack.processes[role] = _NaiveProcess(role, stack.env, log_dir).start()
                if role == "intake":
                    await wait_until_answering(stack.amqp_url)
            # Events published before the mailer's queue exists would be lost to it.
            await _wait_for_consumer(stack.amqp_url, MAILER_QUEUE)
            yield stack
        finally:
            await asyncio.gather(
                *(asyncio.to_thread(p.stop) for p in reversed(stack.processes.values()))
            )


async def _wait_for_consumer(amqp_url: str, queue_name: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        while True:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                queue = await channel.declare_queue(queue_name, passive=True)
                if queue.declaration_result.consumer_count:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing consumes {queue_name}")
            await asyncio.sleep(0.2)


class _NaiveProcess(ServiceProcess):
    """`python -m bench.naive ROLE`, reusing the services' process handling."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path) -> None:
        super().__init__(f"naive-{role}", env, log_dir)
        self.role = role

    def start(self) -> _NaiveProcess:
        import subprocess

        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.naive", self.role],
            cwd=Path(__file__).resolve().parents[1],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self


if __name__ == "__main__":
    roles = {"intake": intake, "mailer": mailer}
    # The services' own event loop (uvloop), so the ratio compares designs, not loops.
    run(roles[sys.argv[1]](NotifierSettings()))
