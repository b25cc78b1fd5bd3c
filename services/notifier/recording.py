"""Recording email outcomes as soon as they are known: a small group commit.

A sender worker hands in its outcome and waits until it is committed before it starts
its next send. The committer writes whatever outcomes arrived while its previous
transaction ran, in one transaction (no waiting for a batch to fill, no linger). So an
email the SMTP server has accepted stays unrecorded only for about one commit, and at
most one email per SMTP connection is ever in that state: that bounds what a crash can
make the next leader send again.

When the database refuses, the outcomes are kept and tried again (one WARNING per
failed try, with the delay); their workers keep waiting, so no new email is sent while
nothing can be recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from services.notifier.domain.delivery import Outcome
from shared.event_loop import wait_event
from shared.retry import RetryPolicy

log = logging.getLogger(__name__)

# Recording is how a finished email stops counting as in flight: retry it briskly.
_RECORD_RETRY = RetryPolicy(initial_delay=0.1, max_delay=1.0)


class GroupCommit:
    def __init__(
        self,
        record: Callable[[Sequence[Outcome]], None],
        *,
        on_recorded: Callable[[list[Outcome]], None] = lambda _: None,
        policy: RetryPolicy = _RECORD_RETRY,
    ) -> None:
        self._record = record  # blocking: runs in a thread
        self._on_recorded = on_recorded
        self._policy = policy
        self._waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        self._drained = asyncio.Event()  # nothing waits to be recorded
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self._committing = 0  # outcomes in the transaction running now
        self.commits = 0  # transactions that recorded something

    @property
    def unrecorded(self) -> int:
        return len(self._waiting) + self._committing

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier-recorder")

    async def record(self, outcome: Outcome) -> None:
        """Returns once `outcome` is committed. Cancelling the wait does not withdraw it."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        self._arrived.set()
        self._drained.clear()
        await asyncio.shield(done)

    def hand_in(self, outcome: Outcome) -> None:
        """Record without waiting (a released row at a stop)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, done))
        self._arrived.set()
        self._drained.clear()

    async def _run(self) -> None:
        backoff = self._policy.backoff("could not record email outcomes", log)
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            group, self._waiting = self._waiting, []
            if not group:
                continue
            self._committing = len(group)
            try:
                await asyncio.to_thread(self._record, [outcome for outcome, _ in group])
            except Exception as error:
                self._committing = 0
                self._waiting = group + self._waiting
                self._arrived.set()
                await backoff.failed(error)
                continue
            self._committing = 0
            backoff.succeeded()
            self.commits += 1
            for _, done in group:
                if not done.done():
                    done.set_result(None)
            if not self._waiting:
                self._drained.set()
            self._on_recorded([outcome for outcome, _ in group])

    async def stop(self, within: float) -> bool:
        """Record what is waiting (trying for up to `within` seconds); True if all was."""
        if self._task is not None and not self._task.done():
            await wait_event(self._drained, within)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # A transaction cut by the cancel may or may not have committed: a later write
        # of the same outcome changes nothing (recording is fenced by claim).
        left, self._waiting = self._waiting, []
        for _, done in left:
            if not done.done():
                done.cancel()
        cut, self._committing = self._committing, 0
        return not left and not cut
