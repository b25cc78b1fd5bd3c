"""The three services run and work as the deployment runs them: each with its own broker
user (deploy/rabbitmq/definitions.json) and database role (deploy/postgres/roles.sql), its
secrets read from files (`*_FILE`), the real SECRETS_KEY, no development mode.

A backend (with the sample backend's user) invites a person and a contractor; the notifier
then sends the emails and reports the temporary password delivered, and the expiry
service ends the contractor's access: every internal command crosses the broker as the
user allowed to send it, and every write lands as the role allowed to make it.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from shared.command_client import CommandClient
from tests.ops.conftest import ROOT, free_port, http_get
from tests.ops.least_privilege import BrokerUsers, DatabaseRoles, broker_users, database_roles
from tests.support import unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Inbox:
    """An SMTP server that keeps the recipients of what it is handed."""

    def __init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._recipients: list[str] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:  # aiosmtpd names it
        message = message_from_bytes(envelope.content)
        with self._lock:
            self._recipients.append(str(message["To"]))
        return "250 OK"

    def recipients(self) -> list[str]:
        with self._lock:
            return list(self._recipients)


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    box.controller.start()
    try:
        yield box
    finally:
        box.controller.stop()


class Stack:
    def __init__(self, users: BrokerUsers, roles: DatabaseRoles, inbox: Inbox, folder: Path):
        self.users, self.roles, self.inbox, self.folder = users, roles, inbox, folder
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        (folder / "secrets_key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")

    def secret(self, name: str, value: str) -> str:
        path = self.folder / name
        path.write_text(value + "\n")
        return str(path)

    def start(self, service: str, **extra: str) -> None:
        port = self.ports[service] = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONUNBUFFERED": "1",
            "AMQP_URL_FILE": self.secret(f"{service}_amqp_url", self.users.url(service)),
            "DATABASE_URL_FILE": self.secret(f"{service}_db_url", self.roles.url(service)),
            "HTTP_PORT": str(port),
            "LOG_FORMAT": "text",
            **extra,
        }
        if service != "expiry":
            env["SECRETS_KEY_FILE"] = str(self.folder / "secrets_key")
        with (self.folder / f"{service}.log").open("wb") as log:
            self.processes[service] = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self, service: str) -> str:
        return (self.folder / f"{service}.log").read_text(errors="replace")

    async def ready(self, service: str) -> None:
        def answered() -> bool:
            process = self.processes[service]
            assert process.poll() is None, f"{service} exited:\n{self.log(service)}"
            answer = http_get(f"http://127.0.0.1:{self.ports[service]}/readyz")
            return answer is not None and answer.status == 200

        await wait_for(answered, timeout=60, interval=0.2, what=f"{service} ready")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
async def stack(inbox: Inbox, tmp_path: Path) -> AsyncIterator[Stack]:
    with broker_users() as users, database_roles(tmp_path) as roles:
        running = Stack(users, roles, inbox, tmp_path)
        try:
            # As in docker-compose.yml: the notifier's and the expiry service's users.
            internal = f"{users.name('notifier')},{users.name('expiry')}"
            running.start("invitation", INTERNAL_SENDERS=internal)
            await running.ready("invitation")  # creates the event store and the exchanges
            readers = {"INVITATIONS_CREATE_TABLE": "n"}
            running.start("notifier", SMTP_HOST="127.0.0.1", SMTP_PORT=str(inbox.port), **readers)
            running.start("expiry", **readers)
            await running.ready("notifier")
            await running.ready("expiry")
            yield running
        finally:
            running.stop()


def event_types(roles: DatabaseRoles) -> list[str]:
    # As the read-only operator CLI reads them.
    with psycopg.connect(roles.url("cli")) as conn:
        rows = conn.execute("SELECT topic FROM invitations_events ORDER BY notification_id")
        return [topic.rsplit(".", 1)[-1] for (topic,) in rows.fetchall()]


async def test_the_services_work_with_their_own_users_roles_and_secret_files(
    stack: Stack,
) -> None:
    tenant = unique("acme")
    person, contractor = f"p-{uuid.uuid4().hex[:8]}@example.com", "c@example.com"
    ends = datetime.now(UTC) + timedelta(seconds=4)

    def command(**fields: object) -> dict[str, object]:
        return {
            "command_id": str(uuid.uuid4()),
            "actor": "admin@example.com",
            "tenant_id": tenant,
            **fields,
        }

    async with CommandClient(stack.users.url("backend")) as backend:
        replies = [
            await backend.send("configure_tenant", command(contractor_enabled=True)),
            await backend.send("invite_user", command(email=person, role="user")),
            await backend.send(
                "invite_user",
                command(email=contractor, role="contractor", access_expires_at=ends.isoformat()),
            ),
        ]
    assert [r.status for r in replies] == ["accepted"] * 3, replies

    # The notifier's report and the expiry service's command were accepted from them.
    await wait_for(
        lambda: {"TempPasswordDelivered", "ContractorExpired"} <= set(event_types(stack.roles)),
        timeout=30,
        interval=0.2,
        what="the delivery report and the contractor's expiry",
    )
    assert person in stack.inbox.recipients()
    for service in ("invitation", "notifier", "expiry"):
        log = stack.log(service)
        assert "ACCESS_REFUSED" not in log, service
        assert "permission denied" not in log, service
