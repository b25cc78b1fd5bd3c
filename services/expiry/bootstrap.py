"""The one place that wires the expiry service: settings -> event log, broker, runner."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from functools import partial

from aio_pika.abc import AbstractRobustConnection
from prometheus_client import REGISTRY

from services.expiry.adapters.commands import AmqpCommandSender
from services.expiry.application import Expiry, Timing
from services.expiry.domain.timetable import EVENT_TYPES
from services.expiry.entrypoints.deadline_loop import ExpiryRunner
from services.expiry.metrics import ExpiryMetrics
from services.expiry.settings import ExpirySettings
from services.invitation.eventstore import EventLog
from shared.contract import Reply
from shared.ops_http import NotReadyError
from shared.senders import broker_user
from shared.service import Service, service_broker
from shared.telemetry import tracing_enabled


@dataclass
class Runtime:
    runner: ExpiryRunner
    sender: AmqpCommandSender
    event_log: EventLog
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.sender.start()
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self.runner.run(), name="expiry-runner"),
                asyncio.create_task(_freeze_after_rebuild(self.runner)),
            ]

    async def stop(self) -> None:
        self.runner.stop()
        if self._tasks:
            running, freezing = self._tasks
            freezing.cancel()
            # The runner finishes a log read in flight and waits for sends in flight.
            await asyncio.gather(running, freezing, return_exceptions=True)
        await self.sender.close()

    def close(self) -> None:
        self.event_log.close()


def open_runtime(
    settings: ExpirySettings, metrics: ExpiryMetrics, connection: AbstractRobustConnection
) -> Runtime:
    """Opens the event log (blocking: the skeleton calls it in a thread once PostgreSQL answers)."""
    expiry = Expiry(timing=Timing(reply_timeout=settings.expiry_reply_timeout))
    runner: ExpiryRunner | None = None

    def on_reply(reply: Reply) -> None:
        if runner is not None:
            runner.on_reply(reply)

    sender = AmqpCommandSender(
        connection,
        user_id=broker_user(settings.amqp_url),
        on_reply=on_reply,
        exchange_name=settings.expiry_commands_exchange,
    )
    event_log = EventLog(settings.database_url, event_types=EVENT_TYPES)
    runner = ExpiryRunner(
        expiry,
        event_log,
        sender,
        poll_interval=settings.expiry_poll_interval,
        max_in_flight=settings.expiry_max_in_flight,
        policy=settings.retry_policy,
        metrics=metrics,
        trace_contexts=event_log.trace_contexts if tracing_enabled() else None,
    )
    return Runtime(runner, sender, event_log)


def build_service(settings: ExpirySettings) -> Service[Runtime]:
    """Nothing connects until `run()` (no I/O here)."""
    # The broker is the expiry service's connection; it sends with aio-pika directly
    # (adapters/commands.py: hundreds of commands in flight at once).
    broker = service_broker(settings, "expiry")
    metrics = ExpiryMetrics()

    async def schedule(runtime: Runtime) -> None:
        if not runtime.runner.ready.is_set():
            raise NotReadyError("rebuilding from the event store")

    async def sample_deadlines(runtime: Runtime) -> None:
        metrics.record_deadlines(runtime.runner.expiry.census(time.time()))

    return Service(
        "expiry",
        settings,
        broker,
        partial(open_runtime, settings, metrics),
        database=lambda runtime: asyncio.to_thread(runtime.event_log.max_position),
        checks={"schedule": schedule},
        before_scrape=[sample_deadlines],
        # prometheus_client's default registry holds only its process collectors.
        registries=(REGISTRY, metrics.registry),
    )


async def _freeze_after_rebuild(runner: ExpiryRunner) -> None:
    """Move what the rebuild made out of the garbage collector's sight.

    The schedule is mostly untracked tuples already (see domain/deadlines.py), but its
    big list and dicts would still be walked by every full collection; frozen, a full
    collection costs the same with a million deadlines as with none.
    """
    await runner.ready.wait()
    gc.collect()
    gc.freeze()
