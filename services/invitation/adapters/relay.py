"""Outbox relay: every stored contract event reaches `invitations.events`, in store order.

The event store is the outbox. The relay reads past its tracking position, publishes a
section with publisher confirms (pipelined: all in flight, then awaited together),
and only then records the new position. A crash anywhere before that record re-sends
the section after restart: duplicates carry the same `message_id` (= event_id), which
consumers already dedupe on; a gap is impossible.

One instance relays at a time (relay_lease.py); another stands by and takes over when
the first stops or dies. The leader publishes only while its lease was confirmed
recently (a timer of its own confirms it), and a new holder waits out a grace before
its first publish unless the lease's holder record shows nobody else can still be
publishing (it held the lease last itself, or its last holder stopped cleanly), so two
instances never publish at once (relay_lease.py says why).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment
from opentelemetry.trace import SpanKind

from services.invitation import metrics
from services.invitation.adapters.relay_lease import LastHolder, RelayLease, SoleRelay
from services.invitation.eventstore import EventLog, PostgresTrackingRecorderSerialised
from shared.contract import EventEnvelope
from shared.event_loop import wait_event
from shared.event_message import to_message
from shared.retry import RetryPolicy, describe
from shared.service import close_channel
from shared.telemetry import child_span, current_traceparent, tracing_enabled
from shared.topology import EVENTS_EXCHANGE_NAME

log = logging.getLogger(__name__)
TRACKING_NAME = "Invitations"


def tracking_recorder(env: dict[str, str]) -> Any:
    """The relay's own tracking table (`relay_tracking` on PostgreSQL)."""
    factory = InfrastructureFactory.construct(Environment("relay", env))
    if isinstance(factory, PostgresFactory):
        return factory.tracking_recorder(PostgresTrackingRecorderSerialised)
    return factory.tracking_recorder()


class LeaseLostError(Exception):
    """The lease could not be confirmed: another instance may hold it now."""


