"""Gathers concurrently delivered commands into batches for one transaction each.

Handlers `submit` and await their reply; one task runs batches in a worker thread
(eventsourcing is synchronous). A mass invite is not one item of a batch but a job
worked a slice at a time: each batch takes the commands waiting (up to `max_batch`)
and one slice of the next mass invite in turn, round-robin over tenants and then over
each tenant's mass invites. So a single command waits for at most the batch in
progress, whatever mass invites are queued, and one tenant's mass invites share the
service with another's instead of queueing it behind them. Its handler gets the mass
invite's reply, once, when its last slice is stored.

A transient database fault is retried here with the services' retry policy
(shared/retry.py), holding the messages unacknowledged, rather than bouncing them off
the broker: with a short cap, so the batch goes through within about a second of the
database's return, and "waiting on the database" logged every few seconds meanwhile.
After `retry_for` seconds the batch fails and its messages are nacked (requeued).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from eventsourcing.persistence import InterfaceError, OperationalError

from services.invitation import metrics
from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.application.mass_invites import MassInviteJob
from shared.contract import MassInvite, Reply
from shared.retry import RetryPolicy

log = logging.getLogger(__name__)
_Pending = tuple[IncomingCommand, asyncio.Future[Reply]]
_Job = tuple[MassInviteJob, asyncio.Future[Reply]]
# A waiting batch retries about once a second; one line every few seconds says so.
WAITING_LOG_EVERY = 3.0


class Batcher:
    def __init__(
        self,
        service: InvitationService,
        *,
        max_batch: int = 256,
        on_commit: Callable[[], None] = lambda: None,
        retry_for: float = 30.0,
        policy: RetryPolicy | None = None,
        slice_rows: int = 500,
        slice_seconds: float = 0.25,
    ) -> None:
        self._service = service
        self._pace = SlicePace(slice_rows, slice_seconds)
        self._sliced_last = False
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._retry_for = retry_for
        self._policy = policy or RetryPolicy(max_delay=1.0)
        self._queue: deque[_Pending] = deque()
        # Mass invites being worked: per tenant, in turn (the tenant whose slice is next
        # first), each tenant's own in turn too.
        self._jobs: OrderedDict[str, deque[_Job]] = OrderedDict()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="command-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, item: IncomingCommand) -> Reply:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if isinstance(item.command, MassInvite):
            job = self._service.mass_invite_job(item)
            self._jobs.setdefault(job.tenant_id, deque()).append((job, future))
        else:
            self._queue.append((item, future))
        self._ready.set()
        return await future

    def _next_job(self) -> _Job | None:
        """The mass invite whose slice is next, turned to the back of both queues. One
        whose handler is gone (cancelled at shutdown) is dropped: its message returns
        to the broker, and its redelivery resumes after the slices stored."""
        while self._jobs:
            tenant, jobs = self._jobs.popitem(last=False)
            pending = jobs[0]
            jobs.rotate(-1)
            self._jobs[tenant] = jobs
            if not pending[1].done():
                return pending
            self._finish(pending)
        return None

    def _finish(self, pending: _Job) -> None:
        job = pending[0]
        jobs = self._jobs.get(job.tenant_id)
        if jobs is not None and pending in jobs:
            jobs.remove(pending)
            if not jobs:
                del self._jobs[job.tenant_id]

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
            # Commands that came in during a slice go first, on their own: they wait for
            # at most one slice, and the mass invites still get every other batch.
            pending = None if batch and self._sliced_last else self._next_job()
            self._sliced_last = pending is not None
            if not batch and pending is None:
                self._ready.clear()
                continue
            metrics.BATCH_SIZE.observe(len(batch))
            started = time.perf_counter()
            job = None if pending is None else pending[0]
            rows_before = 0 if job is None else job.next_row
            try:
                replies, finished = await self._handle_with_retry([i for i, _ in batch], job)
            except Exception as error:  # each submitter re-raises it: the message is nacked
                log.exception("batch of %d failed", len(batch) + (job is not None))
                for _, future in [*batch, *([] if pending is None else [pending])]:
                    if not future.done():
                        future.set_exception(error)
                if pending is not None:
                    self._finish(pending)
                continue
            finally:
                metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            self._on_commit()
            if job is not None and finished is None:
                self._pace.observe(job.next_row - rows_before, time.perf_counter() - started)
            for (_, future), reply in zip(batch, replies, strict=True):
                if not future.done():
                    future.set_result(reply)
            if pending is not None and finished is not None:
                self._finish(pending)
                if not pending[1].done():
                    pending[1].set_result(finished)

    async def _handle_with_retry(
        self, items: list[IncomingCommand], job: MassInviteJob | None
    ) -> tuple[list[Reply], Reply | None]:
        held = len(items) + (job is not None)
        retrying = self._policy.retrying(
            f"waiting on the database: a batch of {held} command(s) is held",
            log,
            retry_on=(OperationalError, InterfaceError),
            give_up_after=self._retry_for,
            log_every=WAITING_LOG_EVERY,
        )
        rows = self._pace.rows
        return await retrying.in_thread(self._service.work, items, job, rows)


class SlicePace:
    """How many rows of a mass invite the next slice holds: as many as the last slices'
    pace fits in `seconds` (what a command arriving meanwhile may wait), between `least`
    and `most`. A row's cost varies tenfold with the machine's load (a slow hash on a
    shared core), so a fixed count would be either slow under load or wasteful when
    quiet (each transaction costs ~25 ms on its own)."""

    def __init__(self, most: int, seconds: float, least: int = 10) -> None:
        self._most, self._seconds, self._least = most, seconds, min(least, most)
        self.rows = min(most, 100)
        self._per_row: float | None = None

    def observe(self, rows: int, elapsed: float) -> None:
        if rows <= 0:
            return
        per_row = elapsed / rows
        self._per_row = per_row if self._per_row is None else (self._per_row + per_row) / 2
        self.rows = max(self._least, min(self._most, int(self._seconds / self._per_row)))
