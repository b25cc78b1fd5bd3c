"""Fixtures of the expiry service's tests.

Kept to this folder on purpose (the project-wide conftest may change under us):
- a fake clock and the real InvitationService in-process on a throwaway SQLite file,
  so the unit and application tests produce real events without a broker;
- for the integration tests, a fresh PostgreSQL schema and a fresh RabbitMQ vhost per
  module, so nothing here can consume another test's commands or events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from services.expiry.application import Expiry
from services.invitation.adapters.store import store_env
from services.invitation.application import InvitationService, InvitationStore
from services.invitation.event_log import EventLog
from shared import contract as c
from shared.contract import EventEnvelope, Reply

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
RABBIT_HOST = os.environ.get("TEST_RABBIT_HOST", "127.0.0.1:5672")
SECRETS_KEY = "q8TzS6m0gk3cQm7m2u9yqkq0wJ8H1cX8b9y6mQ3c2Vw="
ADMIN = "admin@example.com"
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:10]}"


# -- time ------------------------------------------------------------------------------------


class FakeClock:
    """The one clock of a test: the invitation service reads `now`, the expiry `seconds()`."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def to(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- the invitation service in-process -------------------------------------------------------


class Invitations:
    """The real InvitationService on SQLite, plus a few readable command helpers."""

    def __init__(self, database_url: str, clock: Callable[[], datetime]) -> None:
        self.database_url = database_url
        self.service = InvitationService(
            InvitationStore(env=store_env(database_url)),
            secrets_key=b"k" * 32,
            clock=clock,
        )
        self.log = EventLog(database_url, store=self.service.store)

    def close(self) -> None:
        self.service.close()

    def run(self, name: str, **fields: Any) -> Reply:
        fields.setdefault("command_id", uuid4())
        fields.setdefault("actor", ADMIN)
        return self.service.handle(name, c.COMMANDS[name](**fields))

    def ok(self, name: str, **fields: Any) -> dict[str, Any]:
        reply = self.run(name, **fields)
        assert reply.status == "accepted", reply
        assert reply.result is not None
        return reply.result

    def enable_contractors(self, tenant_id: str, reminders: list[timedelta] | None = None) -> None:
        settings: dict[str, Any] = {"contractor_enabled": True}
        if reminders is not None:
            settings["expiry_reminders"] = reminders
        self.ok("configure_tenant", tenant_id=tenant_id, **settings)

    def invite_contractor(self, tenant_id: str, email: str, end: datetime) -> dict[str, Any]:
        return self.ok(
            "invite_user",
            tenant_id=tenant_id,
            email=email,
            role="contractor",
            access_expires_at=end,
        )

    def events(self, event_type: str | None = None) -> list[EventEnvelope]:
        found = self.log.read(0, 100_000)
        return [e for e in found if event_type is None or e.event_type == event_type]

    def settle_due(self, expiry: Expiry, now: float) -> list[str]:
        """Fire what is due and deliver each command here at once, as the broker would."""
        names = []
        for firing in expiry.due(now):
            names.append(firing.name)
            expiry.settle(self.service.handle(firing.name, firing.command), now)
        return names


@pytest.fixture
def invitations(tmp_path: Path, clock: FakeClock) -> Iterator[Invitations]:
    service = Invitations(f"sqlite:///{tmp_path / 'events.db'}", clock)
    yield service
    service.close()


@pytest.fixture
def tenant() -> str:
    return unique("tenant")


@pytest.fixture
def email() -> str:
    return f"{unique('contractor')}@example.com"


# -- the real database and broker ------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    schema = unique("expiry").replace("-", "_")
    yield f"{POSTGRES}?schema={schema}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    vhost = unique("expiry-test")
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
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


class ServiceProcess:
    """`python -m services.<name>` as a child process, its output in a log file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}-{uuid4().hex[:6]}.log"
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

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if hasattr(self, "_log"):
            self._log.close()


def service_env(database_url: str, amqp_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SQLITE_"))}
    env.update(
        DATABASE_URL=database_url,
        AMQP_URL=amqp_url,
        SECRETS_KEY=SECRETS_KEY,
        LOG_FORMAT="text",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.fixture
def start_service(
    database_url: str, amqp_url: str, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start `python -m services.<name>` on this module's schema and vhost."""
    started: list[ServiceProcess] = []

    def start(name: str, **extra_env: str) -> ServiceProcess:
        process = ServiceProcess(name, service_env(database_url, amqp_url, **extra_env), tmp_path)
        started.append(process.start())
        return process

    yield start
    for process in started:
        with contextlib.suppress(Exception):
            process.stop()
