"""Each service outlives its broker and its database: it waits, says so, and works again.

The shared PostgreSQL and RabbitMQ stay up for every other test: a service under test
reaches them through TCP proxies (tests/proxy.py) that a test switches off and on, and a
vhost it deletes is the test's own. "Works" is shown end to end: a command goes in
through the invitation service and the effect the service under test is there for
comes out (an event relayed, an email sent, a contractor expired).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from shared.command_client import CommandClient
from tests.ops.conftest import (
    DATABASE_PASSWORD,
    RunningService,
    ServiceStarter,
    free_port,
    http_get,
)
from tests.proxy import Proxy, proxy_to
from tests.support import POSTGRES, RABBIT_HOST, EventTap, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ["invitation", "notifier", "expiry"]
DEPENDENCIES = ["broker", "database"]


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def proxies() -> Iterator[dict[str, Proxy]]:
    database = urlsplit(POSTGRES)
    with (
        proxy_to(RABBIT_HOST) as broker,
        proxy_to(f"{database.hostname}:{database.port or 5432}") as database_proxy,
    ):
        yield {"broker": broker, "database": database_proxy}


class Mailbox:
    """An SMTP server in a thread that keeps the recipients of what it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._recipients: list[str] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self._recipients.extend(envelope.rcpt_tos)
        return "250 OK"

    def received(self, address: str) -> bool:
        with self._lock:
            return address in self._recipients

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


class Work:
    """One service under test, and the invitation service that gives it work."""

    def __init__(self, name: str, start_service: ServiceStarter, mailbox: Mailbox) -> None:
        self.name = name
        self._start_service = start_service
        self._mailbox = mailbox
        self.invitation: RunningService | None = None

    def start(self, **ports: int) -> RunningService:
        """The service under test, reaching its broker and database on `ports` if given."""
        if self.name == "invitation":
            self.invitation = self._start_service("services.invitation", **ports)
            return self.invitation
        self.invitation = self._start_service("services.invitation")
        smtp = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self._mailbox.port)}
        return self._start_service(f"services.{self.name}", share=self.invitation, **ports, **smtp)

    async def is_done(self) -> None:
        """A command in, and what the service under test does with it seen."""
        assert self.invitation is not None
        await ready(self.invitation)
        tenant, email = unique("tenant").replace("_", "-"), f"{unique('person')}@example.com"
        amqp_url = self.invitation.amqp_url
        async with CommandClient(amqp_url) as client, EventTap(amqp_url) as tap:
            if self.name == "expiry":
                await send(client, "configure_tenant", tenant_id=tenant, contractor_enabled=True)
                end = datetime.now(UTC) + timedelta(seconds=3)
                await send(
                    client,
                    "invite_user",
                    tenant_id=tenant,
                    email=email,
                    role="contractor",
                    access_expires_at=end.isoformat(),
                )
                await wait_for(
                    lambda: [e for e in tap.of_type("ContractorExpired") if e.tenant_id == tenant],
                    timeout=30,
                    what="the contractor expired by the expiry service",
                )
                return
            await send(client, "invite_user", tenant_id=tenant, email=email, role="user")
            if self.name == "invitation":
                await wait_for(
                    lambda: [e for e in tap.of_type("UserInvited") if e.tenant_id == tenant],
                    timeout=30,
                    what="the invitation relayed",
                )
            else:
                await wait_for(
                    lambda: self._mailbox.received(email),
                    timeout=30,
                    what=f"the notifier's email to {email}",
                )


@pytest.fixture(params=SERVICES)
def work(request: pytest.FixtureRequest, start_service: ServiceStarter, mailbox: Mailbox) -> Work:
    return Work(request.param, start_service, mailbox)


# -- helpers ----------------------------------------------------------------------------


async def send(client: CommandClient, name: str, **fields: Any) -> None:
    body = {"command_id": str(uuid.uuid4()), "actor": "admin@example.com", **fields}
    reply = await client.send(name, body, within=20)
    assert reply.status == "accepted", reply


