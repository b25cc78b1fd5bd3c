"""The real services as processes, on a fresh schema and vhost, with an SMTP sink.

    async with running_stack(log_dir, services=("invitation", "notifier")) as stack:
        stack.amqp_url, stack.database_url    # the fresh vhost and schema
        stack.sink                            # the SmtpSink the notifier sends to
        stack.env                             # the environment the services run with

Everything is dropped on the way out (processes stopped, schema and vhost deleted), also
when the benchmark fails. `env` overrides the services' settings (say `BATCH_MAX`).
`running_stack` returns once the pipeline works end to end: the invitation service
answers commands and, when the notifier runs, a probe invite's email has reached the
sink (the notifier's start-up takes seconds; a benchmark must not time it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.smtp_sink import SmtpSink
from shared.command_client import CommandClient
from tests.support import (
    ServiceProcess,
    invitation_service_ready,
    service_env,
    temporary_schema,
    temporary_vhost,
)

__all__ = [
    "LOG_DIR",
    "Stack",
    "fresh_stack",
    "running_stack",
    "wait_until_answering",
    "wait_until_delivering",
]

LOG_DIR = Path("var/bench/logs")


@dataclass
class Stack:
    database_url: str
    amqp_url: str
    sink: SmtpSink
    env: dict[str, str]
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def pid(self, name: str) -> int:
        """For attaching a profiler (py-spy) to a service."""
        process = self.processes[name].process
        assert process is not None
        return process.pid

    def check_running(self) -> None:
        for name, service in self.processes.items():
            assert service.process is not None
            if service.process.poll() is not None:
                raise RuntimeError(f"{name} exited; its log: {service.log_path}")


async def wait_until_answering(amqp_url: str, within: float = 60.0) -> None:
    """Until the invitation service replies to a command (a harmless account probe)."""
    async with CommandClient(amqp_url) as client:
        await invitation_service_ready(client, timeout=within)


async def wait_until_delivering(stack: Stack, within: float = 60.0) -> None:
    """Until an invite sent now has had its email accepted by the sink."""
    probe = f"probe-{uuid.uuid4().hex[:8]}@bench.example"
    async with CommandClient(stack.amqp_url) as client:
        body = {
            "command_id": str(uuid.uuid4()),
            "tenant_id": "bench-probe",
            "actor": "service:bench",
            "email": probe,
            "role": "user",
        }
        await client.send("invite_user", body, within=within)
    deadline = time.monotonic() + within
    while not any(email.recipient == probe for email in stack.sink.received()):
        stack.check_running()
        if time.monotonic() > deadline:
            raise RuntimeError("the probe invite's email never reached the sink")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def fresh_stack(log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """A fresh schema, vhost and SMTP sink, and the services' environment for them (no
    process started yet); all dropped on the way out."""
    with (
        temporary_schema() as database_url,
        temporary_vhost() as amqp_url,
        SmtpSink(log_dir) as sink,
    ):
        service_vars = service_env(
            database_url,
            amqp_url,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            SMTP_FROM="invitations@bench.example",
            PUBLIC_BASE_URL="https://vault.bench.example",
        )
        service_vars.update(env or {})
        yield Stack(database_url, amqp_url, sink, service_vars)


@contextlib.asynccontextmanager
async def running_stack(
    log_dir: Path = LOG_DIR,
    *,
    services: Sequence[str] = ("invitation", "notifier"),
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Stack]:
    with fresh_stack(log_dir, env) as stack:
        try:
            # The invitation service first: it creates the tables the others read.
            for name in services:
                stack.processes[name] = ServiceProcess(name, stack.env, log_dir).start()
                if name == "invitation":
                    await wait_until_answering(stack.amqp_url)
            if "notifier" in services:
                await wait_until_delivering(stack)
            yield stack
        finally:
            # Stopping takes up to 10 s each: stop them side by side.
            await asyncio.gather(
                *(asyncio.to_thread(p.stop) for p in reversed(stack.processes.values()))
            )
