"""Single invites per second end to end, beside a naive pipeline and pgbench, in one run.

How `e2e_invites_per_s` is computed: the real `python -m services.invitation` and
`python -m services.notifier` run on a fresh schema and vhost, with the SMTP sink in its
own process. A closed loop keeps `IN_FLIGHT` invites outstanding: each slot publishes
an `invite_user` (a new email, one of 16 tenants) and publishes the next only when the
previous one has completed all four stages (reply received, `UserInvited` seen on
`invitations.events`, invitation email accepted by the sink; see bench/invites.py).
After a warm-up, the rate is the number of invites that *completed* during the window
divided by the window's length (60 s; quick: 2 s). So a pipeline that answered fast but
let emails pile up would not score: only finished invites count, and the loop cannot
run ahead of the slowest stage by more than `IN_FLIGHT`.

`naive_invites_per_s` is the same loop (`NAIVE_IN_FLIGHT` outstanding) and count over
bench/naive.py (15 s; quick 2 s), and `pgbench_commits_per_s` PostgreSQL's
single-client commit rate (bench/pgbench.py, 10 s; quick 1 s), all measured in the same
run, one after the other, so the ratios compare like with like on this shared machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from bench.core import Figure, Scale, Suite
from bench.invites import InviteTracker
from bench.naive import naive_stack
from bench.pgbench import single_client_commits_per_s
from bench.services import Stack, running_stack

# Enough outstanding invites to keep the service's batches (up to 256) full; more only
# lengthens the queues. The naive pipeline handles one message at a time, so a few
# dozen keep it busy, and more would only push its invites towards the timeout.
IN_FLIGHT = 500
NAIVE_IN_FLIGHT = 50
IN_FLIGHT_QUICK = 100
INVITE_TIMEOUT = 120.0


async def closed_loop_rate(stack: Stack, *, in_flight: int, warmup: float, window: float) -> float:
    """Invites completed per second during `window`, after `warmup` (see the docstring)."""
    async with InviteTracker(stack.amqp_url, stack.sink) as tracker:
        stopping = False

        async def slot() -> None:
            while not stopping:
                invite = tracker.new()
                await tracker.publish(invite)
                await asyncio.wait_for(asyncio.shield(invite.done), INVITE_TIMEOUT)

        slots = [asyncio.create_task(slot()) for _ in range(in_flight)]
        try:
            await _sleep_watching(warmup, slots, stack)
            before, started = tracker.completed, time.monotonic()
            await _sleep_watching(window, slots, stack)
            completed, elapsed = tracker.completed - before, time.monotonic() - started
        finally:
            stopping = True
            for task in slots:
                task.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
        if tracker.failures:
            raise RuntimeError(f"{len(tracker.failures)} invites refused: {tracker.failures[:3]}")
        return completed / elapsed


async def _sleep_watching(seconds: float, slots: list[asyncio.Task[None]], stack: Stack) -> None:
    """Sleep, but fail at once if a slot failed (timeout, refusal) or a service died."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.5))
        stack.check_running()
        for task in slots:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError("an invite did not complete") from task.exception()


async def measure(
    start: Callable[[], AbstractAsyncContextManager[Stack]],
    *,
    in_flight: int,
    warmup: float,
    window: float,
) -> float:
    async with start() as stack:
        return await closed_loop_rate(stack, in_flight=in_flight, warmup=warmup, window=window)


@contextlib.asynccontextmanager
async def _real() -> AsyncIterator[Stack]:
    async with running_stack() as stack:
        yield stack


async def run(scale: Scale) -> dict[str, float]:
    # pgbench first, on an otherwise idle stack: the machine's own commit rate.
    pgbench = await single_client_commits_per_s(int(scale.seconds(10, 1)))
    in_flight = scale.pick(IN_FLIGHT, IN_FLIGHT_QUICK)
    e2e = await measure(
        _real,
        in_flight=in_flight,
        warmup=scale.seconds(5, 0.5),
        window=scale.seconds(60, 2),
    )
    naive = await measure(
        naive_stack,
        in_flight=scale.pick(NAIVE_IN_FLIGHT, IN_FLIGHT_QUICK),
        warmup=scale.seconds(3, 0.5),
        window=scale.seconds(15, 2),
    )
    return {
        "e2e_invites_per_s": e2e,
        "naive_invites_per_s": naive,
        "ratio_to_naive": e2e / naive,
        "pgbench_commits_per_s": pgbench,
        "ratio_to_pgbench": e2e / pgbench,
    }


SUITE = Suite(
    "throughput",
    (
        Figure("e2e_invites_per_s", "single invites end to end", "/s", 1000),
        Figure("naive_invites_per_s", "naive pipeline, same run", "/s"),
        Figure("ratio_to_naive", "end to end / naive", "x", 3),
        Figure("pgbench_commits_per_s", "pgbench single-client commits", "/s"),
        Figure("ratio_to_pgbench", "end to end / pgbench commits", "x"),
    ),
    run,
    notes=__doc__ or "",
)
