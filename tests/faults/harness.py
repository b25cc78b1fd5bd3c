"""What a fault scenario runs: the services as processes, a mailbox, a load, a watch.

The load behaves as the README tells clients to: it publishes each command with
confirms, and sends it again with the same `command_id` until it is answered. The
watch keeps every event published on `invitations.events` (a durable queue, so none
is missed across a broker restart) and the mailbox every email, each with the moment
it arrived, so a scenario can tell what was lost, what came twice, and how long
things took to flow again.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import itertools
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiosmtpd.controller import Controller

from shared.contract import EventEnvelope
from shared.topology import COMMANDS_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME
from tests.faults.infra import free_port
from tests.support import ServiceProcess, service_env, wait_for


@dataclass(frozen=True)
class Plan:
    """A load of `rate` invites a second for `seconds`; the fault comes at `fault_at`."""

    rate: float = 10.0
    seconds: float = 12.0
    fault_at: float = 4.0

    @classmethod
    def chosen(cls) -> Plan:
        """The full suite's (scripts/faults: FAULTS=all) is longer and busier than CI's."""
        if os.environ.get("FAULTS") == "all":
            return cls(rate=20.0, seconds=30.0, fault_at=10.0)
        return cls()


# -- the mailbox ------------------------------------------------------------------------


class Mailbox:
    """An SMTP server on a fixed port, so it can go down and come back."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self.received: list[tuple[float, str, str]] = []  # (moment, To, Message-ID)
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.received.append((time.monotonic(), str(message["To"]), str(message["Message-ID"])))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def copies(self) -> Counter[str]:
        with self._lock:
            return Counter(to for _, to, _ in self.received)

    def message_ids(self, to: str) -> set[str]:
        with self._lock:
            return {mid for _, rcpt, mid in self.received if rcpt == to}

    def moments(self) -> list[float]:
        with self._lock:
            return [moment for moment, _, _ in self.received]


# -- the services -----------------------------------------------------------------------


class Stack:
    """The three services (and standbys) as processes on one schema and one vhost."""

    def __init__(self, database_url: str, amqp_url: str, mailbox: Mailbox, logs: Path) -> None:
        self.database_url, self.amqp_url = database_url, amqp_url
        self.mailbox, self.logs = mailbox, logs
        self.processes: dict[str, ServiceProcess] = {}
        self.ports: dict[str, int] = {}

    def start(self, key: str, service: str | None = None) -> ServiceProcess:
        """Start `services.<service>` (default: `key`) as instance `key` ("notifier-2")."""
        port = self.ports.setdefault(key, free_port())
        env = service_env(
            self.database_url,
            self.amqp_url,
            HTTP_PORT=str(port),
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.mailbox.port),
        )
        process = ServiceProcess(service or key, env, self.logs).start()
        self.processes[key] = process
        return process

    def kill(self, key: str) -> None:
        self.processes[key].kill()

    def errors_logged(self) -> list[str]:
        """Every ERROR (or worse) line the services logged so far (JSON lines)."""
        found = []
        for process in self.processes.values():
            if process.log_path.exists():
                for line in process.log_path.read_text(errors="replace").splitlines():
                    if line.startswith("{") and json.loads(line).get("level") in (
                        "error",
                        "critical",
                    ):
                        found.append(line)
        return found

    def alive(self, key: str) -> bool:
        process = self.processes[key].process
        return process is not None and process.poll() is None

    def http(self, key: str, path: str) -> tuple[int, str] | None:
        try:
            url = f"http://127.0.0.1:{self.ports[key]}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (urllib.error.URLError, OSError):
            return None

    async def ready(self, *keys: str, timeout: float = 60) -> None:
        for key in keys or tuple(self.processes):

            def answered(key: str = key) -> bool:
                assert self.alive(key), f"{key} exited:\n{self.processes[key].log()[-3000:]}"
                answer = self.http(key, "/readyz")
                return answer is not None and answer[0] == 200

            await wait_for(answered, timeout=timeout, interval=0.1, what=f"{key} ready")

    def leading_of(self, key: str) -> dict[str, float]:
        """Instance `key`'s `*_leading` gauges (none when it does not answer)."""
        answer = self.http(key, "/metrics")
        if answer is None or answer[0] != 200:
            return {}
        gauges: dict[str, float] = {}
        for name, value in LEADING.findall(answer[1]):
            gauges[name] = gauges.get(name, 0.0) + float(value)
        return gauges

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()


