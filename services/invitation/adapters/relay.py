"""Outbox relay: every stored contract event reaches `invitations.events`, in store order.

The event store is the outbox. The relay reads past its tracking position, publishes a
section with publisher confirms (pipelined: all in flight, then awaited together),
and only then records the new position. A crash anywhere before that record re-sends
the section after restart: duplicates carry the same `message_id` (= event_id), which
consumers already dedupe on; a gap is impossible.

One instance relays at a time (relay_lease.py); another stands by and takes over when
the first stops or dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment
from opentelemetry.trace import SpanKind

from services.invitation import metrics
from services.invitation.adapters.relay_lease import RelayLease, SoleRelay
from services.invitation.eventstore import EventLog, PostgresTrackingRecorderSerialised
from shared.contract import EventEnvelope
from shared.event_message import to_message
from shared.retry import RetryPolicy
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
    """The lease went with its connection and another instance holds it now."""


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
        standby_poll: float = 2.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        """Publishes on a channel of its own on `connection` (the service's one)."""
        self._log = event_log
        self._tracking = tracking
        self._connection = connection
        self._section = section
        self._idle_poll = idle_poll
        self._lease = lease or SoleRelay()
        self._standby_poll = standby_poll
        # Reset by every section relayed (and every idle poll): a relay that worked for
        # an hour and then lost the broker starts again from the first delay.
        self._backoff = (policy or RetryPolicy()).backoff("relay failed", log, traceback=True)
        self.leading = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published_position = 0
        self.published_count = 0
        self._tracing = tracing_enabled()

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
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._backoff.failed(error)

    async def _run(self) -> None:
        standing_by = False
        while True:
            if await asyncio.to_thread(self._lease.acquire):
                break
            self._backoff.succeeded()
            if not standing_by:
                log.info("another instance relays; standing by")
                standing_by = True
            await asyncio.sleep(self._standby_poll)
        self.leading = True
        log.info("relaying: this instance holds the relay lease")
        try:
            await self._relay()
        except LeaseLostError as error:
            log.warning("stopped relaying: %s", error)
        finally:
            self.leading = False
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
                if not await asyncio.to_thread(self._lease.acquire):
                    raise LeaseLostError("another instance took the relay lease")
                envelopes, last = await asyncio.to_thread(
                    self._log.read_with_high_water, position, self._section
                )
                if envelopes:
                    traces = await asyncio.to_thread(self._trace_contexts, envelopes)
                    await asyncio.gather(
                        *(
                            _publish(exchange, e, traces.get(e.correlation_id or ""))
                            for e in envelopes
                        )
                    )
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)
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
