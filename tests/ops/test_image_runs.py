"""The image, built for real, runs the three services healthy and delivers an invitation.

Needs a Docker engine: without one answering, the test skips and says so (the static
checks of tests/ops/test_image.py and test_compose.py run everywhere). No container
registry is reachable here, so the base comes from Debian's packages (scripts/docker-base)
and the image is built on it with `--build-arg PYTHON_IMAGE`. The containers share the
host's network, so they use the machine's PostgreSQL and RabbitMQ on a schema and vhost
of their own, and mail an SMTP server in this process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.command_client import CommandClient
from tests.ops.conftest import ROOT
from tests.ops.test_dependencies import Mailbox, send
from tests.support import free_port, temporary_schema, temporary_vhost, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

BASE = "local/python:3.11-bookworm"
SERVICES = ("invitation", "notifier", "expiry")


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:2])} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if not engine_answers():
        pytest.skip("no Docker engine answers here (start dockerd to run this test)")
    subprocess.run([ROOT / "scripts" / "docker-base"], check=True, timeout=900)
    tag = f"invitations:test-{uuid.uuid4().hex[:8]}"
    # The classic builder: BuildKit would fetch the Dockerfile's syntax frontend from a
    # registry. The build reaches PyPI over the host's network.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    build = ["docker", "build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={BASE}"]
    done = subprocess.run(
        [*build, "-t", tag, str(ROOT)], capture_output=True, text=True, env=env, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    try:
        yield tag
    finally:
        docker("rmi", "-f", tag, check=False)


class Containers:
    def __init__(self, image: str) -> None:
        self.image = image
        self.names: list[str] = []

    def run(self, service: str, env: dict[str, str]) -> str:
        name = unique(f"invitations-{service}")
        settings = [f"--env={key}={value}" for key, value in env.items()]
        command = ["python", "-m", f"services.{service}"]
        docker("run", "-d", "--name", name, "--network", "host", *settings, self.image, *command)
        self.names.append(name)
        return name

    def health(self, name: str) -> str:
        return docker("inspect", "--format", "{{.State.Health.Status}}", name)

    def logs(self, name: str) -> str:
        done = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        return done.stdout + done.stderr

    def stop(self, name: str) -> int:
        docker("stop", "--time", "10", name)
        return int(docker("inspect", "--format", "{{.State.ExitCode}}", name))

    def remove_all(self) -> None:
        for name in self.names:
            docker("rm", "-f", name, check=False)


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    running = Containers(image)
    try:
        yield running
    finally:
        running.remove_all()


async def test_the_built_image_runs_every_service_healthy_and_delivers_an_invitation(
    containers: Containers, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(temporary_schema())
        amqp_url = stack.enter_context(temporary_vhost())
        mailbox = stack.enter_context(Mailbox())
        common = {
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "DEVELOPMENT_MODE": "true",
            "LOG_FORMAT": "json",
        }
        names = {}
        for service in SERVICES:
            env = {**common, "HTTP_PORT": str(free_port())}
            if service == "notifier":
                env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mailbox.port)}
            names[service] = containers.run(service, env)
            if service == "invitation":  # it creates the event store the others read
                await healthy(containers, names[service])

        for service in SERVICES:
            await healthy(containers, names[service])

        email = f"{unique('person')}@example.com"
        async with CommandClient(amqp_url) as client:
            tenant = unique("tenant").replace("_", "-")
            await send(client, "invite_user", tenant_id=tenant, email=email, role="user")
        await wait_for(
            lambda: mailbox.received(email), timeout=60, what="the notifier's email to the invitee"
        )

        for service in reversed(SERVICES):
            name = names[service]
            assert containers.stop(name) == 0, containers.logs(name)


async def healthy(containers: Containers, name: str) -> None:
    """The image's own HEALTHCHECK (python -m shared.ops_http /readyz) says healthy."""

    def is_healthy() -> bool:
        status = containers.health(name)
        assert status != "unhealthy", containers.logs(name)
        return status == "healthy"

    await wait_for(is_healthy, timeout=90, interval=1, what=f"{name} healthy")
