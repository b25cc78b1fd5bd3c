"""Gathers concurrently delivered commands into batches for one transaction each.

Handlers `submit` and await their reply; one task runs batches in a worker thread
(eventsourcing is synchronous). A transient database fault is retried here with the
services' retry policy (shared/retry.py), holding the messages unacknowledged, rather
than bouncing them off the broker: with a short cap, so the batch goes through within
about a second of the database's return, and "waiting on the database" logged every
few seconds meanwhile. After `retry_for` seconds the batch fails and its messages are
nacked (requeued).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from eventsourcing.persistence import InterfaceError, OperationalError

from services.invitation import metrics
from services.invitation.application import IncomingCommand, InvitationService
from shared.contract import Reply
from shared.retry import RetryPolicy

log = logging.getLogger(__name__)
_Pending = tuple[IncomingCommand, asyncio.Future[Reply]]
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
    ) -> None:
        self._service = service
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._retry_for = retry_for
        self._policy = policy or RetryPolicy(max_delay=1.0)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
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
        await self._queue.put((item, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            metrics.BATCH_SIZE.observe(len(batch))
            started = time.perf_counter()
            try:
                replies = await self._handle_with_retry([item for item, _ in batch])
            except Exception as error:  # each submitter re-raises it: the message is nacked
                log.exception("batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            finally:
                metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            self._on_commit()
            for (_, future), reply in zip(batch, replies, strict=True):
                if not future.done():
                    future.set_result(reply)

    async def _handle_with_retry(self, items: list[IncomingCommand]) -> list[Reply]:
        retrying = self._policy.retrying(
            f"waiting on the database: a batch of {len(items)} command(s) is held",
            log,
            retry_on=(OperationalError, InterfaceError),
            give_up_after=self._retry_for,
            log_every=WAITING_LOG_EVERY,
        )
        return await retrying.in_thread(self._service.handle_batch, items)
