"""The runner on the real clock: in order, woken by changes, retrying, stopping.

The event log and the broker are fakes here (an in-memory list, a recording sender);
deadlines are a fraction of a second ahead. How late and how fast is measured, not
asserted: bench/deadlines.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.expiry.adapters.commands import RecordingCommandSender
from services.expiry.application import Expiry, Timing
from services.expiry.domain.dispatch import Firing
from services.expiry.entrypoints.deadline_loop import ExpiryRunner
from shared.contract import Reply
from tests.fakes import MemoryLog
from tests.support import wait_for


def accept(firing: Firing) -> Reply:
    return Reply.accepted(str(firing.command.command_id), {})


class Running:
    def __init__(
        self, runner: ExpiryRunner, sender: RecordingCommandSender, task: asyncio.Task[None]
    ) -> None:
        self.runner = runner
        self.sender = sender
        self.task = task


@pytest.fixture
def memory_log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
async def start(memory_log: MemoryLog) -> AsyncIterator[Callable[..., Any]]:
    started: list[Running] = []

    async def run(
        respond: Callable[[Firing], Reply | None] | None = accept, **options: Any
    ) -> Running:
        expiry = Expiry(timing=options.pop("timing", None))
        sender = RecordingCommandSender(respond)
        runner = ExpiryRunner(expiry, memory_log, sender, poll_interval=0.02, **options)
        sender.on_reply = runner.on_reply
        running = Running(runner, sender, asyncio.create_task(runner.run()))
        started.append(running)
        await asyncio.wait_for(runner.ready.wait(), 5)
        return running

    yield run
    for running in started:
        running.runner.stop()
        await asyncio.wait_for(running.task, 10)


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_deadlines_fire_in_deadline_order(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    expected = []
    for i in (3, 1, 2):
        expected.append(
            (i, memory_log.user_invited("acme", f"u{i}@example.com", soon(0.3 + i / 10)))
        )
    running = await start()

    await wait_for(lambda: len(running.sender.sent) == 3, timeout=5, what="three firings")

    order = [str(f.command.model_dump()["invitation_id"]) for f in running.sender.sent]
    assert order == [invitation for _, invitation in sorted(expected)]
    assert all(f.lateness is not None for f in running.sender.sent)  # first sends, not re-sends


async def test_a_deadline_added_while_sleeping_wakes_the_runner(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    memory_log.user_invited("acme", "far@example.com", soon(3600))
    running = await start()
    memory_log.user_invited("acme", "near@example.com", soon(0.2))

    await wait_for(lambda: running.sender.sent, timeout=5, what="the near deadline")

    assert running.sender.sent[0].lateness is not None


async def test_overdue_deadlines_fire_at_start(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    for i in range(20):
        memory_log.user_invited("acme", f"late{i}@example.com", soon(-100 + i))
    running = await start()

    await wait_for(lambda: len(running.sender.sent) == 20, timeout=5, what="all overdue")

    deadlines = [f.deadline for f in running.sender.sent]
    assert deadlines == sorted(deadlines)


async def test_a_failed_send_is_retried(start: Callable[..., Any], memory_log: MemoryLog) -> None:
    memory_log.user_invited("acme", "retry@example.com", soon(0.1))
    running = await start(timing=Timing(send_retry=0.05))
    running.sender.fail_next = 2

    await wait_for(lambda: running.sender.sent, timeout=5, what="the send to succeed")

    assert running.sender.fail_next == 0
    assert len(running.sender.sent) == 1


async def test_an_unanswered_command_is_sent_again_with_the_same_id(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    memory_log.user_invited("acme", "silent@example.com", soon(0.1))
    running = await start(respond=None, timing=Timing(reply_timeout=0.2))

    await wait_for(lambda: len(running.sender.sent) >= 2, timeout=5, what="a re-send")

    first, second = running.sender.sent[:2]
    assert first.command.command_id == second.command.command_id
    assert second.lateness is None


async def test_an_accepted_command_is_not_sent_again(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    memory_log.user_invited("acme", "once@example.com", soon(0.1))
    running = await start(timing=Timing(reply_timeout=0.2))

    await wait_for(lambda: running.sender.sent, timeout=5, what="the firing")

    # Settled: nothing left to send, so no re-send can ever come.
    assert running.runner.expiry.next_at() is None
    assert running.runner.expiry.deadlines() == {}
    assert len(running.sender.sent) == 1


async def test_stop_does_not_wait_for_a_far_deadline(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    memory_log.user_invited("acme", "far@example.com", soon(3600))
    running = await start()

    running.runner.stop()

    await asyncio.wait_for(running.task, 5)  # not the hour to the deadline
    assert running.sender.sent == []


async def test_lateness_is_observed_once_per_deadline_not_per_resend(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    for i in range(5):
        memory_log.user_invited("acme", f"late{i}@example.com", soon(-10 - i))
    running = await start(respond=None, timing=Timing(reply_timeout=0.1))

    await wait_for(lambda: len(running.sender.sent) >= 10, timeout=5, what="the re-sends")

    registry = running.runner.metrics.registry
    labels = {"kind": "lapse_invitation"}
    assert registry.get_sample_value("expiry_deadline_lateness_seconds_count", labels) == 5
    # Each was at least 10 s late: none falls within the 1 s target's bucket.
    assert (
        registry.get_sample_value(
            "expiry_deadline_lateness_seconds_bucket", {**labels, "le": "1.0"}
        )
        == 0
    )
