"""`invitations replay expiry`: the schedule rebuilt from the store, and no command sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aio_pika
import pytest

from shared.topology import COMMANDS_EXCHANGE_NAME
from tests.support import temporary_vhost

pytestmark = pytest.mark.integration


async def _listen(amqp_url: str) -> None:
    """A queue that would catch any command published on this vhost."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue("replay-watch", durable=True)
        await queue.bind(exchange, "#")


async def _count(amqp_url: str) -> int:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("replay-watch", durable=True)
        return int(queue.declaration_result.message_count or 0)


def test_replay_expiry_rebuilds_the_schedule_and_sends_nothing(store, tenant):
    store.command("configure_tenant", tenant_id=tenant, contractor_enabled=True)
    # A contractor whose end passed ten days ago: a starting expiry service would fire.
    store.clock.advance(days=-20)
    store.invite(
        tenant,
        "late-contractor@example.com",
        role="contractor",
        access_expires_at=store.clock.now + timedelta(days=10),
    )
    store.clock.advance(days=20)
    store.invite(tenant, "someone@example.com")
    envelopes = store.envelopes()

    with temporary_vhost() as amqp_url:
        asyncio.run(_listen(amqp_url))
        result = store.run("replay", "expiry", AMQP_URL=amqp_url)
        assert asyncio.run(_count(amqp_url)) == 0

    assert result.exit_code == 0, result.output
    followed = {"UserInvited", "TempPasswordIssued", "TenantConfigured"}
    applied = sum(1 for e in envelopes if e.event_type in followed)
    assert f"expiry rebuilt from {applied} events" in result.stdout
    # The contractor's end, two reminders, link and password are overdue; the other
    # person's link and password are not.
    assert "7 deadline(s) for 1 contractor(s), 5 overdue" in result.stderr
    assert "next: remind_contractor_expiry" in result.stderr


def test_replay_expiry_of_an_empty_store_finds_nothing(store):
    result = store.run("replay", "expiry")

    assert result.exit_code == 0, result.output
    assert "expiry rebuilt from 0 events" in result.stdout
    assert "0 deadline(s)" in result.stderr
