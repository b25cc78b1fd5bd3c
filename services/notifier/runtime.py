"""The running notifier: one leader that plans and sends, woken by the events queue.

Only one notifier plans and sends at a time (leadership.py: a lease fenced by time).
The others stand by: each polls for the lease on its own timer, on one connection,
says "standing by" once, and never touches the database because of a wake-up.

    standing by --lease taken--> waiting out the last leader's fence --> leading
        ^                        (cut short once it says it stopped)       |
        +---- lease lost: stop sending and planning, record what was sent, -+
              then say so (the next leader need not wait out our fence)

So a row found `sending` when a leader starts was left by a notifier that has stopped
sending: it is sent again (same Message-ID).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from services.notifier.adapters.ledger import EmailLedger
from services.notifier.delivery_reports import DeliveryReports
from services.notifier.leadership import Fence, Lease, SoleLease, fence_holds_for
from services.notifier.metrics import Metrics
from services.notifier.planner import Planner
from services.notifier.sender import DeliveryEngine
from shared.event_loop import wait_event
from shared.retry import Retrying, RetryPolicy, StoppedError

log = logging.getLogger(__name__)


class NotifierRuntime:
    def __init__(
        self,
        store: EmailLedger,
        planner: Planner,
        engine: DeliveryEngine,
        reports: DeliveryReports,
        *,
        metrics: Metrics,
        lease: Lease | None = None,
        lease_ttl: float = 3.0,
        transfer_timeout: float = 10.0,
        poll_interval: float = 1.0,
        standby_poll: float = 0.5,
        on_close: Callable[[], None] = lambda: None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.planner = planner
        self.engine = engine
        self.reports = reports
        self.metrics = metrics
        self.lease = lease or SoleLease()
        self.fence = Fence(lease_ttl, clock)
        engine.may_send = self.fence.valid
        self._clock = clock
        self._confirm_every = lease_ttl / 3
        self._transfer_timeout = transfer_timeout
        self._poll = poll_interval
        self._standby_poll = standby_poll
        self._on_close = on_close
        self._policy = policy or RetryPolicy()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()  # cuts a wait short; wake-ups do not
        self._stopping = False
        self._deposed = False
        self._deposal = asyncio.Event()
        self._leading = False
        self._sending = False  # the engine and the reports run
        self._task: asyncio.Task[None] | None = None
        metrics.leading.set(0)

    @property
    def leading(self) -> bool:
        return self._leading

    def wake(self) -> None:
        """An event was published: plan now rather than at the next poll (leader only:
        a standby's timer is its own)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notifier")

    def _retrying(self, what: str) -> Retrying:
        """The services' retry policy, given up (StoppedError) once stopping or deposed."""
        return self._policy.retrying(
            what,
            log,
            stopping=lambda: self._stopping or self._deposed,
            sleep=self._until_stopped,
            traceback=True,
        )

    async def _run(self) -> None:
        while not self._stopping:
            wait = await self._stand_by()
            if wait is None:
                return
            await self._lead(wait)

    # -- standing by -------------------------------------------------------------------

    async def _stand_by(self) -> float | None:
        """Poll for the lease until it is ours: the seconds to wait then (None: stopping)."""
        announced = False
        backoff = self._policy.backoff(
            "could not reach the database to take the notifier lease",
            log,
            sleep=self._until_stopped,
        )
        while not self._stopping:
            began = self._clock()
            try:
                wait = await asyncio.to_thread(self.lease.acquire)
            except Exception as error:
                await backoff.failed(error)
                continue
            backoff.succeeded()
            if wait is not None:
                self.fence.confirmed(began)
                return wait
            if not announced:
                log.info("another notifier leads; standing by")
                announced = True
            await self._until_stopped(self._standby_poll)
        return None

    # -- leading -----------------------------------------------------------------------

    async def _lead(self, wait: float) -> None:
        self._deposed = False
        self._deposal.clear()
        if not await self._wait_out_fence(wait):
            await self._release()
            return
        confirming = asyncio.create_task(self._keep_confirming(), name="notifier-lease")
        try:
            self._set_leading(True)
            log.info("notifier leading: planning from the event store and sending")
            reclaimed = await self._retrying("could not reclaim interrupted emails").in_thread(
                self.store.reclaim_interrupted
            )
            if reclaimed:
                log.warning(
                    "%d email(s) were being sent when the last leader stopped; sending them "
                    "again with the same Message-ID",
                    reclaimed,
                )
            self.engine.start()
            self.reports.start()
            self._sending = True
            # Planning may be stuck in a thread waiting on the database: a lost lease
            # must not wait for it (its transaction commits whole or not at all).
            planning = asyncio.create_task(self._plan_loop(), name="notifier-planning")
            deposed = asyncio.create_task(self._deposal.wait())
            try:
                await asyncio.wait({planning, deposed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (planning, deposed):
                    task.cancel()
                outcome, _ = await asyncio.gather(planning, deposed, return_exceptions=True)
            if isinstance(outcome, Exception) and not isinstance(outcome, StoppedError):
                raise outcome
        except StoppedError:
            pass
        finally:
            confirming.cancel()
            await asyncio.gather(confirming, return_exceptions=True)
        if not self._stopping:
            await self._step_down()

    async def _wait_out_fence(self, wait: float) -> bool:
        """Until the last leader's sends are surely over, confirming our lease meanwhile:
        the whole `wait`, or less once the last leader says it stopped sending."""
        if wait <= 0:
            return True
        log.info("took the notifier lease; waiting %.1fs for the last leader's sends to end", wait)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        confirm_at = loop.time() + self._confirm_every
        # The last leader's report is read twice as often as a standby polls (a query
        # a quarter of a second by default, only while a fence is waited out).
        step = min(self._confirm_every, self._standby_poll) / 2
        while (left := deadline - loop.time()) > 0:
            await self._until_stopped(min(step, left))
            if self._stopping:
                return False
            if loop.time() >= confirm_at or loop.time() >= deadline:
                if not await self._confirm():
                    return False
                confirm_at = loop.time() + self._confirm_every
            if loop.time() < deadline and await self._fence_left() <= 0:
                log.info("the last leader's sends are over (it said so); leading now")
                return True
        return True

    async def _fence_left(self) -> float:
        """The last leader's fence as the database sees it; unknown counts as not over."""
        try:
            return await asyncio.to_thread(self.lease.fence_left)
        except Exception as error:
            log.warning("could not read the last leader's fence: %s", error)
            return math.inf

    async def _keep_confirming(self) -> None:
        while True:
            await asyncio.sleep(self._confirm_every)
            if not await self._confirm():
                self._depose()
                return

    async def _confirm(self) -> bool:
        """Confirm the lease; False once lost, or once the fence lapsed while waiting."""
        began = self._clock()
        confirming = asyncio.ensure_future(asyncio.to_thread(self.lease.confirm))
        step = max(0.01, self.fence.ttl / 30)
        while not confirming.done():
            await asyncio.wait({confirming}, timeout=step)
            if not confirming.done() and not self.fence.valid():
                log.warning("the notifier lease could not be confirmed in time")
                return False  # the thread ends with its connection's timeouts
        try:
            held = confirming.result()
        except Exception as error:
            log.warning("could not confirm the notifier lease: %s", error)
            return False
        if held:
            self.fence.confirmed(began)
        return held

    def _depose(self) -> None:
        self._deposed = True
        self.fence.lift()  # nothing more is sent or claimed, from now on
        self._set_leading(False)
        self._deposal.set()
        self._wake.set()

    async def _plan_loop(self) -> None:
        loop = asyncio.get_running_loop()

        def emails_planned() -> None:
            # Each batch's emails go out as soon as it commits, not after the whole
            # backlog (planning runs in a thread; the engine lives on the loop).
            loop.call_soon_threadsafe(self.engine.wake)

        while not self._stopping and not self._deposed:
            self._wake.clear()
            if not self.fence.valid():
                self._depose()
                return
            # A fresh retry per pass: the back-off starts from its first delay again.
            report = await self._retrying("planning failed").in_thread(
                self.planner.plan_available,
                lambda: self._stopping or self._deposed,
                emails_planned,
            )
            if report.events:
                self.metrics.events_planned.inc(report.events)
                self.metrics.emails_planned.inc(report.emails)
                self.metrics.position.set(report.position)
                log.debug("planned %d events, %d emails", report.events, report.emails)
            if report.emails:
                self.engine.wake()
            await self._sleep(self._poll)

    async def _step_down(self) -> None:
        """Lost the lease: stop at once, record the outcomes we have, say so (only
        then: the next leader starts on it), then stand by."""
        self._set_leading(False)
        log.warning(
            "lost the notifier lease: stopped sending and planning; recording the outcomes "
            "of emails already sent, then standing by"
        )
        # The fence was lifted: a transfer under way ends within its timeout (then its
        # outcome is recorded); an envelope still being prepared delivers nothing, and
        # its row, left `sending`, goes to the next leader.
        await self._stop_sending(
            grace=self._transfer_timeout + 1.0, record_within=self._holds_for()
        )
        await self._release()

    def _holds_for(self) -> float:
        # Past this the next leader reclaims the rows anyway (leadership.py).
        return fence_holds_for(self.fence.ttl, self._transfer_timeout)

    async def _stop_sending(self, grace: float, record_within: float) -> None:
        if self._sending:
            self._sending = False
            await self.engine.stop(grace=grace, record_within=record_within)
            await self.reports.stop(grace=min(grace, 2.0) / 2)

    async def _release(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.lease.release, stopped_sending=True)

    def _set_leading(self, leading: bool) -> None:
        self._leading = leading
        self.metrics.leading.set(1 if leading else 0)

    # -- waiting and stopping ------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        await wait_event(self._wake, seconds)

    async def _until_stopped(self, seconds: float) -> None:
        await wait_event(self._stopped, seconds)

    async def stop(self, grace: float = 2.0) -> None:
        """Finish the planning batch in progress, in-flight emails, and reports.

        Each step gets `grace` seconds, so the whole stop fits the contract's 10 s.
        """
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            # Planning runs in a thread: let the batch in progress commit, do not cut it.
            done, _ = await asyncio.wait({self._task}, timeout=grace)
            if not done:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        self._set_leading(False)
        await self._stop_sending(grace=grace, record_within=grace)
        # Every send has ended: the next leader need not wait for ours.
        await self._release()

    def close(self) -> None:
        self.store.close()
        self._on_close()
