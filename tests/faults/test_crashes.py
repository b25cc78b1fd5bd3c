"""Each service SIGKILLed under load and started again (as a supervisor would): every
command is still decided once, every invite published and emailed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.invitation.eventstore import EventLog
from shared.command_client import CommandClient
from tests.faults.conftest import Run
from tests.faults.harness import Plan
from tests.faults.outcomes import stored_invites, under_load
from tests.support import send_accepted, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]


@pytest.mark.parametrize(
    "service",
    ["invitation", "notifier", "expiry"],
)
async def test_a_service_killed_under_load_and_started_again_loses_nothing(
    run: Run, service: str
) -> None:
    for name in ("invitation", "notifier", "expiry"):
        run.stack.start(name)
    await run.stack.ready()

    async def kill_and_restart() -> None:
        run.stack.kill(service)
        run.stack.start(service)

    await under_load(run, Plan.chosen(), kill_and_restart)
    if service == "expiry":
        await contractor_expires(run)


async def contractor_expires(run: Run) -> None:
    """The restarted expiry service does its work: a contractor's access ends on time."""
    await run.stack.ready("expiry")
    async with CommandClient(run.amqp_url) as client:
        tenant = f"{run.tenant}-c"
        await send_accepted(client, "configure_tenant", tenant_id=tenant, contractor_enabled=True)
        end = datetime.now(UTC) + timedelta(seconds=3)
        await send_accepted(
            client,
            "invite_user",
            tenant_id=tenant,
            email=f"c-{uuid.uuid4().hex[:8]}@example.com",
            role="contractor",
            access_expires_at=end.isoformat(),
        )

    def expired() -> bool:
        return bool(stored_invites(run.database_url, tenant)) and contractor_expired(run, tenant)

    await wait_for(
        lambda: asyncio.to_thread(expired), timeout=60, interval=0.5, what="contractor expired"
    )


def contractor_expired(run: Run, tenant: str) -> bool:
    log = EventLog(run.database_url, event_types=["ContractorExpired"])
    try:
        return any(e.tenant_id == tenant for e in log.read(0, 1000))
    finally:
        log.close()
