"""Fixtures of the notifier tests: a real SMTP sink, database schema, broker and store.

Each test gets its own PostgreSQL schema, its own notifier queue and its own commands
exchange (so no other test, and no running invitation service, sees its messages).
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import aio_pika
import pytest
from aiosmtpd.controller import Controller

from services.invitation.application import InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from services.notifier.adapters.commands import CommandPublisher
from services.notifier.bootstrap import build_runtime
from services.notifier.runtime import NotifierRuntime
from services.notifier.settings import NotifierSettings
from shared.contract import COMMANDS, Reply
from shared.senders import broker_user
from tests.fakes import FakeClock
from tests.support import RABBITMQ, ROOT, free_port, temporary_schema

# -- SMTP sink ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    message: EmailMessage
    rcpt_to: tuple[str, ...]

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def kind(self) -> str:
        return str(self.message["X-Notification-Kind"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content()).replace("\r\n", "\n")

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content())


class SmtpSink:
    """An aiosmtpd server in a thread, on a fixed free port so it can go down and up.

    `replies` maps a recipient to the reply its RCPT gets (e.g. "451 try later"), as a
    string or a callable returning one (or None to accept). `smtputf8`: whether it
    announces SMTPUTF8 (RFC 6531), as most current servers do.
    """

    def __init__(self, *, smtputf8: bool = True) -> None:
        self.smtputf8 = smtputf8
        self.port = free_port()
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.replies: dict[str, str | Callable[[], str | None]] = {}
        # Seconds each DATA takes: a slow server keeps a burst in flight for longer.
        self.delay = 0.0
        # Seconds the next DATAs stall, one per DATA, after the server kept the message
        # and before it answers (a server that takes an email, then hangs).
        self.stalls: list[float] = []
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def to(self, recipient: str) -> list[Received]:
        return [m for m in self.messages if m.to == recipient]

    def of_kind(self, kind: str) -> list[Received]:
        return [m for m in self.messages if m.kind == kind]

    def start(self) -> None:
        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=self.smtputf8,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def rcpt_reply(self, address: str) -> str | None:
        reply = self.replies.get(address)
        return reply() if callable(reply) else reply

    def keep(self, content: bytes, rcpt_to: list[str]) -> None:
        # UTF-8 throughout: with SMTPUTF8, a header may hold an internationalised address.
        message = email.message_from_string(content.decode(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(Received(message, tuple(rcpt_to)))


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        reply = self.sink.rcpt_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        self.sink.keep(envelope.content, list(envelope.rcpt_tos))
        if self.sink.stalls:
            await asyncio.sleep(self.sink.stalls.pop(0))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


# -- database, clock, invitation service -------------------------------------------------


@pytest.fixture
def database_url() -> Iterator[str]:
    """A schema per test (not per module): a test reads every email row in it."""
    with temporary_schema("notifier") as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    """Starts at the present: the notifier sends and retries on the real time."""
    return FakeClock.starting_now()


class Invitations:
    """The real invitation service, in process: produces real events in the real store."""

    def __init__(self, service: InvitationService) -> None:
        self.service = service
        self._lock = threading.Lock()

    def do(self, name: str, *, actor: str = "admin@acme.io", **fields: Any) -> Reply:
        command = COMMANDS[name].model_validate(
            {"command_id": str(uuid4()), "actor": actor, **fields}
        )
        with self._lock:
            reply = self.service.handle(name, command)
        assert reply.status == "accepted", reply
        return reply

    def handle(self, name: str, command: Any) -> Reply:
        with self._lock:
            return self.service.handle(name, command)

    def open_sealed(self, temp_password_id: UUID) -> str | None:
        with self._lock:
            return self.service.open_sealed(temp_password_id)


@pytest.fixture
def invitations(database_url: str, secrets_key: bytes, clock: FakeClock) -> Iterator[Invitations]:
    service = InvitationService(
        InvitationStore(env=store_env(database_url)), secrets_key=secrets_key, clock=clock
    )
    yield Invitations(service)
    service.close()


# -- broker ------------------------------------------------------------------------------


@dataclass
class CommandRelay:
    """Stands in for the invitation service's intake on this test's commands exchange."""

    exchange: str
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def commands(invitations: Invitations) -> AsyncIterator[CommandRelay]:
    relay = CommandRelay(exchange=f"test.commands.{uuid4().hex[:12]}")
    connection = await aio_pika.connect_robust(RABBITMQ)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        relay.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, "#")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            body = json.loads(message.body)
            name = message.routing_key or ""
            command = COMMANDS[name].model_validate(body)
            reply = await asyncio.to_thread(invitations.handle, name, command)
            assert reply.status == "accepted", reply
            # Only once handled: a test that sees it received may read its effect.
            relay.received.append({"routing_key": message.routing_key, **body})

    await queue.consume(on_message)
    yield relay
    await exchange.delete()
    await connection.close()
    assert relay.errors == []


async def delete_queues(*names: str) -> None:
    connection = await aio_pika.connect_robust(RABBITMQ)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


# -- the notifier ------------------------------------------------------------------------


@pytest.fixture
async def settings(
    database_url: str, secrets_key: bytes, smtp: SmtpSink
) -> AsyncIterator[NotifierSettings]:
    """Settings of this test's notifier (its queue is deleted afterwards)."""
    queue = f"test.notifier.{uuid4().hex[:12]}"
    yield NotifierSettings(
        database_url=database_url,
        amqp_url=RABBITMQ,
        secrets_key=base64.b64encode(secrets_key).decode(),
        public_base_url="https://vault.test",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="notifier@vault.test",
        smtp_timeout=5.0,
        smtp_connections=4,
        notifier_queue=queue,
        notifier_commands_exchange="unset",
        notifier_retry_base_delay=0.1,
        notifier_retry_max_delay=0.5,
        notifier_poll_interval=0.1,
        notifier_lease_ttl=1.5,  # a restart after a kill waits out the fence: keep it short
        log_format="text",
    )
    await delete_queues(queue, f"{queue}.dead")


