"""RabbitMQ, PostgreSQL and the mail server go away under load and come back: nothing
is lost, every command is decided once, every invite is published and emailed."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.conftest import Run
from tests.faults.harness import Plan
from tests.faults.outcomes import under_load

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]


async def start_stack(run: Run) -> None:
    for name in ("invitation", "notifier", "expiry"):
        run.stack.start(name)
    await run.stack.ready()


@pytest.mark.faults_ci
async def test_a_broker_restart_under_load_loses_nothing(run: Run) -> None:
    await start_stack(run)

    async def restart() -> float:
        return await asyncio.to_thread(run.rabbit.restart)

    await under_load(run, Plan.chosen(), restart)
    # An outage is retried, one WARNING a try: nothing for an operator's ERROR alerts.
    assert run.stack.errors_logged() == []


@pytest.mark.faults_ci
async def test_a_fast_database_restart_under_load_loses_nothing(run: Run) -> None:
    await start_stack(run)

    async def restart() -> float:
        return await asyncio.to_thread(run.postgres.restart, "fast")

    await under_load(run, Plan.chosen(), restart)


async def test_a_database_stopped_immediately_for_15_s_under_load_loses_nothing(
    run: Run,
) -> None:
    await start_stack(run)

    async def crash_for_15_s() -> float:
        await asyncio.to_thread(run.postgres.stop, "immediate")
        await asyncio.sleep(15)  # the outage itself
        return await asyncio.to_thread(run.postgres.start)

    await under_load(run, Plan.chosen(), crash_for_15_s, drain=180)


async def test_the_mail_server_down_for_20_s_under_load_loses_no_email(run: Run) -> None:
    await start_stack(run)

    async def smtp_down_for_20_s() -> None:
        run.mailbox.stop()
        await asyncio.sleep(20)  # the outage itself
        run.mailbox.start()

    # The notifier's back-off for a failed email (NOTIFIER_RETRY_*) may hold an email
    # for a while after the server is back: allow for it.
    await under_load(run, Plan.chosen(), smtp_down_for_20_s, drain=240)
