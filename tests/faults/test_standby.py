"""A standby notifier and a standby relay (a second invitation service) through a
database restart under load: never two leaders, no email twice, nothing lost.

The gauges are sampled from every instance's /metrics at the same moment, ten times a
second: `invitations_relay_leading` (the relay) and the notifier's own `*_leading`.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.conftest import Run
from tests.faults.harness import Plan
from tests.faults.outcomes import LeaderSampler, under_load

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]

RELAY = "invitations_relay_leading"
NOTIFIER_FENCING = (
    "the notifier does not fence its leadership yet (no *_leading gauge, no re-check of "
    "its lock after a database restart): issue 16 item 3, branch `lead`"
)


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

    async def restart() -> None:
        await asyncio.to_thread(run.postgres.restart, "fast")

    async with LeaderSampler(run) as sampler:
        await under_load(run, Plan.chosen(), restart)
        await asyncio.sleep(0.5)  # a few more samples once everything has settled
    run.figures["max_leading"] = dict(sampler.highest)
    run.figures["samples"] = sampler.samples

    assert sampler.highest.get(RELAY) == 1, sampler.highest
    notifier_gauges = {name for name in sampler.highest if name != RELAY}
    if not notifier_gauges:
        run.figures["note"] = f"xfail: {NOTIFIER_FENCING}"
        pytest.xfail(NOTIFIER_FENCING)
    assert all(sampler.highest[name] <= 1 for name in notifier_gauges), sampler.highest
    assert run.figures["emails_duplicated"] == 0
