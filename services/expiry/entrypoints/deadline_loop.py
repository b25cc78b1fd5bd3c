"""The service's main loop: rebuild from the event store, then follow it and fire on time.

Why tail the event store rather than consume `invitations.events` from a queue: the
store is the system of record and already totally ordered, so the rebuild at start and
the live follow are one and the same read (`position > last`), with no hand-over
between a replay and a queue, no duplicates or reordering to undo, and no queue that
fills up while the service is down. The price is a cheap indexed query every
`poll_interval` (0.2 s by default): a new deadline is known within that, far inside any
deadline the product allows (hours; seconds in the walkthrough).

Two tasks share one event loop, so the schedule needs no lock: `_follow` reads pages of
the log in a worker thread and applies them here; `_fire` sleeps until the next
deadline (or until woken by a change), pops what is due and publishes it, in deadline
order, with up to `max_in_flight` publishes awaiting their confirms at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from services.expiry.application import CommandSender, EventSource, Expiry
from services.expiry.domain.deadlines import describe
from services.expiry.domain.dispatch import Firing
from services.expiry.metrics import ExpiryMetrics
from shared.contract import EventEnvelope, Reply
from shared.event_loop import wait_event
from shared.retry import Retrying, RetryPolicy, StoppedError

log = logging.getLogger(__name__)

# The longest the fire loop sleeps without looking at the clock: bounds the effect of
# a wall-clock jump (NTP step) on lateness.
MAX_SLEEP = 1.0


class ExpiryRunner:
    def __init__(
        self,
        expiry: Expiry,
        events: EventSource,
        sender: CommandSender,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.2,
        page_size: int = 1000,
        fire_batch: int = 500,
        max_in_flight: int = 256,
        policy: RetryPolicy | None = None,
        metrics: ExpiryMetrics | None = None,
        trace_contexts: Callable[[list[EventEnvelope]], Mapping[str, str]] | None = None,
    ) -> None:
        """`trace_contexts`: the event log's, while tracing (None: off, not queried)."""
        self.expiry = expiry
        self.metrics = metrics or ExpiryMetrics()
        self._trace_contexts = trace_contexts
        self._events = events
        self._sender = sender
        self._clock = clock
        self._poll_interval = poll_interval
        self._page_size = page_size
        self._fire_batch = fire_batch
        self._policy = policy or RetryPolicy()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._sending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()  # set once the rebuild has caught up with the store
        self.fired = 0
        self.max_lateness = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def on_reply(self, reply: Reply) -> None:
        self.expiry.settle(reply, self._clock())
        self._wake.set()  # a retry may now be due earlier than the current sleep

    async def run(self) -> None:
        started = time.monotonic()
        await self._catch_up()
        if self._stopping.is_set():
            return
        log.info(
            "rebuilt %d deadlines (%d contractors) from the event store up to position %d"
            " in %.2f s",
            len(self.expiry.dispatcher),
            self.expiry.timetable.contractors(),
            self.expiry.position,
            time.monotonic() - started,
            extra={"position": self.expiry.position},
        )
        self.ready.set()
        loops = [asyncio.create_task(self._follow()), asyncio.create_task(self._fire())]
        await self._stopping.wait()
        # The loops notice the stop at their next turn; a log read in flight finishes first.
        _, pending = await asyncio.wait(loops, timeout=5.0)
        for task in pending:
            task.cancel()
        if self._sending:
            await asyncio.wait(self._sending, timeout=3.0)

    # -- following the event store -------------------------------------------------------

    async def _read_once(self) -> bool:
        before = self.expiry.position
        envelopes, high_water = await asyncio.to_thread(
            self._events.read_with_high_water, before, self._page_size
        )
        traces = None
        if self._trace_contexts is not None and envelopes:
            traces = await asyncio.to_thread(self._trace_contexts, envelopes)
        if self.expiry.apply(envelopes, high_water, traces):
            self._wake.set()
        return self.expiry.position > before

    def _reading(self) -> Retrying:
        """One read, retried with the services' policy (afresh for each read, so the
        back-off resets after a success); StoppedError once the runner stops."""
        return self._policy.retrying(
            "reading the event store failed",
            log,
            stopping=self._stopping.is_set,
            sleep=self._pause,
            traceback=True,
        )

    async def _catch_up(self) -> None:
        with contextlib.suppress(StoppedError):
            while not self._stopping.is_set():
                if not await self._reading().call(self._read_once):
                    return

    async def _follow(self) -> None:
        with contextlib.suppress(StoppedError):
            while not self._stopping.is_set():
                if not await self._reading().call(self._read_once):
                    await self._pause(self._poll_interval)

    async def _pause(self, seconds: float) -> None:
        await wait_event(self._stopping, seconds)

    # -- firing --------------------------------------------------------------------------

    async def _fire(self) -> None:
        while not self._stopping.is_set():
            try:
                firings = self.expiry.due(self._clock(), self._fire_batch)
                for firing in firings:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._send(firing))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
                if firings:
                    await asyncio.sleep(0)  # let replies and the log follower in
                    continue
                self._wake.clear()
                next_at = self.expiry.next_at()
                delay = MAX_SLEEP if next_at is None else next_at - self._clock()
                if delay > 0:
                    await wait_event(self._wake, min(delay, MAX_SLEEP))
            except Exception:
                log.exception("the fire loop failed; going on")
                await self._pause(1.0)

    async def _send(self, firing: Firing) -> None:
        try:
            await self._sender.send(firing)
        except Exception as error:
            log.warning(
                "sending %s %s failed (%s); will retry",
                firing.name,
                describe(firing.key),
                error or type(error).__name__,
                extra={"command": firing.name},
            )
            self.expiry.send_failed(firing, self._clock())
            self._wake.set()
        else:
            self.fired += 1
            lateness = firing.lateness
            if lateness is not None:
                self.max_lateness = max(self.max_lateness, lateness)
                self.metrics.observe_lateness(firing.name, lateness)
            log.info(
                "sent %s %s (%s)",
                firing.name,
                describe(firing.key),
                "again" if lateness is None else f"{lateness:.3f} s after its deadline",
                extra={"command": firing.name, "correlation_id": str(firing.command.command_id)},
            )
        finally:
            self._slots.release()
