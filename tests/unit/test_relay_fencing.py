"""The outbox relay's fenced leadership, with a fake lease, broker and clock.

The clock the fence reads is the test's: a leader's confirmation goes stale, or a new
holder's grace runs out, only when the test moves it. The relay's own timers (confirm,
standby tries, idle polls) run on real, short sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from eventsourcing.persistence import Tracking
from pydantic import ValidationError

from services.invitation.adapters.relay import OutboxRelay
from services.invitation.adapters.relay_lease import LastHolder, LeaseTimings, Taken
from services.invitation.settings import InvitationSettings
from shared.retry import RetryPolicy
from tests.fakes import MemoryLog, Ticks
from tests.support import wait_for

TIMINGS = LeaseTimings(standby_poll=0.01, confirm_every=0.01, valid_for=1.0, takeover_grace=2.0)


class FakeLease:
    """A lease the test grants, withholds, hangs (the database stops answering) or loses."""

    def __init__(self, timings: LeaseTimings = TIMINGS, *, free: bool = True) -> None:
        self.timings = timings
        self.free = free
        # What the next take answers (a real lease reads it from its holder record).
        self.taken = Taken(timings.takeover_grace, LastHolder.ANOTHER)
        self.unreachable = 0  # the next tries that fail (the database is away)
        self.lost = False
        self.held = False
        self.tries = 0
        self.confirms = 0
        self.released = 0
        self._answering = threading.Event()
        self._answering.set()

    def try_acquire(self) -> Taken | None:
        self.tries += 1
        if self.unreachable:
            self.unreachable -= 1
            raise ConnectionError("database away")
        self.held = self.free
        return self.taken if self.held else None

    def confirm(self) -> bool:
        self._answering.wait(10)
        self.confirms += 1
        return self.held and not self.lost

    def release(self) -> None:
        self.held = False
        self.released += 1

    def hang(self) -> None:
        self._answering.clear()

    def answer(self) -> None:
        self._answering.set()


class FakeExchange:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.failures = 0  # the next publishes that fail (the broker went away)

    async def publish(self, message: Any, routing_key: str) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker gone")
        self.published.append(message.message_id)


class FakeChannel:
    is_closed = False

    def __init__(self, exchange: FakeExchange) -> None:
        self._exchange = exchange

    async def declare_exchange(self, *args: Any, **kwargs: Any) -> FakeExchange:
        return self._exchange

    async def close(self) -> None:
        self.is_closed = True


class FakeConnection:
    """The service's robust connection: `connected` is cleared while the broker is away,
    and a channel cannot be opened then (aio-pika's RuntimeError)."""

    def __init__(self, exchange: FakeExchange) -> None:
        self._exchange = exchange
        self.connected = asyncio.Event()
        self.connected.set()
        self.channels_asked = 0

    async def channel(self, **options: Any) -> FakeChannel:
        self.channels_asked += 1
        if not self.connected.is_set():
            raise RuntimeError("Connection was not opened")
        return FakeChannel(self._exchange)


class FakeTracking:
    def __init__(self) -> None:
        self.position = 0

    def max_tracking_id(self, name: str) -> int:
        return self.position

    def insert_tracking(self, tracking: Tracking) -> None:
        self.position = tracking.notification_id


class AwayLog(MemoryLog):
    """The event log, which the test can make fail as a database that went away."""

    away = False

    def read_with_high_water(self, after: int = 0, limit: int = 1000) -> Any:
        if self.away:
            raise ConnectionError("database away")
        return super().read_with_high_water(after, limit)


class Setup:
    def __init__(
        self,
        lease: FakeLease,
        policy: RetryPolicy | None = None,
        exchange: FakeExchange | None = None,
    ) -> None:
        self.lease = lease
        self.clock = Ticks()
        self.log = AwayLog()
        self.exchange = exchange or FakeExchange()
        self.connection = FakeConnection(self.exchange)
        self.relay = OutboxRelay(
            self.log,  # type: ignore[arg-type]
            FakeTracking(),
            self.connection,  # type: ignore[arg-type]
            lease=lease,
            idle_poll=0.01,
            policy=policy or RetryPolicy(initial_delay=0.01, max_delay=0.02),
            wait_policy=RetryPolicy(initial_delay=0.01, max_delay=0.02),
            clock=self.clock,
        )

    async def lead(self) -> None:
        """Start the relay, let it take the lease and wait out its grace."""
        self.relay.start()
        await wait_for(lambda: self.lease.held, what="the lease taken")
        self.clock.advance(TIMINGS.takeover_grace)

    def invite(self, count: int = 1) -> None:
        for i in range(count):
            self.log.add("InvitationRevoked", "acme", invitation_id=f"i{i}", reason=None)
        self.relay.wake()

    @property
    def published(self) -> list[str]:
        return self.exchange.published


@pytest.fixture
async def setup() -> Any:
    made: list[Setup] = []

    def make(
        lease: FakeLease, policy: RetryPolicy | None = None, exchange: FakeExchange | None = None
    ) -> Setup:
        made.append(Setup(lease, policy, exchange))
        return made[-1]

    yield make
    for each in made:
        each.lease.answer()
        await each.relay.stop()


async def test_a_leader_that_cannot_confirm_its_lease_stops_publishing_once_it_is_stale(
    setup: Any,
) -> None:
    s = setup(FakeLease())
    await s.lead()
    s.invite()
    await wait_for(lambda: len(s.published) == 1, what="the first event published")
    assert s.relay.leading

    s.lease.hang()  # the database stops answering: the confirmation in flight waits
    s.clock.advance(TIMINGS.valid_for)
    assert not s.relay.leading  # the gauge reads 0 from now on
    s.invite()
    await asyncio.sleep(0.1)  # ten idle polls in which it must not publish
    assert len(s.published) == 1

    s.lease.lost = True
    s.lease.answer()  # the confirmation fails: the relay lets the lease go
    await wait_for(lambda: s.lease.released >= 1, what="the lease released")
    assert len(s.published) == 1
    assert not s.relay.leading


async def test_a_new_holder_publishes_nothing_during_the_takeover_grace(
    setup: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.invitation.adapters.relay")
    s = setup(FakeLease(free=False))
    s.invite(3)
    s.relay.start()
    await wait_for(lambda: s.lease.tries >= 3, what="the standby trying on its timer")
    assert [r.message for r in caplog.records].count("another instance relays; standing by") == 1

    s.lease.free = True  # the leader went away
    await wait_for(lambda: s.lease.held, what="the standby taking the lease")
    confirms = s.lease.confirms
    await wait_for(lambda: s.lease.confirms >= confirms + 3, what="confirmations in the grace")
    assert s.published == []
    assert not s.relay.leading

    s.clock.advance(TIMINGS.takeover_grace)
    await wait_for(lambda: len(s.published) == 3, what="the events published after the grace")
    assert s.relay.leading


async def test_a_leader_that_takes_its_own_lease_back_after_a_database_restart_relays_at_once(
    setup: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.invitation.adapters.relay")
    s = setup(FakeLease())
    await s.lead()
    s.invite()
    await wait_for(lambda: len(s.published) == 1, what="the first event published")

    # The database restarts: the lease goes with the session, and the relay tries for
    # it again until the database answers; its record says this instance held it last.
    s.lease.unreachable = 10**6
    s.lease.lost = True
    await wait_for(lambda: s.lease.released >= 1, what="the lease let go")
    tries = s.lease.tries
    await wait_for(lambda: s.lease.tries > tries, what="a try while the database is away")
    s.lease.lost = False
    s.lease.taken = Taken(0.0, LastHolder.THIS_INSTANCE)
    s.lease.unreachable = 0
    s.invite()
    # The test's clock stands still: no grace can run out.
    await wait_for(lambda: len(s.published) == 2, what="the event published without a grace")
    assert s.relay.leading
    assert "took the relay lease back (this instance held it last); relaying now" in [
        r.getMessage() for r in caplog.records
    ]


async def test_a_standby_taking_over_from_a_leader_that_stopped_cleanly_relays_at_once(
    setup: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.invitation.adapters.relay")
    lease = FakeLease(free=False)
    lease.taken = Taken(0.0, LastHolder.STOPPED)
    s = setup(lease)
    s.invite(2)
    s.relay.start()
    await wait_for(lambda: s.lease.tries >= 2, what="the standby trying")
    s.lease.free = True  # the leader stopped publishing and let the lease go
    await wait_for(lambda: len(s.published) == 2, what="the events published without a grace")
    assert "took the relay lease (its last holder stopped and let it go); relaying now" in [
        r.getMessage() for r in caplog.records
    ]


async def test_a_holder_still_owed_part_of_a_grace_waits_only_that_part(setup: Any) -> None:
    lease = FakeLease()
    lease.taken = Taken(TIMINGS.takeover_grace / 4, LastHolder.THIS_INSTANCE)
    s = setup(lease)
    s.invite()
    s.relay.start()
    await wait_for(lambda: s.lease.held, what="the lease taken")
    confirms = s.lease.confirms
    await wait_for(lambda: s.lease.confirms >= confirms + 3, what="confirmations in the grace")
    assert s.published == []

    s.clock.advance(TIMINGS.takeover_grace / 4)
    await wait_for(lambda: len(s.published) == 1, what="the event published after that part")


class StallingExchange(FakeExchange):
    """The first publish of a section fails; the others wait for a confirm that never
    comes (the broker connection is going)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0
        self.cancelled = 0

    async def publish(self, message: Any, routing_key: str) -> None:
        self.started += 1
        if self.started == 1:
            raise ConnectionError("broker gone")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_a_failed_publish_cancels_the_rest_of_its_section_before_the_relay_goes_on(
    setup: Any,
) -> None:
    # Nothing of ours may still be publishing once the relay has let go of its lease:
    # the next holder may start at once.
    exchange = StallingExchange()
    s = setup(FakeLease(), RetryPolicy(initial_delay=60, max_delay=60), exchange)
    await s.lead()
    s.invite(3)
    await wait_for(lambda: s.relay._backoff.failures >= 1, what="the relay backing off")
    assert exchange.started == 3
    assert exchange.cancelled == 2


async def test_a_standby_tries_for_the_lease_on_its_own_timer_not_on_every_commit(
    setup: Any,
) -> None:
    slow = LeaseTimings(standby_poll=60, confirm_every=0.01, valid_for=1, takeover_grace=2)
    s = setup(FakeLease(slow, free=False))
    s.relay.start()
    await wait_for(lambda: s.lease.tries == 1, what="the first try")
    for _ in range(100):
        s.invite()  # each commit wakes the relay
        await asyncio.sleep(0)
    assert s.lease.tries == 1


async def test_a_leader_keeps_its_lease_through_a_broker_outage_and_resumes_without_a_grace(
    setup: Any,
) -> None:
    s = setup(FakeLease())
    await s.lead()
    s.exchange.failures = 3
    s.invite(2)
    await wait_for(lambda: len(set(s.published)) == 2, what="the events published once back")
    assert s.lease.released == 0
    assert s.lease.tries == 1


async def test_a_leader_whose_broker_connection_is_down_relays_again_the_moment_it_is_back(
    setup: Any,
) -> None:
    # A back-off that grows while the broker is away (a minute, here) would hold events
    # back long after it returned: the relay waits for the connection instead.
    s = setup(FakeLease(), policy=RetryPolicy(initial_delay=60.0, max_delay=60.0))
    await s.lead()
    s.invite()
    await wait_for(lambda: len(s.published) == 1, what="the first event published")

    s.connection.connected.clear()  # the broker went away
    s.exchange.failures = 1
    s.invite()
    await wait_for(lambda: s.exchange.failures == 0, what="the publish that failed")
    asked = s.connection.channels_asked
    await asyncio.sleep(0.1)
    assert s.connection.channels_asked == asked  # no channel asked of a connection that is down

    s.connection.connected.set()  # aio-pika reconnected
    await wait_for(lambda: len(set(s.published)) == 2, timeout=5, what="relayed once back")
    assert s.lease.released == 0


async def test_a_leader_whose_database_went_away_lets_the_lease_go_without_its_back_off(
    setup: Any,
) -> None:
    # The relay's back-off is long here: only the lost lease can cut it short.
    s = setup(FakeLease(), RetryPolicy(initial_delay=60, max_delay=60))
    await s.lead()
    s.log.away = True
    s.invite()  # the read fails: the relay backs off
    await wait_for(lambda: s.relay._backoff.failures >= 1, what="the relay backing off")
    s.lease.lost = True  # and the confirmation finds the lease gone with the database
    await wait_for(lambda: s.lease.released >= 1, timeout=5, what="the lease let go")
    assert not s.relay.leading


async def test_a_standby_keeps_trying_for_the_lease_while_the_database_is_away(
    setup: Any, caplog: pytest.LogCaptureFixture
) -> None:
    lease = FakeLease()
    lease.unreachable = 3
    s = setup(lease)
    s.relay.start()
    await wait_for(lambda: s.lease.held, what="the lease taken once the database answers")
    warnings = [r for r in caplog.records if "for the relay lease" in r.getMessage()]
    assert len(warnings) == 3


def test_lease_timings_that_cannot_fence_are_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="valid_for < takeover_grace"):
        InvitationSettings(development_mode=True, relay_takeover_grace=0.5)
    with pytest.raises(ValueError, match="confirm_every < valid_for"):
        LeaseTimings(confirm_every=2, valid_for=1.5)
