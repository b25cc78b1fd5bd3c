"""Fixtures of the expiry service's tests.

- the real InvitationService in-process on a throwaway SQLite file, on the test's fake
  clock, so the unit and application tests produce real events without a broker;
- for the integration tests, `python -m services.<name>` on the module's PostgreSQL schema
  and RabbitMQ vhost (tests/conftest.py), so nothing here can consume another test's
  commands or events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.expiry.application import Expiry
from services.invitation.application import InvitationService
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from shared import contract as c
from shared.contract import EventEnvelope, Reply
from tests.fakes import FakeClock
from tests.support import ServiceProcess, unique
from tests.support import service_env as shared_service_env

ADMIN = "admin@example.com"


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
def email() -> str:
    return f"{unique('contractor')}@example.com"


# -- the real services -------------------------------------------------------------------------


def service_env(database_url: str, amqp_url: str, **extra: str) -> dict[str, str]:
    return shared_service_env(database_url, amqp_url, **{"LOG_FORMAT": "text", **extra})


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
