"""A standby notifier and a standby relay (a second invitation service) through a
database restart under load: never two leaders, no email twice, nothing lost.

The gauges are sampled from every instance's /metrics at the same moment, ten times a
second: `invitations_relay_leading` (the relay) and `notifier_leading`; each sums to at most 1.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.conftest import Run
from tests.faults.harness import Plan
from tests.faults.outcomes import LeaderSampler, under_load

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

RELAY = "invitations_relay_leading"
NOTIFIER = "notifier_leading"


@pytest.mark.faults_ci
async def test_standbys_through_a_database_restart_never_make_two_leaders(run: Run) -> None:
    for key, service in [
        ("invitation", "invitation"),
        ("notifier", "notifier"),
        ("expiry", "expiry"),
        ("invitation-2", "invitation"),
        ("notifier-2", "notifier"),
    ]:
        run.stack.start(key, service)
    await run.stack.ready()

    async def restart() -> float:
        return await asyncio.to_thread(run.postgres.restart, "fast")

    async with LeaderSampler(run) as sampler:
        await under_load(run, Plan.chosen(), restart)
        await asyncio.sleep(0.5)  # a few more samples once everything has settled
    run.figures["max_leading"] = dict(sampler.highest)
    run.figures["samples"] = sampler.samples

    assert sampler.highest.get(RELAY) == 1, sampler.highest
    assert sampler.highest.get(NOTIFIER) == 1, sampler.highest
    assert run.figures["emails_duplicated"] == 0
