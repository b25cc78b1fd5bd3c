"""Two relays over one store: one relays, the other stands by and takes over (PostgreSQL),
and the two never publish at once."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import aio_pika
import psycopg
import pytest
from aio_pika.abc import AbstractRobustConnection
from psycopg import sql

from services.invitation.adapters.relay import OutboxRelay, tracking_recorder
from services.invitation.adapters.relay_lease import (
    LastHolder,
    LeaseTimings,
    PostgresRelayLease,
)
from services.invitation.application import InvitationService
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from shared.contract import COMMANDS
from shared.database import ensure_schema, postgres_conninfo
from tests.fakes import Ticks
from tests.support import TEST_SECRETS_KEY, EventTap, temporary_schema, wait_for

pytestmark = pytest.mark.integration

# Short, so a takeover takes a fraction of a second; still fenced (confirm < valid < grace).
QUICK = LeaseTimings(standby_poll=0.1, confirm_every=0.1, valid_for=0.4, takeover_grace=0.6)


@pytest.fixture
def store_url() -> Iterator[str]:
    with temporary_schema() as url:
        # The store makes its schema; the tests of the lease alone need it too.
        ensure_schema(url, parse_qs(urlsplit(url).query)["schema"][0])
        yield url


@pytest.fixture
def clock() -> Ticks:
    return Ticks()


@pytest.fixture
def leases(store_url: str, clock: Ticks) -> Iterator[tuple[PostgresRelayLease, PostgresRelayLease]]:
    """Two instances' leases on one schema (released afterwards)."""
    pair = (
        PostgresRelayLease(store_url, QUICK, clock=clock),
        PostgresRelayLease(store_url, QUICK, clock=clock),
    )
    try:
        yield pair
    finally:
        for lease in pair:
            lease.release()


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
        assert first.try_acquire() is not None
        assert second.try_acquire() is None
        assert first.confirm()
        terminate(store_url, backend_pid(first))
        # PostgreSQL freed the lock with the connection: the other takes it, and the
        # first finds out at its next confirmation instead of relaying on beside it.
        assert second.try_acquire() is not None
        assert not first.confirm()
        assert first.try_acquire() is None
    finally:
        first.release()
        second.release()


def test_a_standby_tries_for_the_lease_on_one_connection(store_url: str) -> None:
    leader = PostgresRelayLease(store_url, QUICK)
    standby = PostgresRelayLease(store_url, QUICK)
    try:
        assert leader.try_acquire() is not None
        assert standby.try_acquire() is None
        pid = backend_pid(standby)
        for _ in range(5):
            assert standby.try_acquire() is None
        assert backend_pid(standby) == pid
    finally:
        leader.release()
        standby.release()


GRACE = QUICK.takeover_grace


def take(lease: PostgresRelayLease) -> tuple[float, LastHolder]:
    """The grace a take asks for (to the microsecond: the clock counts from 1000 s) and why."""
    taken = lease.try_acquire()
    assert taken is not None, "the lease was held elsewhere"
    return round(taken.grace, 6), taken.last_holder


def test_the_first_holder_on_a_fresh_schema_makes_the_record_and_waits_the_grace(
    store_url: str, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    # No record: an instance of an older version, which keeps none, may hold the lease.
    first, second = leases
    assert take(first) == (GRACE, LastHolder.UNKNOWN)
    assert second.try_acquire() is None
    schema = parse_qs(urlsplit(store_url).query)["schema"][0]
    with psycopg.connect(postgres_conninfo(store_url), autocommit=True) as admin:
        rows = admin.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "relay_leader"))
        ).fetchone()
    assert rows == (1,)


def test_a_holder_taking_its_lease_back_after_its_connection_was_killed_needs_no_grace(
    store_url: str, clock: Ticks, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    first, second = leases
    assert first.try_acquire() is not None
    clock.advance(GRACE)  # it relayed for a while
    terminate(store_url, backend_pid(first))  # as in a database restart
    assert not first.confirm()
    assert take(first) == (0.0, LastHolder.THIS_INSTANCE)
    assert second.try_acquire() is None


def test_a_holder_taking_its_lease_back_within_its_grace_still_waits_the_rest(
    store_url: str, clock: Ticks, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    # The leader before it may still be publishing: what the first take owed, the
    # second owes too.
    first, _ = leases
    assert first.try_acquire() is not None
    clock.advance(0.15)
    terminate(store_url, backend_pid(first))
    assert not first.confirm()
    assert take(first) == (0.45, LastHolder.THIS_INSTANCE)  # of the grace's 0.6 s


def test_another_instance_taking_over_from_a_holder_whose_session_died_waits_the_grace(
    store_url: str, clock: Ticks, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    first, second = leases
    assert first.try_acquire() is not None
    clock.advance(GRACE)
    terminate(store_url, backend_pid(first))  # the first does not know yet
    assert take(second) == (GRACE, LastHolder.ANOTHER)
    assert not first.confirm()
    assert first.try_acquire() is None


def test_a_holder_that_released_cleanly_lets_the_next_one_relay_at_once(
    clock: Ticks, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    first, second = leases
    assert first.try_acquire() is not None
    clock.advance(GRACE)
    first.release()  # as in a rolling restart: it stopped publishing, then let go
    assert take(second) == (0.0, LastHolder.STOPPED)


def test_a_release_within_the_holders_own_grace_leaves_the_next_one_the_grace(
    leases: tuple[PostgresRelayLease, PostgresRelayLease],
) -> None:
    # The leader before the first may still be publishing: the first cannot vouch.
    first, second = leases
    assert first.try_acquire() is not None
    first.release()
    assert take(second) == (GRACE, LastHolder.ANOTHER)


def test_a_release_after_the_connection_died_leaves_the_next_holder_the_grace(
    store_url: str, clock: Ticks, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    first, second = leases
    assert first.try_acquire() is not None
    clock.advance(GRACE)
    terminate(store_url, backend_pid(first))
    first.release()
    assert take(second) == (GRACE, LastHolder.ANOTHER)


def test_a_take_whose_record_cannot_be_written_fails_and_frees_the_lock(
    store_url: str, leases: tuple[PostgresRelayLease, PostgresRelayLease]
) -> None:
    first, second = leases
    table = sql.Identifier(parse_qs(urlsplit(store_url).query)["schema"][0], "relay_leader")
    with psycopg.connect(postgres_conninfo(store_url), autocommit=True) as admin:
        # A record no holder can be written into.
        admin.execute(
            sql.SQL(
                "CREATE TABLE {} (name TEXT PRIMARY KEY, holder TEXT NOT NULL "
                "CHECK (holder = ''), stopped BOOLEAN NOT NULL)"
            ).format(table)
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            first.try_acquire()
        admin.execute(sql.SQL("DROP TABLE {}").format(table))
    assert take(second) == (GRACE, LastHolder.UNKNOWN)


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
