"""Test support over the real PostgreSQL and RabbitMQ on this machine.

Isolation: each test module gets its own PostgreSQL schema and its own RabbitMQ vhost,
so services started by different tests can never consume each other's commands.

The servers' addresses are read here and nowhere else: TEST_POSTGRES_URL and
TEST_RABBIT_HOST point every test, and the tier guard in tests/conftest.py, elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import psycopg
from psycopg import sql

from shared.command_client import CommandClient
from shared.contract import EventEnvelope
from shared.topology import EVENTS_EXCHANGE_NAME

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
RABBIT_HOST = os.environ.get("TEST_RABBIT_HOST", "127.0.0.1:5672")
RABBITMQ = f"amqp://guest:guest@{RABBIT_HOST}/"  # the default vhost
TEST_SECRETS_KEY = "q8TzS6m0gk3cQm7m2u9yqkq0wJ8H1cX8b9y6mQ3c2Vw="


def suffix() -> str:
    """Ten random hex digits, for names no other test (or run) uses."""
    return uuid.uuid4().hex[:10]


def unique(prefix: str) -> str:
    return f"{prefix}_{suffix()}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def temporary_schema(prefix: str = "t") -> Iterator[str]:
    """A DATABASE_URL on a fresh schema, dropped afterwards."""
    schema = unique(prefix)
    try:
        yield f"{POSTGRES}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def temporary_broker_user(amqp_url: str, prefix: str) -> Iterator[str]:
    """A broker user of its own on `amqp_url`'s vhost (all permissions there, nowhere
    else), deleted afterwards; yields its AMQP_URL. Commands it publishes carry its
    name as `user_id`."""
    name, password = unique(prefix), uuid.uuid4().hex
    vhost = amqp_url.rsplit("/", 1)[1] or "/"
    _rabbitmqctl("add_user", name, password)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, name, ".*", ".*", ".*")
        yield f"amqp://{name}:{password}@{RABBIT_HOST}/{vhost}"
    finally:
        _rabbitmqctl("delete_user", name)


@contextlib.contextmanager
def temporary_vhost() -> Iterator[str]:
    """An AMQP_URL on a fresh vhost, deleted afterwards (with everything in it)."""
    vhost = unique("test")
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@{RABBIT_HOST}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


async def wait_for(
    condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def invitation_service_ready(client: CommandClient, timeout: float = 30) -> None:
    """Waits until the invitation service answers commands (its consumer is up)."""

    async def answered() -> bool:
        body = {
            "command_id": str(uuid.uuid4()),
            "actor": "service:test",
            "email": f"{unique('probe')}@example.com",
        }
        try:
            await client.send("register_account", body, within=1.0)
        except TimeoutError:
            return False
        return True

    await wait_for(answered, timeout=timeout, what="the invitation service to answer")


async def send_accepted(client: CommandClient, name: str, **fields: Any) -> dict[str, Any]:
    """Sends command `name` as an administrator; its reply must accept it. The result."""
    body = {"command_id": str(uuid.uuid4()), "actor": "admin@example.com", **fields}
    reply = await client.send(name, body, within=30)
    assert reply.status == "accepted", reply
    assert reply.result is not None
    return reply.result


async def enable_contractors(client: CommandClient, tenant: str, *reminders: str) -> None:
    """Lets `tenant` invite contractors, reminded `reminders` (ISO 8601) before their end."""
    await send_accepted(
        client,
        "configure_tenant",
        tenant_id=tenant,
        contractor_enabled=True,
        expiry_reminders=list(reminders),
    )


async def send_with_end_in(
    client: CommandClient, seconds: float, name: str, **fields: Any
) -> datetime:
    """Sends command `name` (accepted) with an end of access `seconds` from now: that end."""
    end = datetime.now(UTC) + timedelta(seconds=seconds)
    await send_accepted(client, name, access_expires_at=end.isoformat(), **fields)
    return end


def service_env(database_url: str, amqp_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SQLITE_"))}
    env.update(
        DATABASE_URL=database_url,
        AMQP_URL=amqp_url,
        SECRETS_KEY=TEST_SECRETS_KEY,
        LOG_FORMAT="json",
        # TEST_SERVICE_LOG_LEVEL=DEBUG: the services' own debug lines, to trace a run.
        LOG_LEVEL=os.environ.get("TEST_SERVICE_LOG_LEVEL", "INFO"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class ServiceProcess:
    """`python -m services.<name>` as a child process, with its log in a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 12.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "_log"):
            self._log.close()


class EventTap:
    """An exclusive queue on `invitations.events` that collects every envelope."""

    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self.envelopes: list[EventEnvelope] = []
        self.message_ids: list[str] = []
        self.headers: list[dict[str, Any]] = []

    async def __aenter__(self) -> EventTap:
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        await queue.consume(self._on_message)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._connection.close()

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            self.envelopes.append(EventEnvelope.model_validate_json(message.body))
            self.message_ids.append(message.message_id or "")
            self.headers.append(dict(message.headers or {}))

    def of_type(self, event_type: str) -> list[EventEnvelope]:
        return [e for e in self.envelopes if e.event_type == event_type]

    def for_invitation(self, invitation_id: str) -> list[EventEnvelope]:
        return [e for e in self.envelopes if e.data.get("invitation_id") == invitation_id]


# What prometheus_client's default registry holds in every process: its collectors.
PROCESS_METRIC_PREFIXES = ("process_", "python_")


def foreign_metrics(exposition: str, prefix: str) -> list[str]:
    """The metric families in a /metrics text that are neither the service's (`prefix`)
    nor the process collectors' (one `# TYPE` line per family)."""
    names = [line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")]
    assert names, "no metric at all"
    return [n for n in names if not n.startswith((prefix, *PROCESS_METRIC_PREFIXES))]
