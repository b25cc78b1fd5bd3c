"""Fixtures for the operator CLI: a fresh PostgreSQL schema per test, a service to make events.

The CLI runs in-process through typer's CliRunner with the same environment variables the
console script reads; one test runs the installed script itself.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from typer.testing import CliRunner, Result

from services.cli.main import app
from services.invitation.application import InvitationService
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from shared import contract as c
from shared.contract import EventEnvelope
from shared.database import postgres_conninfo
from shared.secrets import TokenSigner
from tests.fakes import FakeClock
from tests.support import RABBITMQ, temporary_schema


@dataclass
class Store:
    """One test's event store, the service writing to it, and the CLI reading it."""

    url: str
    schema: str
    secrets_key: bytes
    clock: FakeClock
    service: InvitationService
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**self.env, **env})

    def command(self, name: str, *, sender: str | None = None, **fields: Any) -> c.Reply:
        fields.setdefault("actor", "admin@example.com")
        model = c.COMMANDS[name](command_id=uuid4(), **fields)
        reply = self.service.handle(name, model, sender)
        assert reply.status == "accepted", reply
        return reply

    def invite(self, tenant: str, email: str, role: str = "user", **fields: Any) -> UUID:
        reply = self.command("invite_user", tenant_id=tenant, email=email, role=role, **fields)
        assert reply.result is not None
        return UUID(reply.result["invitation_id"])

    def accept(self, tenant: str, invitation_id: UUID, email: str, generation: int = 1) -> None:
        token = TokenSigner(self.secrets_key).token(invitation_id, generation)
        self.command("accept_invitation", tenant_id=tenant, token=token, email=email, actor=email)

    def envelopes(self) -> list[EventEnvelope]:
        log = EventLog(self.url)
        try:
            return list(log.iterate())
        finally:
            log.close()

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(postgres_conninfo(self.url), autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def make_store() -> Iterator[Callable[[], Store]]:
    made: list[Store] = []
    schemas = contextlib.ExitStack()

    def make() -> Store:
        url = schemas.enter_context(temporary_schema("cli"))
        schema = url.rpartition("schema=")[2]
        key = secrets.token_bytes(32)
        # The CLI reads the real time (ages, expiries): events are placed around it.
        clock = FakeClock.starting_now()
        service = InvitationService(
            InvitationStore(env=store_env(url)), secrets_key=key, clock=clock
        )
        env = {
            "DATABASE_URL": url,
            "SECRETS_KEY": base64.b64encode(key).decode(),
            "AMQP_URL": RABBITMQ,
            "DEVELOPMENT_MODE": "false",
        }
        store = Store(url, schema, key, clock, service, env)
        made.append(store)
        return store

    with schemas:
        yield make
        for store in made:
            store.service.close()


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    return make_store()