async def readiness(service: RunningService) -> tuple[int, dict[str, str]] | None:
    assert service.process.poll() is None, f"the service exited:\n{service.log()}"
    answer = await asyncio.to_thread(http_get, f"{service.base_url}/readyz")
    if answer is None:
        return None
    return answer.status, json.loads(answer.body)["checks"]


async def ready(service: RunningService) -> None:
    async def answered_200() -> bool:
        answer = await readiness(service)
        return answer is not None and answer[0] == 200

    await wait_for(answered_200, timeout=45, what=f"{service.base_url}/readyz to answer 200")


async def not_ready(service: RunningService, check: str) -> str:
    """Until /readyz answers 503 with `check` failing; what the check says."""

    async def failing() -> str | None:
        answer = await readiness(service)
        if answer is None or answer[0] != 503 or answer[1].get(check, "ok") == "ok":
            return None
        return answer[1][check]

    reason: str = await wait_for(failing, timeout=30, what=f"/readyz 503 on {check}")
    return reason


def warnings_of(service: RunningService, starting: str) -> list[str]:
    lines = []
    for text in service.log().splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if line.get("level") == "warning" and line["message"].startswith(starting):
            lines.append(line["message"])
    return lines


async def waiting_for(service: RunningService, dependency: str) -> None:
    """Alive, retrying (several WARNING lines, each with its delay), and not ready."""
    what = f"waiting for the {dependency}"

    def retried() -> list[str]:
        assert service.process.poll() is None, f"the service exited:\n{service.log()}"
        lines = warnings_of(service, what)
        return lines if len(lines) >= 4 else []

    lines = await wait_for(retried, timeout=30, what=f"WARNING lines '{what}'")
    assert all("; trying again in " in line for line in lines)
    await not_ready(service, dependency)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def proxied(proxies: dict[str, Proxy]) -> dict[str, int]:
    return {"amqp_port": proxies["broker"].port, "database_port": proxies["database"].port}


# -- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("dependency", DEPENDENCIES)
async def test_a_service_started_while_a_dependency_is_down_waits_then_works_once_it_is_up(
    work: Work, proxies: dict[str, Proxy], dependency: str
) -> None:
    proxies[dependency].down()
    service = work.start(**proxied(proxies))
    await waiting_for(service, dependency)

    proxies[dependency].up()
    await ready(service)
    await work.is_done()
    assert service.terminate() == 0
    assert DATABASE_PASSWORD not in service.log()


@pytest.mark.parametrize("dependency", DEPENDENCIES)
async def test_readiness_fails_while_a_dependency_is_away_and_the_work_resumes_after(
    work: Work, proxies: dict[str, Proxy], dependency: str
) -> None:
    service = work.start(**proxied(proxies))
    await ready(service)

    proxies[dependency].down()
    await not_ready(service, dependency)
    proxies[dependency].up()
    await ready(service)
    await work.is_done()
    assert service.terminate() == 0
    assert DATABASE_PASSWORD not in service.log()


@pytest.mark.parametrize("dependency", DEPENDENCIES)
async def test_a_service_waiting_for_a_dependency_stops_cleanly_on_sigterm(
    work: Work, proxies: dict[str, Proxy], dependency: str
) -> None:
    proxies[dependency].down()
    service = work.start(**proxied(proxies))
    await waiting_for(service, dependency)
    assert service.terminate(timeout=10) == 0


async def test_readiness_fails_while_the_services_vhost_is_deleted(work: Work) -> None:
    """Once the vhost is back the service reconnects, most times; not asserted, because
    aio-pika 10.2.1 can deadlock that reconnection (see shared/service.py)."""
    service = work.start()
    await ready(service)
    vhost = urlsplit(service.amqp_url).path.lstrip("/")

    rabbitmqctl("delete_vhost", vhost)
    try:
        assert "connection lost" in await not_ready(service, "broker")
        assert service.process.poll() is None
    finally:
        rabbitmqctl("add_vhost", vhost)  # for the fixture that deletes it
