"""The batcher works mass invites a slice at a time, between everyone else's commands."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.invitation.application import IncomingCommand
from services.invitation.batcher import Batcher, SlicePace
from shared.contract import COMMANDS, Reply
from shared.retry import RetryPolicy

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.02)


@dataclass
class FakeJob:
    """A mass invite of `slices` slices; `done` counts those worked."""

    command_id: str
    tenant_id: str
    slices: int
    done: int = 0

    @property
    def next_row(self) -> int:
        return self.done


@dataclass
class SlowStore:
    """A service whose every transaction takes a while: it records what each one held
    (the commands' ids, and the mass invite whose slice it decided)."""

    slices: dict[str, int]
    pause: float = 0.005
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def mass_invite_job(self, item: IncomingCommand) -> FakeJob:
        command_id = str(item.command.command_id)
        tenant_id = item.command.tenant_id  # type: ignore[attr-defined]
        return FakeJob(command_id, tenant_id, self.slices[command_id])

    def work(
        self, batch: Sequence[IncomingCommand], job: FakeJob | None, rows: int | None = None
    ) -> tuple[list[Reply], Reply | None]:
        self.started.set()
        time.sleep(self.pause)
        ids = [str(item.command.command_id) for item in batch]
        self.calls.append((ids, None if job is None else job.command_id))
        replies = [Reply.accepted(i, {}) for i in ids]
        if job is None:
            return replies, None
        job.done += 1
        finished = job.done == job.slices
        return replies, Reply.accepted(job.command_id, {"slices": job.done}) if finished else None


def invite(tenant: str) -> IncomingCommand:
    command = COMMANDS["invite_user"](
        command_id=uuid.uuid4(),
        actor="a@example.com",
        tenant_id=tenant,
        email="x@example.com",
        role="user",
    )
    return IncomingCommand("invite_user", command)


def mass_invite(tenant: str) -> IncomingCommand:
    command = COMMANDS["mass_invite"](
        command_id=uuid.uuid4(),
        actor="a@example.com",
        tenant_id=tenant,
        invitees=[{"email": "x@example.com", "role": "user"}],
    )
    return IncomingCommand("mass_invite", command)


async def test_a_single_invite_arriving_during_a_big_mass_invite_is_decided_in_the_next_batch() -> (
    None
):
    big = mass_invite("tenant-a")
    store = SlowStore({str(big.command.command_id): 200})
    batcher = Batcher(store, policy=FAST)  # type: ignore[arg-type]
    batcher.start()
    try:
        big_reply = asyncio.ensure_future(batcher.submit(big))
        await asyncio.to_thread(store.started.wait, 10)
        small = invite("tenant-b")
        reply = await asyncio.wait_for(batcher.submit(small), 10)
        assert reply.status == "accepted"
        assert not big_reply.done()  # the small one did not wait for the big one
        small_id = str(small.command.command_id)
        holding = [i for i, (ids, _) in enumerate(store.calls) if small_id in ids]
        # Decided in the transaction right after the slice in progress, on its own.
        assert holding in ([1], [2])
        assert store.calls[holding[0]] == ([small_id], None)
        finished = await asyncio.wait_for(big_reply, 30)
    finally:
        await batcher.stop()
    assert finished.result == {"slices": 200}


async def test_slices_of_two_tenants_mass_invites_take_turns_and_each_replies_once() -> None:
    a1, a2, b = mass_invite("tenant-a"), mass_invite("tenant-a"), mass_invite("tenant-b")
    ids = {name: str(item.command.command_id) for name, item in (("a1", a1), ("a2", a2), ("b", b))}
    store = SlowStore({ids["a1"]: 4, ids["a2"]: 4, ids["b"]: 4}, pause=0.001)
    batcher = Batcher(store, policy=FAST)  # type: ignore[arg-type]
    store.started.set()
    try:
        # Queued before the batcher runs, so the order of turns is known.
        submitted = [asyncio.ensure_future(batcher.submit(item)) for item in (a1, a2, b)]
        await asyncio.sleep(0)
        batcher.start()
        replies = await asyncio.wait_for(asyncio.gather(*submitted), 10)
    finally:
        await batcher.stop()
    by_id = {value: name for name, value in ids.items()}
    order = [by_id[job] for _, job in store.calls if job is not None]
    # Tenants alternate; within tenant A its two mass invites alternate too.
    assert order[:8] == ["a1", "b", "a2", "b", "a1", "b", "a2", "b"]
    assert order[8:] == ["a1", "a2", "a1", "a2"]
    assert [r.result for r in replies] == [{"slices": 4}] * 3
    assert [r.command_id for r in replies] == [ids["a1"], ids["a2"], ids["b"]]


def test_slices_shrink_to_what_fits_in_their_time_and_grow_back_up_to_the_most() -> None:
    pace = SlicePace(most=500, seconds=0.25)
    pace.observe(100, 1.0)  # 10 ms a row: a loaded machine
    assert pace.rows == 25
    for _ in range(10):
        pace.observe(pace.rows, pace.rows * 0.0001)  # 0.1 ms a row
    assert pace.rows == 500
    pace.observe(500, 500.0)  # a second a row: never below the least
    assert pace.rows == 10
