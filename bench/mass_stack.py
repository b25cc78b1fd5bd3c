"""The processes a mass invite runs through, for one benchmark run.

`python -m services.invitation` and `python -m services.notifier` on a PostgreSQL schema
and RabbitMQ vhost of their own (dropped afterwards), handing their emails to an aiosmtpd
sink that only notes who was accepted and when: parsing 10,000 messages would cost the
benchmark's own process CPU that the services need.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller

from shared.command_client import CommandClient
from tests.support import (
    ROOT,
    ServiceProcess,
    service_env,
    temporary_schema,
    temporary_vhost,
    wait_for,
)

LOG_DIR = ROOT / "var" / "bench" / "logs"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RecipientSink:
    """An SMTP server that accepts everything and remembers when each recipient got mail."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._lock = threading.Lock()
        self._accepted: dict[str, float] = {}  # recipient -> perf_counter of its first mail
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook
        now = time.perf_counter()
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self._accepted.setdefault(recipient.lower(), now)
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def last_of(self, recipients: Iterable[str]) -> float | None:
        """When the last of `recipients` got its first mail, or None while one is missing."""
        with self._lock:
            times = [self._accepted.get(r.lower()) for r in recipients]
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    def first_of(self, recipients: Iterable[str]) -> float | None:
        """When the first of `recipients` got mail, or None if none has."""
        with self._lock:
            times = [t for r in recipients if (t := self._accepted.get(r.lower())) is not None]
        return min(times, default=None)

    def missing(self, recipients: Iterable[str]) -> int:
        with self._lock:
            return sum(1 for r in recipients if r.lower() not in self._accepted)


@dataclass
class MassStack:
    client: CommandClient
    sink: RecipientSink
    database_url: str
    pids: dict[str, int]  # service name -> process id

    def cpu_seconds(self, service: str) -> float:
        """CPU time (user + system) the service's process has used so far (Linux /proc)."""
        with open(f"/proc/{self.pids[service]}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _answers(client: CommandClient) -> bool:
    body = {
        "command_id": str(uuid.uuid4()),
        "actor": "service:bench",
        "email": f"probe-{uuid.uuid4().hex[:8]}@bench.example",
    }
    try:
        await client.send("register_account", body, within=1.0)
    except TimeoutError:
        return False
    return True


async def _emails_flow(client: CommandClient, sink: RecipientSink) -> None:
    """One invite in a tenant of its own, until its email is accepted: the notifier is up."""
    email = f"warmup-{uuid.uuid4().hex[:8]}@bench.example"
    body = {
        "command_id": str(uuid.uuid4()),
        "actor": "service:bench",
        "tenant_id": f"warmup-{uuid.uuid4().hex[:8]}",
        "email": email,
        "role": "user",
    }
    reply = await client.send("invite_user", body)
    assert reply.status == "accepted", reply.error
    await wait_for(lambda: sink.last_of([email]), timeout=60, what="the warm-up email")


@asynccontextmanager
async def mass_stack(**extra_env: str) -> AsyncIterator[MassStack]:
    """Both services up, the command path and the email path each proven once."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with temporary_schema() as database_url, temporary_vhost() as amqp_url:
        sink = RecipientSink()
        sink.start()
        env = service_env(
            database_url,
            amqp_url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            SMTP_FROM="invitations@bench.example",
            LOG_LEVEL="WARNING",
            **extra_env,
        )
        processes = [ServiceProcess(name, env, LOG_DIR) for name in ("invitation", "notifier")]
        try:
            for process in processes:
                process.start()
            async with CommandClient(amqp_url) as client:
                await wait_for(lambda: _answers(client), timeout=60, what="the invitation service")
                await _emails_flow(client, sink)
                pids = {p.name: p.process.pid for p in processes if p.process is not None}
                yield MassStack(client, sink, database_url, pids)
        finally:
            # Stop both before the schema and vhost go, concurrently (each may take seconds).
            await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes))
            sink.stop()