class OutboxRelay:
    def __init__(
        self,
        event_log: EventLog,
        tracking: Any,
        connection: AbstractRobustConnection,
        *,
        section: int = 500,
        idle_poll: float = 0.5,
        lease: RelayLease | None = None,
        policy: RetryPolicy | None = None,
        wait_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Publishes on a channel of its own on `connection` (the service's one).

        `lease` brings its timings (LeaseTimings); `clock` is what they are measured on.
        `wait_policy` paces the tries for the lease while the database is away (a wait
        on a dependency: capped low, so relaying resumes soon after it is back).
        """
        self._log = event_log
        self._tracking = tracking
        self._connection = connection
        self._section = section
        self._idle_poll = idle_poll
        self._lease = lease or SoleRelay()
        self._timings = self._lease.timings
        self._clock = clock
        # Reset by every section relayed (and every idle poll): a relay that worked for
        # an hour and then lost the broker starts again from the first delay.
        self._backoff = (policy or RetryPolicy()).backoff(
            "relay failed", log, traceback=True, sleep=self._pause
        )
        self._waiting = (wait_policy or (policy or RetryPolicy()).capped(1.0)).backoff(
            "could not reach the database for the relay lease", log
        )
        self._holding = False  # the lease is ours (perhaps still in its grace)
        self._relaying = False  # past the grace: publishing while confirmed
        self._lost = asyncio.Event()  # set by the confirming timer
        self._confirmed_at = -float("inf")
        self._confirmed = asyncio.Event()
        self._confirming: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published_position = 0
        self.published_count = 0
        self._tracing = tracing_enabled()

    @property
    def leading(self) -> bool:
        """Publishing now: past the grace, and the lease confirmed within its validity.

        The `invitations_relay_leading` gauge reads this, so a leader that cannot confirm
        its lease reads 0 before a standby can read 1.
        """
        return self._relaying and self._confirmed_recently()

    def _confirmed_recently(self) -> bool:
        return self._clock() - self._confirmed_at < self._timings.valid_for

    def wake(self) -> None:
        """Called after a commit, so new events go out without waiting for the poll."""
        self._wake.set()

    def recorded_position(self) -> int:
        """Up to where some relay (this one or the instance leading) has published."""
        return int(self._tracking.max_tracking_id(TRACKING_NAME) or 0)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._supervise(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _supervise(self) -> None:
        try:
            while True:
                try:
                    if not self._holding:
                        await self._take_lease()
                    await self._relay()
                except asyncio.CancelledError:
                    raise
                except LeaseLostError as error:
                    log.warning("stopped relaying: %s", error)
                    await self._let_go()
                except Exception as error:
                    if self._lost.is_set():
                        # The database went, and the lease with it: the relay's back-off
                        # would only delay the new try for the lease (on the wait policy).
                        log.warning("stopped relaying: the lease was lost (%s)", error)
                        await self._let_go()
                        continue
                    # The lease stays ours while it is confirmed (a broker outage keeps
                    # it): no grace to wait out again once the broker is back.
                    if not self._connection.connected.is_set():
                        # aio-pika reconnects the service's connection on its own (one
                        # WARNING a try): relay again the moment it is back, not after a
                        # back-off that grew while the broker was away.
                        log.warning(
                            "stopped relaying: the broker connection is down (%s); relaying "
                            "again as soon as it is back",
                            describe(error),
                        )
                        await self._broker_back()
                        continue
                    await self._backoff.failed(error)
        finally:
            await self._let_go()

    async def _broker_back(self) -> None:
        """Until the service's broker connection is back, or the lease is lost (the next
        try then lets it go)."""
        connected = self._connection.connected
        while not connected.is_set() and not self._lost.is_set():
            await wait_event(connected, self._timings.confirm_every)

    async def _take_lease(self) -> None:
        standing_by = False
        while True:
            try:
                taken = await asyncio.to_thread(self._lease.try_acquire)
            except Exception as error:
                await self._waiting.failed(error)
                continue
            self._waiting.succeeded()
            self._backoff.succeeded()
            if taken is not None:
                break
            if not standing_by:
                log.info("another instance relays; standing by")
                standing_by = True
            await asyncio.sleep(self._timings.standby_poll)
        self._holding = True
        self._lost.clear()
        taken_at = self._confirmed_at = self._clock()
        self._confirming = asyncio.create_task(self._keep_confirming(), name="relay-lease")
        why = taken.last_holder.value
        if taken.grace > 0:
            # An instance that held the lease before may publish until its own
            # confirmation runs out (valid_for < takeover_grace): let it.
            log.info(
                "took the relay lease; relaying in %.1fs (a former leader's grace: %s)",
                taken.grace,
                why,
            )
            await self._until(taken_at + taken.grace)
            log.info("relaying: this instance holds the relay lease")
        elif taken.last_holder is LastHolder.THIS_INSTANCE:
            log.info("took the relay lease back (%s); relaying now", why)
        else:
            log.info("took the relay lease (%s); relaying now", why)
        self._relaying = True

    async def _keep_confirming(self) -> None:
        """The leader's own timer: confirm every `confirm_every`, whatever the relay does."""
        while True:
            await asyncio.sleep(self._timings.confirm_every)
            # When the query started is what counts: the lock was held at some moment
            # after it, and no sooner than that can another instance have taken it.
            started = self._clock()
            try:
                held = await asyncio.to_thread(self._lease.confirm)
            except Exception:  # a fake's or a driver's surprise: treat it as lost
                log.exception("could not confirm the relay lease")
                held = False
            if not held:
                self._lost.set()
                self._wake.set()  # an idle relay stops now, not at its next poll
                return
            self._confirmed_at = started
            self._confirmed.set()

    async def _pause(self, seconds: float) -> None:
        """The relay's back-off, cut short when the lease is lost: a database that went
        away took the lease, and trying for it again (on the wait policy) is due now."""
        await wait_event(self._lost, seconds)

    async def _fence(self) -> None:
        """Returns when publishing is allowed now; raises LeaseLostError once it never will."""
        while True:
            if self._lost.is_set():
                raise LeaseLostError("could not confirm the relay lease")
            if self._confirmed_recently():
                return
            # A slow confirmation (a busy database): pause until it comes or fails.
            self._confirmed.clear()
            await wait_event(self._confirmed, self._timings.confirm_every)

    async def _until(self, moment: float) -> None:
        """Wait until `moment` on the relay's clock, looking again at each confirmation
        (a test moves that clock)."""
        while (left := moment - self._clock()) > 0:
            self._confirmed.clear()
            await wait_event(self._confirmed, left)

    async def _let_go(self) -> None:
        self._relaying = False
        self._holding = False
        confirming, self._confirming = self._confirming, None
        if confirming is not None:
            confirming.cancel()
            await asyncio.gather(confirming, return_exceptions=True)
        # Waits for a confirmation still running in its thread (the lease's lock).
        await asyncio.to_thread(self._lease.release)

    async def _relay(self) -> None:
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            exchange = await channel.declare_exchange(
                EVENTS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
            )
            position = await asyncio.to_thread(self._tracking.max_tracking_id, TRACKING_NAME)
            position = position or 0
            self.published_position = position
            while True:
                await self._fence()
                envelopes, last = await asyncio.to_thread(
                    self._log.read_with_high_water, position, self._section
                )
                if envelopes:
                    traces = await asyncio.to_thread(self._trace_contexts, envelopes)
                    await self._fence()  # the reads may have taken a while
                    await _publish_all(exchange, envelopes, traces)
                    self.published_count += len(envelopes)
                    for e in envelopes:
                        metrics.EVENTS_RELAYED.labels(metrics.event_label(e.event_type)).inc()
                if last > position:
                    await asyncio.to_thread(self._record, last)
                    position = self.published_position = last
                    metrics.RELAY_POSITION.labels(relay="outbox").set(position)
                    self._backoff.succeeded()
                    continue  # there may be more right behind
                self._backoff.succeeded()
                self._wake.clear()
                await wait_event(self._wake, self._idle_poll)
        finally:
            await close_channel(channel)  # the connection is the service's

    def _trace_contexts(self, envelopes: list[EventEnvelope]) -> dict[str, str]:
        """The stored trace contexts of the section's commands; none while tracing is off
        (the query is not even made)."""
        return self._log.trace_contexts(envelopes) if self._tracing else {}

    def _record(self, position: int) -> None:
        try:
            self._tracking.insert_tracking(Tracking(TRACKING_NAME, position))
        except IntegrityError:
            # Another relay (a second instance) recorded it first; both published, and
            # consumers dedupe on event_id.
            log.info("relay position %d was already recorded", position)


async def _publish_all(
    exchange: Any, envelopes: list[EventEnvelope], traces: dict[str, str]
) -> None:
    """A section's publishes, all in flight, then awaited together. When one fails,
    the others are cancelled and awaited too: once this returns or raises, the relay
    publishes nothing more, so a lease released after it can say it stopped."""
    publishes = [
        asyncio.ensure_future(_publish(exchange, e, traces.get(e.correlation_id or "")))
        for e in envelopes
    ]
    try:
        await asyncio.gather(*publishes)
    except BaseException:
        for publish in publishes:
            publish.cancel()
        await asyncio.gather(*publishes, return_exceptions=True)
        raise


async def _publish(exchange: Any, envelope: EventEnvelope, traceparent: str | None) -> None:
    """One event, with a publish span under its command's trace when it has one."""
    with child_span(
        f"{EVENTS_EXCHANGE_NAME} {envelope.event_type} publish",
        traceparent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.destination.name": EVENTS_EXCHANGE_NAME,
            "messaging.rabbitmq.destination.routing_key": envelope.event_type,
            "messaging.message.id": str(envelope.event_id),
        },
    ):
        message = to_message(envelope, current_traceparent() if traceparent else None)
        await exchange.publish(message, routing_key=envelope.event_type)
