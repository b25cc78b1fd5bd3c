"""The expiry service for real: `python -m services.expiry` and `python -m services.invitation`
on this module's own PostgreSQL schema and RabbitMQ vhost, with deadlines seconds away.

Deadlines fire, never early, exactly once; how late, and how fast the service stops and
catches up, is measured in bench/deadlines.py, not asserted here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.invitation.eventstore import EventLog
from shared.command_client import CommandClient
from shared.contract import EventEnvelope
from tests.support import (
    ServiceProcess,
    enable_contractors,
    invitation_service_ready,
    send_with_end_in,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Start = Callable[..., ServiceProcess]


@pytest.fixture
def event_log(database_url: str) -> Any:
    log = EventLog(database_url)
    yield log
    log.close()


async def expiry_ready(process: ServiceProcess) -> None:
    await wait_for(
        lambda: "rebuilt" in process.log(),
        timeout=30,
        what=f"the expiry service to rebuild:\n{process.log()}",
    )


def events_of(event_log: EventLog, tenant: str, event_type: str) -> list[EventEnvelope]:
    return [
        e
        for e in event_log.read(0, 100_000)
        if e.event_type == event_type and e.tenant_id == tenant
    ]


async def contractor_with_end_in(
    client: CommandClient, tenant: str, email: str, seconds: float
) -> datetime:
    await enable_contractors(client, tenant, "PT2S")
    return await send_with_end_in(
        client, seconds, "invite_user", tenant_id=tenant, email=email, role="contractor"
    )


async def test_a_contractor_is_reminded_and_expired_live_exactly_once(
    start_service: Start, client: CommandClient, event_log: EventLog
) -> None:
    start_service("invitation")
    expiry = start_service("expiry")
    await invitation_service_ready(client)
    await expiry_ready(expiry)
    tenant, email = unique("walk"), f"{unique('carol')}@example.com"

    end = await contractor_with_end_in(client, tenant, email, 4)
    expired = await wait_for(
        lambda: events_of(event_log, tenant, "ContractorExpired"),
        timeout=15,
        what="ContractorExpired",
    )

    reminded = events_of(event_log, tenant, "ContractorExpiryApproaching")
    assert len(reminded) == 1 and len(expired) == 1
    assert reminded[0].data["offset"] == "PT2S"
    assert reminded[0].occurred_at >= end - timedelta(seconds=2)  # never early
    assert expired[0].occurred_at >= end
    # Still pending at its end: the invitation lapsed along with the access (rule 20).
    assert len(events_of(event_log, tenant, "InvitationLapsed")) == 1

    assert expiry.terminate() == 0


async def test_deadlines_missed_while_the_service_was_down_fire_when_it_is_back(
    start_service: Start, client: CommandClient, event_log: EventLog
) -> None:
    start_service("invitation")
    first = start_service("expiry")
    await invitation_service_ready(client)
    await expiry_ready(first)
    tenant = unique("down")
    emails = [f"{unique(f'c{i}')}@example.com" for i in range(3)]
    ends = [
        await contractor_with_end_in(client, tenant, email, 3 + i) for i, email in enumerate(emails)
    ]
    assert first.terminate() == 0

    # The deadlines pass with no expiry service running.
    await wait_for(
        lambda: datetime.now(UTC) > ends[-1] + timedelta(seconds=1),
        timeout=15,
        what="every end date to pass",
    )
    assert events_of(event_log, tenant, "ContractorExpired") == []
    back = datetime.now(UTC)
    second = start_service("expiry")

    expired = await wait_for(
        lambda: len(found := events_of(event_log, tenant, "ContractorExpired")) == 3 and found,
        timeout=15,
        what="three ContractorExpired",
    )

    assert all(e.occurred_at >= back for e in expired)  # fired by the restarted service
    assert sorted(e.data["email"] for e in expired) == sorted(emails)
    assert second.terminate() == 0


async def test_an_end_date_moved_earlier_is_enforced_at_the_new_date(
    start_service: Start, client: CommandClient, event_log: EventLog
) -> None:
    start_service("invitation")
    expiry = start_service("expiry")
    await invitation_service_ready(client)
    await expiry_ready(expiry)
    tenant, email = unique("moved"), f"{unique('dan')}@example.com"
    await contractor_with_end_in(client, tenant, email, 3600)

    new_end = await send_with_end_in(
        client, 3, "set_contractor_expiry", tenant_id=tenant, email=email
    )
    expired = await wait_for(
        lambda: events_of(event_log, tenant, "ContractorExpired"),
        timeout=15,
        what="ContractorExpired",
    )

    assert expired[0].occurred_at >= new_end
    assert expired[0].data["access_expires_at"] == new_end.isoformat()
