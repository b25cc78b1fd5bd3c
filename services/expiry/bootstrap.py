"""The one place that wires the expiry service: settings -> event log, broker, runner."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from services.expiry.adapters.commands import AmqpCommandSender
from services.expiry.application import Expiry, Timing
from services.expiry.domain.timetable import EVENT_TYPES
from services.expiry.entrypoints.runner import ExpiryRunner
from services.expiry.settings import ExpirySettings
from services.invitation.eventstore import EventLog
from shared import metrics
from shared.contract import Reply
from shared.ops_http import NotReadyError, OpsServer, blocking, start_ops_http

log = logging.getLogger(__name__)


async def serve(settings: ExpirySettings) -> None:
    """Run until SIGTERM/SIGINT; then stop within a few seconds."""
    expiry = Expiry(timing=Timing(reply_timeout=settings.expiry_reply_timeout))
    runner: ExpiryRunner | None = None

    def on_reply(reply: Reply) -> None:
        if runner is not None:
            runner.on_reply(reply)

    sender = AmqpCommandSender(
        settings.amqp_url, on_reply=on_reply, exchange_name=settings.expiry_commands_exchange
    )
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        if runner is not None:
            runner.stop()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)

    if not await _retrying(sender.start, stopping, "the broker"):
        return
    event_log: EventLog | None = None

    async def open_event_log() -> None:
        nonlocal event_log
        event_log = await asyncio.to_thread(
            lambda: EventLog(settings.database_url, event_types=EVENT_TYPES)
        )

    if not await _retrying(open_event_log, stopping, "the event store"):
        await sender.close()
        return
    assert event_log is not None
    runner = ExpiryRunner(
        expiry,
        event_log,
        sender,
        poll_interval=settings.expiry_poll_interval,
        max_in_flight=settings.expiry_max_in_flight,
    )
    if stopping.is_set():
        runner.stop()
    freezing = asyncio.create_task(_freeze_after_rebuild(runner))
    ops = await _start_ops_http(settings.http_port, runner, sender, event_log)
    try:
        await runner.run()
    finally:
        freezing.cancel()
        if ops is not None:
            await ops.stop()
        await sender.close()
        await asyncio.to_thread(event_log.close)
        log.info("stopped")


async def _start_ops_http(
    port: int, runner: ExpiryRunner, sender: AmqpCommandSender, event_log: EventLog
) -> OpsServer | None:
    """/healthz, /readyz (broker, database, schedule rebuilt) and /metrics on `port`."""

    async def broker() -> None:
        if not sender.connected:
            raise NotReadyError("not connected")

    async def schedule() -> None:
        if not runner.ready.is_set():
            raise NotReadyError("rebuilding from the event store")

    async def sample_deadlines() -> None:
        metrics.record_deadlines(runner.expiry.census(time.time()))

    return await start_ops_http(
        port,
        checks={
            "broker": broker,
            "database": blocking(event_log.max_position),
            "schedule": schedule,
        },
        before_scrape=[sample_deadlines],
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


async def _retrying(
    start: Callable[[], Awaitable[None]], stopping: asyncio.Event, what: str
) -> bool:
    """Run `start` until it succeeds (the dependency may come up after us); False on stop."""
    delay = 0.5
    while not stopping.is_set():
        try:
            await start()
            return True
        except Exception as error:
            log.warning("%s unreachable (%s); retrying in %.1f s", what, error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            delay = min(delay * 2, 10.0)
    return False
