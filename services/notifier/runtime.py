"""The running notifier: one leader that plans and sends, woken by the events queue.

Only one notifier process plans and sends at a time (a PostgreSQL advisory lock held
for the life of the process; a second one waits as a standby and takes over when the
first dies). So a row found `sending` at start-up was left by a dead process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from services.notifier.adapters.ledger import EmailLedger
from services.notifier.delivery_reports import DeliveryReports
from services.notifier.metrics import Metrics
from services.notifier.planner import Planner
from services.notifier.sender import DeliveryEngine
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
        poll_interval: float = 1.0,
        standby_poll: float = 2.0,
        on_close: Callable[[], None] = lambda: None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.planner = planner
        self.engine = engine
        self.reports = reports
        self.metrics = metrics
        self._poll = poll_interval
        self._standby_poll = standby_poll
        self._on_close = on_close
        self._policy = policy or RetryPolicy()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()  # cuts a retry's wait short; wake-ups do not
        self._stopping = False
        self._leading = False
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self._leading

    def wake(self) -> None:
        """An event was published: plan now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notifier")

    def _retrying(self, what: str) -> Retrying:
        """The services' retry policy, given up (StoppedError) once the notifier stops."""
        return self._policy.retrying(
            what, log, stopping=lambda: self._stopping, sleep=self._until_stopped, traceback=True
        )

    async def _run(self) -> None:
        try:
            await self._lead()
        except StoppedError:
            return

    async def _lead(self) -> None:
        # A database that refuses us at start-up (down, or out of connections) must
        # not kill this task: the process would live on, acking wake-ups, sending
        # nothing. So take the lead and reclaim with retries, like planning does.
        leading = self._retrying("could not reach the database to lead")
        while not await leading.in_thread(self.store.try_lead):
            log.info("another notifier is running; standing by")
            await self._sleep(self._standby_poll)
            if self._stopping:
                return
        self._leading = True
        log.info("notifier leading: planning from the event store and sending")
        reclaimed = await self._reclaim_interrupted()
        if reclaimed:
            log.warning(
                "%d email(s) were being sent when the last notifier stopped; sending them "
                "again with the same Message-ID",
                reclaimed,
            )
        self.engine.start()
        self.reports.start()
        await self._plan_loop()

    async def _reclaim_interrupted(self) -> int:
        reclaiming = self._retrying("could not reclaim interrupted emails")
        return await reclaiming.in_thread(self.store.reclaim_interrupted)

    async def _plan_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            # A fresh retry per pass: the back-off starts from its first delay again.
            report = await self._retrying("planning failed").in_thread(
                self.planner.plan_available, lambda: self._stopping
            )
            if report.events:
                self.metrics.events_planned.inc(report.events)
                self.metrics.emails_planned.inc(report.emails)
                self.metrics.position.set(report.position)
                log.debug("planned %d events, %d emails", report.events, report.emails)
            if report.emails:
                self.engine.wake()
            await self._sleep(self._poll)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _until_stopped(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

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
        if self._leading:
            await self.engine.stop(grace=grace)
            await self.reports.stop(grace=grace / 2)

    def close(self) -> None:
        self.store.close()
        self._on_close()
