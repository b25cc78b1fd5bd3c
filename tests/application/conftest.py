"""The InvitationService contract suite, run on an SQLite file and on PostgreSQL.

Every test gets a fresh store (its own SQLite file, or its own Postgres schema dropped
afterwards), a fake clock it can move, a cheap password hash, and a fresh tenant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from services.invitation.application import InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from shared.secrets import HashCost, TempPasswordHasher
from tests.fakes import FakeClock
from tests.support import temporary_schema

from .console import Admin, NewEmail, Store

CHEAP_HASH = HashCost(time_cost=1, memory_kib=8, parallelism=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path}/store.db", "sqlite")
        return
    with temporary_schema() as url:
        yield Store(url, "postgres", url.rpartition("schema=")[2])


def open_service(store: Store, secrets_key: bytes, clock: FakeClock) -> InvitationService:
    return InvitationService(
        InvitationStore(env=store_env(store.url)),
        secrets_key=secrets_key,
        hasher=TempPasswordHasher(CHEAP_HASH),
        clock=clock,
    )


@pytest.fixture
def service(store: Store, secrets_key: bytes, clock: FakeClock) -> Iterator[InvitationService]:
    service = open_service(store, secrets_key, clock)
    yield service
    service.close()


@pytest.fixture
def reopen(
    store: Store, secrets_key: bytes, clock: FakeClock
) -> Iterator[Callable[[], InvitationService]]:
    """Opens another service on the same store, as after a restart."""
    opened: list[InvitationService] = []

    def make() -> InvitationService:
        opened.append(open_service(store, secrets_key, clock))
        return opened[-1]

    yield make
    for service in opened:
        service.close()


@pytest.fixture
def admin(service: InvitationService, secrets_key: bytes, clock: FakeClock) -> Admin:
    return Admin(service, secrets_key, clock)


@pytest.fixture
def new_email() -> NewEmail:
    """A fresh address per call, so no two tests (or rows) share a person."""

    def make(name: str = "user") -> str:
        return f"{name}-{uuid4().hex[:10]}@example.com"

    return make
