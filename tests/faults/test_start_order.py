"""Started while RabbitMQ or PostgreSQL is down, every service waits and then works."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import Run
from tests.faults.harness import Plan
from tests.faults.outcomes import under_load
from tests.support import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

SERVICES = ("invitation", "notifier", "expiry")


async def start_while_down(run: Run) -> None:
    """Starts the three services and waits until each has said it waits (alive)."""
    for name in SERVICES:
        run.stack.start(name)

    def all_waiting() -> bool:
        for name in SERVICES:
            assert run.stack.alive(name), f"{name} exited:\n{run.stack.processes[name].log()}"
        return all("waiting for the" in run.stack.processes[n].log() for n in SERVICES)

    await wait_for(all_waiting, timeout=30, interval=0.2, what="every service waiting")
    for name in SERVICES:
        answer = run.stack.http(name, "/readyz")
        assert answer is not None
        assert answer[0] == 503, (name, answer)


async def works_once_up(run: Run, back: float) -> None:
    await run.stack.ready(*SERVICES, timeout=60)
    run.figures["ready_after_s"] = round(time.monotonic() - back, 2)

    async def nothing() -> None:
        return None

    plan = Plan.chosen()
    await under_load(run, Plan(rate=plan.rate, seconds=plan.seconds / 2, fault_at=0), nothing)


async def test_services_started_while_the_broker_is_down_work_once_it_is_up(run: Run) -> None:
    run.rabbit.stop()
    try:
        await start_while_down(run)
    finally:
        back = run.rabbit.start()
    await works_once_up(run, back)


async def test_services_started_while_the_database_is_down_work_once_it_is_up(
    run: Run,
) -> None:
    run.postgres.stop()
    try:
        await start_while_down(run)
    finally:
        back = run.postgres.start()
    await works_once_up(run, back)
