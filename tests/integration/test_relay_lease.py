"""Two relays over one store: one relays, the other stands by and takes over (PostgreSQL),
and the two never publish at once."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Iterator
from uuid import uuid4

import aio_pika
import psycopg
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.invitation.adapters.relay import OutboxRelay, tracking_recorder
from services.invitation.adapters.relay_lease import LeaseTimings, PostgresRelayLease
from services.invitation.application import InvitationService
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from shared.contract import COMMANDS
from shared.database import postgres_conninfo
from tests.support import TEST_SECRETS_KEY, EventTap, temporary_schema, wait_for

pytestmark = pytest.mark.integration

# Short, so a takeover takes a fraction of a second; still fenced (confirm < valid < grace).
QUICK = LeaseTimings(standby_poll=0.1, confirm_every=0.1, valid_for=0.4, takeover_grace=0.6)


@pytest.fixture
def store_url() -> Iterator[str]:
    with temporary_schema() as url:
        yield url


def invite_some(service: InvitationService, tenant: str, count: int) -> None:
    for i in range(count):
        command = COMMANDS["invite_user"].model_validate(
            {
                "command_id": str(uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "email": f"lease{i}-{uuid4().hex[:6]}@example.com",
                "role": "user",
            }
        )
        assert service.handle("invite_user", command).status == "accepted"


def relay(
    store_url: str, connection: AbstractRobustConnection, service: InvitationService
) -> OutboxRelay:
    return OutboxRelay(
        EventLog(store_url, store=service.store),
        tracking_recorder(store_env(store_url)),
        connection,
        lease=PostgresRelayLease(store_url, QUICK),
        idle_poll=0.05,
    )


async def test_only_the_lease_holder_relays_and_the_standby_takes_over_when_it_stops(
    store_url: str, amqp_url: str
) -> None:
    service = InvitationService(
        InvitationStore(env=store_env(store_url)),
        secrets_key=base64.b64decode(TEST_SECRETS_KEY),
    )
    tenant = f"lease-{uuid4().hex[:8]}"
    # Each relay on a connection of its own, as two instances of the service would be.
    connections = [await aio_pika.connect_robust(amqp_url) for _ in range(2)]
    first, second = (relay(store_url, connection, service) for connection in connections)
    try:
        async with EventTap(amqp_url) as tap:
            first.start()
            await wait_for(lambda: first.leading, what="the first relay leading")
            second.start()
            invite_some(service, tenant, 10)
            stored = service.store.recorder.max_notification_id() or 0
            await wait_for(lambda: first.published_position >= stored, what="relayed")
            assert not second.leading
            assert second.published_count == 0

            await first.stop()
            await wait_for(lambda: second.leading, what="the standby taking over")
            invite_some(service, tenant, 5)
            stored = service.store.recorder.max_notification_id() or 0
            await wait_for(lambda: second.published_position >= stored, what="relayed again")
            await wait_for(
                lambda: len([e for e in tap.envelopes if e.tenant_id == tenant]) >= 30,
                what="every event on the exchange",
            )
        copies = Counter(e.event_id for e in tap.envelopes if e.tenant_id == tenant)
        # Each event once: the standby started from the position the leader recorded.
        assert len(copies) == 30
        assert set(copies.values()) == {1}
    finally:
        await first.stop()
        await second.stop()
        for connection in connections:
            await connection.close()
        service.close()


def backend_pid(lease: PostgresRelayLease) -> int:
    assert lease._conn is not None
    return int(lease._conn.info.backend_pid)


def terminate(store_url: str, pid: int) -> None:
    with psycopg.connect(postgres_conninfo(store_url), autocommit=True) as admin:
        # With a timeout it waits until the backend is gone (and its locks with it).
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_a_lease_whose_connection_was_killed_is_free_for_another_instance(
    store_url: str,
) -> None:
    first = PostgresRelayLease(store_url, QUICK)
    second = PostgresRelayLease(store_url, QUICK)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.confirm()
        terminate(store_url, backend_pid(first))
        # PostgreSQL freed the lock with the connection: the other takes it, and the
        # first finds out at its next confirmation instead of relaying on beside it.
        assert second.try_acquire()
        assert not first.confirm()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()


def test_a_standby_tries_for_the_lease_on_one_connection(store_url: str) -> None:
    leader = PostgresRelayLease(store_url, QUICK)
    standby = PostgresRelayLease(store_url, QUICK)
    try:
        assert leader.try_acquire()
        assert not standby.try_acquire()
        pid = backend_pid(standby)
        for _ in range(5):
            assert not standby.try_acquire()
        assert backend_pid(standby) == pid
    finally:
        leader.release()
        standby.release()


async def test_a_leader_whose_lease_connection_dies_stops_before_the_standby_relays(
    store_url: str, amqp_url: str
) -> None:
    """As in a database restart: the leader's session goes, the standby takes the lock
    at once. Sampled every few milliseconds, the two never both read leading, and every
    event still reaches the exchange."""
    service = InvitationService(
        InvitationStore(env=store_env(store_url)),
        secrets_key=base64.b64decode(TEST_SECRETS_KEY),
    )
    tenant = f"fence-{uuid4().hex[:8]}"
    connections = [await aio_pika.connect_robust(amqp_url) for _ in range(2)]
    first, second = (relay(store_url, connection, service) for connection in connections)
    both_leading = 0
    sampling = True

    async def sample() -> None:
        nonlocal both_leading
        while sampling:
            both_leading += first.leading and second.leading
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    try:
        async with EventTap(amqp_url) as tap:
            first.start()
            await wait_for(lambda: first.leading, what="the first relay leading")
            second.start()
            invite_some(service, tenant, 5)
            lease = first._lease
            assert isinstance(lease, PostgresRelayLease)
            terminate(store_url, backend_pid(lease))
            invite_some(service, tenant, 5)
            await wait_for(lambda: second.leading or first.leading, what="a leader again")
            invite_some(service, tenant, 5)
            await wait_for(
                lambda: len({e.event_id for e in tap.envelopes if e.tenant_id == tenant}) >= 30,
                what="every event on the exchange",
            )
        assert both_leading == 0
    finally:
        sampling = False
        await sampler
        await first.stop()
        await second.stop()
        for connection in connections:
            await connection.close()
        service.close()