@pytest.fixture
async def start_notifier(
    settings: NotifierSettings, commands: CommandRelay
) -> AsyncIterator[Callable[..., Any]]:
    """Starts an in-process notifier (planner + sender); stopped at teardown."""
    running: list[tuple[NotifierRuntime, CommandPublisher]] = []
    connections: list[aio_pika.abc.AbstractRobustConnection] = []

    async def start(**overrides: Any) -> NotifierRuntime:
        chosen = settings.model_copy(
            update={"notifier_commands_exchange": commands.exchange, **overrides}
        )
        connection = await aio_pika.connect_robust(chosen.amqp_url)
        connections.append(connection)
        publisher = CommandPublisher(
            connection, chosen.notifier_commands_exchange, user_id=broker_user(chosen.amqp_url)
        )
        runtime = await asyncio.to_thread(build_runtime, chosen, publisher)
        runtime.start()
        running.append((runtime, publisher))
        return runtime

    yield start
    for runtime, publisher in running:
        await stop_notifier(runtime, publisher)
    for connection in connections:
        await connection.close()


async def stop_notifier(runtime: NotifierRuntime, publisher: CommandPublisher | None) -> None:
    await runtime.stop()
    if publisher is not None:
        await publisher.close()
    await asyncio.to_thread(runtime.close)


def subprocess_env(
    settings: NotifierSettings, commands_exchange: str, **extra: str
) -> dict[str, str]:
    """The environment of a `python -m services.notifier` with these settings."""
    assert settings.secrets_key is not None
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AMQP_URL": settings.amqp_url,
        "DATABASE_URL": settings.database_url,
        "SECRETS_KEY": settings.secrets_key.get_secret_value(),
        "PUBLIC_BASE_URL": settings.public_base_url,
        "SMTP_HOST": settings.smtp_host,
        "SMTP_PORT": str(settings.smtp_port),
        "SMTP_FROM": settings.smtp_from,
        "SMTP_CONNECTIONS": str(settings.smtp_connections),
        "NOTIFIER_QUEUE": settings.notifier_queue,
        "NOTIFIER_COMMANDS_EXCHANGE": commands_exchange,
        "NOTIFIER_POLL_INTERVAL": str(settings.notifier_poll_interval),
        "NOTIFIER_RETRY_BASE_DELAY": str(settings.notifier_retry_base_delay),
        "NOTIFIER_RETRY_MAX_DELAY": str(settings.notifier_retry_max_delay),
        "NOTIFIER_LEASE_TTL": str(settings.notifier_lease_ttl),
        "SMTP_TIMEOUT": str(settings.smtp_timeout),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        **extra,
    }


PYTHON = sys.executable
