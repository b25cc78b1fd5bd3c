"""The fixtures every folder shares, and the guard that keeps the two tiers honest.

`pytest -m "not integration"` needs no server running.

A test without the `integration` marker that reaches PostgreSQL or RabbitMQ fails,
naming the server, however the connection was made: a socket to their ports (aio-pika,
anything on asyncio's default loop), psycopg (libpq connects in C, below `socket`), or
`rabbitmqctl` (tests.support.temporary_vhost). SQLite files and a test's own SMTP or
HTTP servers need nothing running, so they are left alone. Processes a test starts are
not watched; they get their URLs from helpers that are.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit

import psycopg
import pytest

from shared.command_client import CommandClient
from tests import support
from tests.fakes import FakeClock

SERVERS = {
    urlsplit(support.POSTGRES).port or 5432: "PostgreSQL",
    urlsplit(f"amqp://{support.RABBIT_HOST}").port or 5672: "RabbitMQ",
}
VIOLATIONS = pytest.StashKey[list[str]]()


class IntegrationOnlyError(RuntimeError):
    """A test without the `integration` marker reached PostgreSQL or RabbitMQ."""


@contextlib.contextmanager
def servers_refused(item: pytest.Item) -> Iterator[None]:
    """While it is open, a connection to either server records a violation and raises."""
    violations = item.stash.setdefault(VIOLATIONS, [])

    def refuse(server: str, how: str) -> NoReturn:
        message = (
            f"{item.nodeid} reached {server} ({how}) but is not marked integration: "
            "mark it (pytestmark = pytest.mark.integration) or give it a fake"
        )
        if message not in violations:  # a pool retries: one line per way in is enough
            violations.append(message)
        raise IntegrationOnlyError(message)

    def checked(address: Any) -> None:
        if isinstance(address, tuple) and address[1] in SERVERS:
            refuse(SERVERS[address[1]], f"a socket to {address[0]}:{address[1]}")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(sock: socket.socket, address: Any) -> None:
        checked(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        checked(address)
        return real_connect_ex(sock, address)

    def psycopg_connect(*args: Any, **kwargs: Any) -> NoReturn:
        refuse("PostgreSQL", "psycopg.connect")

    def connection_connect(cls: type, *args: Any, **kwargs: Any) -> NoReturn:
        refuse("PostgreSQL", f"{cls.__name__}.connect")  # what connection pools call

    def rabbitmqctl(*args: str) -> NoReturn:
        refuse("RabbitMQ", f"rabbitmqctl {' '.join(args)}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(psycopg, "connect", psycopg_connect)
        patch.setattr(psycopg.Connection, "connect", classmethod(connection_connect))
        patch.setattr(psycopg.AsyncConnection, "connect", classmethod(connection_connect))
        patch.setattr(support, "_rabbitmqctl", rabbitmqctl)
        yield


def guarded(item: pytest.Item) -> Generator[None, object, object]:
    """Runs one phase of `item` (setup, call, teardown) with the servers refused unless
    it is an integration test."""
    if item.get_closest_marker("integration") is not None:
        return (yield)
    with servers_refused(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Names the server a phase reached, and fails the phase even if the code under test
    swallowed the error (a retry loop, or a connection pool that waits for its timeout)."""
    report = yield
    violations = item.stash.get(VIOLATIONS, [])
    if violations:
        report.sections.append(("integration marker missing", "\n".join(violations)))
        if report.passed:
            report.outcome = "failed"
            report.longrepr = "\n".join(violations)
    violations.clear()
    return report


# -- the fault scenarios, apart -----------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--faults",
        choices=("with", "without", "only"),
        default="with",
        help="run the fault scenarios (marker faults) with the other tests, without them, "
        "or only them. scripts/test runs the others on two workers, then the scenarios "
        "alone: they time recoveries, and their report is written by the process that "
        "ran them (an xdist worker writes none).",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    choice = config.getoption("faults")
    if choice == "with":
        return
    kept, dropped = [], []
    for item in items:
        fault = item.get_closest_marker("faults") is not None
        (kept if fault == (choice == "only") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# -- fixtures every folder shares ---------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def secrets_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def tenant() -> str:
    return f"t-{support.suffix()}"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A schema per test module, for the services its tests start."""
    with support.temporary_schema() as url:
        yield url


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """A vhost per test module, so no other module's service consumes its commands."""
    with support.temporary_vhost() as url:
        yield url


@pytest.fixture
async def client(amqp_url: str) -> AsyncIterator[CommandClient]:
    async with CommandClient(amqp_url) as command_client:
        yield command_client


@pytest.fixture(scope="session")
def spans() -> Any:
    """The SDK's tracer provider for this process, exporting to memory (an
    `InMemorySpanExporter`): installed once, as the API refuses to replace a provider.
    Only the tests that ask for it install it; the others run with tracing off."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
