"""The runner on the real clock: on time, in order, woken by changes, retrying, stopping.

The event log and the broker are fakes here (an in-memory list, a recording sender);
deadlines are a fraction of a second ahead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.expiry.adapters.commands import RecordingCommandSender
from services.expiry.application import Expiry, Timing
from services.expiry.domain.dispatch import Firing
from services.expiry.entrypoints.runner import ExpiryRunner
from shared.contract import EventEnvelope, Reply
from tests.support import wait_for


class MemoryLog:
    """An event log in memory, read like EventLog (sparse positions, high water)."""

    def __init__(self) -> None:
        self.envelopes: list[EventEnvelope] = []
        self.position = 0

    def read_with_high_water(
        self, after: int = 0, limit: int = 1000
    ) -> tuple[list[EventEnvelope], int]:
        page = [e for e in self.envelopes if e.position > after][:limit]
        return page, (page[-1].position if page else after)

    def user_invited(self, tenant: str, email: str, link_expires_at: datetime) -> str:
        invitation_id = str(uuid4())
        self.add(
            "UserInvited",
            tenant,
            invitation_id=invitation_id,
            email=email,
            role="user",
            access_expires_at=None,
            invitation_expires_at=link_expires_at.isoformat(),
            invited_by="admin@example.com",
            batch_id=None,
            display_name=None,
        )
        return invitation_id

    def add(self, event_type: str, tenant: str, **data: Any) -> None:
        self.position += 2
        self.envelopes.append(
            EventEnvelope(
                event_id=uuid4(),
                event_type=event_type,
                occurred_at=datetime.now(UTC),
                position=self.position,
                tenant_id=tenant,
                aggregate_id=uuid4(),
                aggregate_version=1,
                correlation_id=None,
                actor="admin@example.com",
                data=data,
            )
        )


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


async def test_deadlines_fire_on_time_in_deadline_order(
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
    assert all(f.lateness is not None and f.lateness < 0.5 for f in running.sender.sent)
    assert running.runner.max_lateness < 0.5


async def test_a_deadline_added_while_sleeping_wakes_the_runner(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    memory_log.user_invited("acme", "far@example.com", soon(3600))
    running = await start()
    memory_log.user_invited("acme", "near@example.com", soon(0.2))

    await wait_for(lambda: running.sender.sent, timeout=5, what="the near deadline")

    assert running.sender.sent[0].lateness is not None
    assert running.sender.sent[0].lateness < 0.5


async def test_overdue_deadlines_fire_at_start(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    for i in range(20):
        memory_log.user_invited("acme", f"late{i}@example.com", soon(-100 + i))
    began = time.monotonic()
    running = await start()

    await wait_for(lambda: len(running.sender.sent) == 20, timeout=5, what="all overdue")

    assert time.monotonic() - began < 3
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


async def test_stop_is_prompt_even_while_waiting_for_a_far_deadline(
    start: Callable[..., Any], memory_log: MemoryLog
) -> None:
    memory_log.user_invited("acme", "far@example.com", soon(3600))
    running = await start()

    began = time.monotonic()
    running.runner.stop()
    await asyncio.wait_for(running.task, 5)

    assert time.monotonic() - began < 2