LEADING = re.compile(r"^(\w+_leading)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)


# -- the load ---------------------------------------------------------------------------


@dataclass
class Command:
    command_id: str
    email: str
    sends: int = 0
    confirmed_at: float | None = None
    replies: list[tuple[float, str]] = field(default_factory=list)  # (moment, status)


class Load:
    """Invites at a steady rate, each re-sent with the same command_id until answered."""

    def __init__(self, amqp_url: str, tenant: str, *, answer_within: float = 8.0) -> None:
        self._url = amqp_url
        self.tenant = tenant
        self._answer_within = answer_within
        self.commands: dict[str, Command] = {}
        self._answered: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._replies = f"faults-replies-{uuid.uuid4().hex[:8]}"

    async def __aenter__(self) -> Load:
        self._connection = await aio_pika.connect_robust(self._url, reconnect_interval=0.5)
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.declare_exchange(
            COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        # Named by us, so the robust connection declares it again after a broker restart.
        queue = await self._channel.declare_queue(self._replies, durable=True)
        await queue.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._channel.queue_delete(self._replies)
        await self._connection.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        command = self.commands.get(message.correlation_id or "")
        if command is not None:
            command.replies.append((time.monotonic(), json.loads(message.body)["status"]))
            self._answered[command.command_id].set()

    async def run(self, plan: Plan) -> None:
        """Starts the plan's commands at its rate; returns once the last one is started."""
        count = int(plan.rate * plan.seconds)
        began = time.monotonic()
        for i in range(count):
            await asyncio.sleep(max(0.0, began + i / plan.rate - time.monotonic()))
            command = Command(str(uuid.uuid4()), f"f{i}-{uuid.uuid4().hex[:8]}@example.com")
            self.commands[command.command_id] = command
            self._answered[command.command_id] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._send(command)))

    async def _send(self, command: Command) -> None:
        body = json.dumps(
            {
                "command_id": command.command_id,
                "actor": "admin@example.com",
                "tenant_id": self.tenant,
                "email": command.email,
                "role": "user",
            }
        ).encode()
        answered = self._answered[command.command_id]
        while not answered.is_set():
            command.sends += 1
            try:
                await self._exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        correlation_id=command.command_id,
                        message_id=command.command_id,
                        reply_to=self._replies,
                        user_id="guest",
                    ),
                    routing_key="invite_user",
                    timeout=5,
                )
            except Exception:  # not confirmed: the broker is away; the same command again
                await asyncio.sleep(0.5)
                continue
            if command.confirmed_at is None:
                command.confirmed_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answered.wait(), self._answer_within)

    def unanswered(self) -> list[Command]:
        return [c for c in self.commands.values() if not c.replies]

    def reply_moments(self) -> list[float]:
        return sorted(m for c in self.commands.values() for m, _ in c.replies)


# -- the watch on the events exchange ----------------------------------------------------


class Watch:
    """Every envelope published on `invitations.events`, with when it arrived."""

    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self._queue_name = f"faults-events-{uuid.uuid4().hex[:8]}"
        self.seen: list[tuple[float, EventEnvelope]] = []

    async def __aenter__(self) -> Watch:
        self._connection = await aio_pika.connect_robust(self._url, reconnect_interval=0.5)
        self._channel = await self._connection.channel()
        exchange = await self._channel.declare_exchange(
            EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await self._channel.declare_queue(self._queue_name, durable=True)
        await queue.bind(exchange, "#")
        await queue.consume(self._on_event)
        return self

    async def __aexit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            await self._channel.queue_delete(self._queue_name)
        await self._connection.close()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            envelope = EventEnvelope.model_validate_json(message.body)
            self.seen.append((time.monotonic(), envelope))

    def event_ids(self) -> Counter[str]:
        return Counter(str(e.event_id) for _, e in self.seen)

    def moments(self) -> list[float]:
        return [moment for moment, _ in self.seen]


# -- figures ----------------------------------------------------------------------------


def first_after(moments: list[float], since: float) -> float | None:
    """Seconds from `since` to the first moment after it (None: nothing came)."""
    later = [m for m in moments if m >= since]
    return round(min(later) - since, 2) if later else None


def longest_gap(moments: list[float], within: tuple[float, float]) -> float:
    """The longest time nothing arrived, between the first and the last moment in `within`."""
    inside = sorted(m for m in moments if within[0] <= m <= within[1])
    gaps = [b - a for a, b in itertools.pairwise(inside)]
    return round(max(gaps), 2) if gaps else 0.0
