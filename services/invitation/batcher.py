"""Gathers concurrently delivered commands into batches for one transaction each.

Handlers `submit` and await their reply; one task runs batches in a worker thread
(eventsourcing is synchronous). A transient database fault is retried here with
backoff, holding the messages unacknowledged, rather than bouncing them off the broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from eventsourcing.persistence import InterfaceError, OperationalError

from services.invitation.application import IncomingCommand, InvitationService
from shared import metrics
from shared.contract import Reply

log = logging.getLogger(__name__)
_Pending = tuple[IncomingCommand, asyncio.Future[Reply]]


class Batcher:
    def __init__(
        self,
        service: InvitationService,
        *,
        max_batch: int = 256,
        on_commit: Callable[[], None] = lambda: None,
        retry_for: float = 30.0,
    ) -> None:
        self._service = service
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._retry_for = retry_for
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
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
        delay, waited = 0.2, 0.0
        while True:
            try:
                return await asyncio.to_thread(self._service.handle_batch, items)
            except (OperationalError, InterfaceError):
                if waited >= self._retry_for:
                    raise
                log.warning("database unavailable; retrying the batch in %.1fs", delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)
