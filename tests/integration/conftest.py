"""Fixtures: a schema, a vhost and a running invitation service per test module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from shared.command_client import CommandClient
from tests.support import (
    ServiceProcess,
    service_env,
    temporary_schema,
    temporary_vhost,
    unique,
    wait_for,
)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with temporary_schema() as url:
        yield url


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    with temporary_vhost() as url:
        yield url


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture
def tenant() -> str:
    return unique("tenant").replace("_", "-")


async def ready(client: CommandClient) -> None:
    """The service answers commands (its consumer is up)."""

    async def answered() -> bool:
        try:
            await client.send(
                "register_account",
                {
                    "command_id": str(uuid.uuid4()),
                    "actor": "service:test",
                    "email": f"{unique('probe')}@example.com",
                },
                within=1.0,
            )
        except TimeoutError:
            return False
        return True

    await wait_for(answered, timeout=30, what="the invitation service to answer")


@pytest_asyncio.fixture
async def client(amqp_url: str) -> AsyncIterator[CommandClient]:
    async with CommandClient(amqp_url) as command_client:
        yield command_client


@pytest.fixture
def start_service(database_url: str, amqp_url: str, log_dir: Path) -> Iterator[object]:
    """Start `python -m services.invitation` (stopped at the end of the test)."""
    started: list[ServiceProcess] = []

    def start(**extra_env: str) -> ServiceProcess:
        process = ServiceProcess(
            "invitation", service_env(database_url, amqp_url, **extra_env), log_dir
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
