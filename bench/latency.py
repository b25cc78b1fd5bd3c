"""Latency of single invites at an offered rate of 300/s, open loop.

The real services run on a fresh schema and vhost with the SMTP sink in its own
process. Invites are published on a fixed schedule, 300 a second for 30 s (quick: 3 s),
whatever the replies do (an open loop: a slow service cannot slow the offered load down
and hide its own latency). Each invite is followed through bench/invites.py; the run
then waits for every one to complete (up to 60 s after the last publish; stages still
missing then count as reached at that moment, so the percentiles are lower bounds, and
a warning says so: a pipeline that does not sustain the offered rate has no finite tail).

- `reply_*`: command published (driver clock, just before the publish) -> its reply
  received by the driver.
- `email_*`: the `UserInvited` event's stored `occurred_at` -> the invitation email
  accepted by the sink (both wall-clock on this machine). `occurred_at` is stamped when
  the command's batch is decided, just before its transaction commits, so this includes
  the commit, the relay, the notifier's planning and the SMTP exchange.

Percentiles are over the invites published after the first second (start-up effects).

The same figures at `SUSTAINED_RATE` (40/s, about half of what the closed loop of the
throughput suite completes here) are reported beside them, measured first on the same
stack: what the latency is when the pipeline keeps up, which 300/s does not show here.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time

from bench.core import Figure, Scale, Suite
from bench.invites import Invite, InviteTracker
from bench.services import Stack, running_stack

log = logging.getLogger(__name__)
RATE = 300.0
SUSTAINED_RATE = 40.0
# After the last publish, how long the stragglers may take (see `censor`).
DRAIN_TIMEOUT = 60.0


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the value below which `share` of the values lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def censor(invites: list[Invite], rate: float) -> None:
    """Stages still missing count as reached now: the percentiles become lower bounds.

    A pipeline that cannot keep up with the offered rate has no finite tail latency;
    rather than fail the whole benchmark command, report what is certain (at least
    this long), which is still judged against the target, and say so.
    """
    now, wall = time.monotonic(), time.time()
    missing = 0
    for invite in invites:
        if invite.completed is not None:
            continue
        missing += 1
        invite.replied = invite.replied or now
        invite.occurred_at = invite.occurred_at or invite.published_at
        invite.emailed = invite.emailed or wall
    log.warning(
        "%d of %d invites did not complete within %.0f s of the last publish: the pipeline "
        "does not sustain %.0f/s here; their latencies count as lower bounds",
        missing,
        len(invites),
        DRAIN_TIMEOUT,
        rate,
    )


async def open_loop(stack: Stack, *, rate: float, seconds: float) -> list[Invite]:
    """Publish `rate` invites a second for `seconds`, then wait for all to complete
    (or `DRAIN_TIMEOUT`, see `censor`)."""
    async with InviteTracker(stack.amqp_url, stack.sink) as tracker:
        publishes: list[asyncio.Task[None]] = []
        total = int(rate * seconds)
        started = time.monotonic()
        for n in range(total):
            # Each invite at its scheduled instant; late ticks publish the backlog at once.
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            invite = tracker.new()
            publishes.append(asyncio.create_task(tracker.publish(invite)))
            if n % 100 == 0:
                stack.check_running()
        await asyncio.gather(*publishes)
        invites = list(tracker.by_command.values())
        done = asyncio.gather(*(invite.done for invite in invites))
        try:
            await asyncio.wait_for(done, DRAIN_TIMEOUT)
        except TimeoutError:
            censor(invites, rate)
        skip = int(rate)  # the first second
        return invites[skip:] if len(invites) > 2 * skip else invites


def latencies(invites: list[Invite], suffix: str = "") -> dict[str, float]:
    replies = [invite.reply_ms for invite in invites]
    emails = [invite.email_ms for invite in invites]
    return {
        f"reply_p50_ms{suffix}": statistics.median(replies),
        f"reply_p99_ms{suffix}": percentile(replies, 0.99),
        f"email_p50_ms{suffix}": statistics.median(emails),
        f"email_p99_ms{suffix}": percentile(emails, 0.99),
    }


async def run(scale: Scale) -> dict[str, float]:
    seconds = scale.seconds(30, 3)
    async with running_stack() as stack:
        sustained = await open_loop(stack, rate=SUSTAINED_RATE, seconds=seconds)
        await asyncio.sleep(scale.seconds(5, 1))  # the last emails of that phase
        overloaded = await open_loop(stack, rate=RATE, seconds=seconds)
    return latencies(overloaded) | latencies(sustained, "_sustained")


SUITE = Suite(
    "latency",
    (
        Figure("reply_p50_ms", "command -> reply p50 at 300/s", "ms", better="lower"),
        Figure("reply_p99_ms", "command -> reply p99 at 300/s", "ms", 50, "lower"),
        Figure("email_p50_ms", "event stored -> email p50 at 300/s", "ms", better="lower"),
        Figure("email_p99_ms", "event stored -> email p99 at 300/s", "ms", 200, "lower"),
        Figure("reply_p50_ms_sustained", "command -> reply p50 at 40/s", "ms", better="lower"),
        Figure("reply_p99_ms_sustained", "command -> reply p99 at 40/s", "ms", better="lower"),
        Figure("email_p50_ms_sustained", "stored -> email p50 at 40/s", "ms", better="lower"),
        Figure("email_p99_ms_sustained", "stored -> email p99 at 40/s", "ms", better="lower"),
    ),
    run,
    notes=__doc__ or "",
)
