"""Fixtures of the operations checks: the deployment files, and a real running service.

A schema and a vhost of its own per service started (tests/support), so it never
consumes another test's commands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support import free_port, temporary_schema, temporary_vhost

ROOT = Path(__file__).resolve().parents[2]
# Put into the services' DATABASE_URL (trust authentication ignores it): it must never
# appear in a log line.
DATABASE_PASSWORD = "pw-" + uuid.uuid4().hex


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str
    content_type: str


def http_get(url: str, timeout: float = 3.0) -> HttpAnswer | None:
    """GET `url`; None when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read().decode()
            return HttpAnswer(response.status, body, response.headers["Content-Type"])
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, error.read().decode(), error.headers["Content-Type"])
    except (urllib.error.URLError, OSError):
        return None


def with_port(url: str, port: int | None) -> str:
    """`url` with another port (None keeps it)."""
    if port is None:
        return url
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.netloc.rpartition(':')[0]}:{port}").geturl()


# -- deployment files ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="session")
def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


# -- a real service -----------------------------------------------------------------------


@dataclass
class RunningService:
    process: subprocess.Popen[bytes]
    base_url: str
    amqp_url: str
    database_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 12.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


ServiceStarter = Callable[..., RunningService]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceStarter]:
    """Starts `python -m <module>` with HTTP_PORT, on a schema and vhost of its own unless
    `share` is given: a running service whose database and broker the new one uses too."""
    started: list[RunningService] = []
    stack = contextlib.ExitStack()

    def start(
        module: str = "services.invitation",
        share: RunningService | None = None,
        *,
        database_port: int | None = None,
        amqp_port: int | None = None,
        **extra_env: str,
    ) -> RunningService:
        """`database_port`/`amqp_port`: reach that server through another port (a proxy)."""
        if share is None:
            database_url = stack.enter_context(temporary_schema())
            amqp_url = stack.enter_context(temporary_vhost())
        else:
            database_url, amqp_url = share.database_url, share.amqp_url
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SQLITE_"))}
        env.pop("SECRETS_KEY", None)
        env.update(
            DATABASE_URL=with_port(database_url, database_port).replace(
                "://root@", f"://root:{DATABASE_PASSWORD}@"
            ),
            AMQP_URL=with_port(amqp_url, amqp_port),
            DEVELOPMENT_MODE="true",
            HTTP_PORT=str(port),
            LOG_FORMAT="json",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            **extra_env,
        )
        log_path = tmp_path / f"{module.rsplit('.', 1)[-1]}-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        service = RunningService(
            process, f"http://127.0.0.1:{port}", amqp_url, database_url, log_path
        )
        started.append(service)
        return service

    with stack:
        yield start
        for service in reversed(started):
            if service.process.poll() is None:
                try:
                    service.terminate()
                except subprocess.TimeoutExpired:
                    service.process.kill()
                    service.process.wait(10)


@pytest.fixture
def invitation_service(start_service: ServiceStarter) -> ServiceStarter:
    """Starts `python -m services.invitation` with HTTP_PORT on a schema and vhost of its own."""
    return start_service
