"""The group commit of email outcomes: recorded as they come, never waiting for a batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from uuid import uuid4

from services.notifier.domain.delivery import Outcome, Sent
from services.notifier.recording import GroupCommit
from tests.support import wait_for


def sent() -> Sent:
    return Sent(uuid4(), "subject", 0.0, attempt=1)


class SlowLedger:
    """Each `record` blocks until the test lets it commit; or fails while `down`."""

    def __init__(self) -> None:
        self.commits: list[list[Outcome]] = []
        self.started = threading.Event()
        self.go = threading.Event()
        self.down = False
        self.tries = 0

    def record(self, outcomes: Sequence[Outcome]) -> None:
        self.tries += 1
        self.started.set()
        self.go.wait(5)
        if self.down:
            raise OSError("database away")
        self.commits.append(list(outcomes))


async def test_an_outcome_is_committed_alone_at_once_and_those_arriving_meanwhile_together_next(
) -> None:  # fmt: skip
    ledger = SlowLedger()
    recorder = GroupCommit(ledger.record)
    recorder.start()
    first = asyncio.create_task(recorder.record(sent()))
    await wait_for(ledger.started.is_set, what="the first commit")
    # Three more arrive while the first commit runs: none of them waits for a batch.
    later = [asyncio.create_task(recorder.record(sent())) for _ in range(3)]
    await asyncio.sleep(0)
    assert not first.done()
    ledger.go.set()
    await asyncio.gather(first, *later)
    assert [len(c) for c in ledger.commits] == [1, 3]
    await recorder.stop(within=1)


async def test_outcomes_the_database_refused_are_kept_and_recorded_once_it_answers() -> None:
    ledger = SlowLedger()
    ledger.down = True
    ledger.go.set()
    recorder = GroupCommit(ledger.record)
    recorder.start()
    waiting = asyncio.create_task(recorder.record(sent()))
    await wait_for(lambda: ledger.tries >= 2, what="a try again")
    assert not waiting.done() and recorder.unrecorded == 1  # its worker sends nothing more
    ledger.down = False
    await asyncio.wait_for(waiting, 5)
    assert [len(c) for c in ledger.commits] == [1]
    assert await recorder.stop(within=1)
