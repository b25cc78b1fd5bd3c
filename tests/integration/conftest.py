"""Fixtures: a running invitation service per test, on its module's schema and vhost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServiceProcess, service_env


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


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
