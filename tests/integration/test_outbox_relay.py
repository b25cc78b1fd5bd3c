"""The outbox relay over the real broker and database: order, envelope, and crashes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.invitation.adapters.relay import TRACKING_NAME, tracking_recorder
from services.invitation.eventstore import EventLog, store_env
from shared.command_client import CommandClient
from tests.support import EventTap, invitation_service_ready, wait_for

pytestmark = pytest.mark.integration


def invite(tenant: str, email: str) -> dict[str, str]:
    return {
        "command_id": str(uuid.uuid4()),
        "actor": "admin@example.com",
        "tenant_id": tenant,
        "email": email,
        "role": "user",
    }


async def test_stored_events_reach_the_exchange_in_store_order_with_the_contract_envelope(
    start_service, client: CommandClient, tenant: str, amqp_url: str, database_url: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    async with EventTap(amqp_url) as tap:
        replies = await asyncio.gather(
            *(
                client.send("invite_user", invite(tenant, f"order{i}@example.com"))
                for i in range(30)
            )
        )
        assert all(r.status == "accepted" for r in replies)
        await wait_for(
            lambda: len([e for e in tap.envelopes if e.tenant_id == tenant]) >= 60,
            what="60 events of the tenant",
        )
    mine = [e for e in tap.envelopes if e.tenant_id == tenant]
    positions = [e.position for e in mine]
    assert positions == sorted(positions)
    assert all(
        mid == str(e.event_id) for mid, e in zip(tap.message_ids, tap.envelopes, strict=True)
    )
    # Exactly what the store says, field for field.
    log = EventLog(database_url)
    try:
        stored = {e.event_id: e for e in log.iterate() if e.tenant_id == tenant}
    finally:
        log.close()
    assert {e.event_id: e for e in mine} == stored
    invited = mine[0]
    assert invited.event_type == "UserInvited"
    assert invited.actor == "admin@example.com"
    assert invited.correlation_id == replies[0].command_id or invited.correlation_id in {
        r.command_id for r in replies
    }


async def test_an_event_committed_before_a_kill_is_published_after_restart(
    start_service, client: CommandClient, tenant: str, amqp_url: str, database_url: str
) -> None:
    # The relay is held back, so the kill lands exactly between commit and publish.
    service = start_service(RELAY_ENABLED="false")
    await invitation_service_ready(client)
    tracking = tracking_recorder(store_env(database_url))
    relayed_before = tracking.max_tracking_id(TRACKING_NAME)
    async with EventTap(amqp_url) as tap:
        reply = await client.send("invite_user", invite(tenant, "survivor@example.com"))
        assert reply.status == "accepted"
        assert reply.result is not None
        # Committed (it was answered) and not relayed: the relay's position has not moved.
        assert tracking.max_tracking_id(TRACKING_NAME) == relayed_before
        assert tap.for_invitation(reply.result["invitation_id"]) == []
        service.kill()

        start_service()
        expected = {"UserInvited", "TempPasswordIssued"}
        await wait_for(
            lambda: (
                {e.event_type for e in tap.for_invitation(reply.result["invitation_id"])}
                >= expected
            ),
            timeout=20,
            what="every committed event after restart",
        )


async def test_a_kill_mid_burst_leaves_no_gap_in_what_consumers_receive(
    start_service, client: CommandClient, tenant: str, amqp_url: str, database_url: str
) -> None:
    service = start_service()
    await invitation_service_ready(client)
    async with EventTap(amqp_url) as tap:
        burst = [
            asyncio.ensure_future(client.send("invite_user", invite(tenant, f"b{i}@example.com")))
            for i in range(200)
        ]
        await wait_for(
            lambda: any(e.tenant_id == tenant for e in tap.envelopes),
            what="the first events of the burst",
        )
        service.kill()
        start_service()
        await asyncio.wait(burst, timeout=30)
        log = EventLog(database_url)
        try:
            stored_ids = {e.event_id for e in log.iterate() if e.tenant_id == tenant}
        finally:
            log.close()
        await wait_for(
            lambda: stored_ids <= {e.event_id for e in tap.envelopes},
            timeout=30,
            what="every stored event on the exchange",
        )
    # Duplicates are allowed (same event_id); gaps are not.
    assert stored_ids
