"""Drive a scenario (load, fault, drain) and check what must hold after any fault.

- every command the broker confirmed is answered, and accepted;
- each is decided exactly once: one `UserInvited` in the store per invited address,
  and none for an address nobody invited;
- every stored invite is published on `invitations.events` and emailed.

What may happen twice (a reply, an event, an email) is counted, not asserted, except
where a scenario says otherwise; every figure goes to the report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from services.invitation.eventstore import EventLog
from tests.faults.harness import Load, Plan, Watch, first_after, longest_gap
from tests.support import wait_for

if TYPE_CHECKING:
    from tests.faults.conftest import Run

# A fault returns the moment (monotonic) its dependency was back, when it knows it (the
# server's first accepted connection); None: when the fault returns.
Fault = Callable[[], Awaitable[float | None]]


async def under_load(run: Run, plan: Plan, fault: Fault, *, drain: float = 120.0) -> None:
    """Runs the plan's load, `fault` at its time, then waits for everything to settle and
    checks the outcomes. Recovery is measured from the fault's end (see Fault)."""
    async with Watch(run.amqp_url) as watch, Load(run.amqp_url, run.tenant) as load:
        began = time.monotonic()
        loading = asyncio.create_task(load.run(plan))
        await asyncio.sleep(plan.fault_at)
        back = await fault()
        if back is None:
            back = time.monotonic()
        await loading
        await settle(run, load, watch, drain=drain)
        run.figures.update(
            replies_after_s=first_after(load.reply_moments(), back),
            events_after_s=first_after(watch.moments(), back),
            emails_after_s=first_after(run.mailbox.moments(), back),
            reply_gap_s=longest_gap(load.reply_moments(), (began, time.monotonic())),
            email_gap_s=longest_gap(run.mailbox.moments(), (began, time.monotonic())),
        )


async def settle(run: Run, load: Load, watch: Watch, *, drain: float = 120.0) -> None:
    """Waits until every command is answered, published and emailed; checks; counts."""
    await wait_for(
        lambda: not load.unanswered(),
        timeout=drain,
        interval=0.5,
        what=f"every command answered ({len(load.unanswered())} not yet)",
    )
    statuses = {status for c in load.commands.values() for _, status in c.replies}
    assert statuses == {"accepted"}, statuses

    invited = {c.email for c in load.commands.values()}
    stored = await asyncio.to_thread(stored_invites, run.database_url, run.tenant)
    decided_twice = {address: ids for address, ids in stored.items() if len(ids) > 1}
    assert not decided_twice, f"decided more than once: {decided_twice}"
    assert set(stored) == invited, (
        f"not decided: {sorted(invited - set(stored))[:5]}; "
        f"decided, never sent: {sorted(set(stored) - invited)[:5]}"
    )
    event_ids = {ids[0] for ids in stored.values()}
    await wait_for(
        lambda: event_ids <= set(watch.event_ids()),
        timeout=drain,
        interval=0.5,
        what="every stored invite published",
    )
    await wait_for(
        lambda: invited <= set(run.mailbox.copies()),
        timeout=drain,
        interval=0.5,
        what=f"every invite emailed ({len(invited - set(run.mailbox.copies()))} not yet)",
    )
    copies = run.mailbox.copies()
    republished = watch.event_ids()
    run.figures.update(
        commands=len(load.commands),
        resends=sum(c.sends for c in load.commands.values()) - len(load.commands),
        replies_extra=sum(len(c.replies) for c in load.commands.values()) - len(load.commands),
        events_republished=sum(republished.values()) - len(republished),
        emails_duplicated=sum(copies[address] - 1 for address in invited),
    )
    # A duplicate email is the same email again: the same Message-ID.
    for address in invited:
        if copies[address] > 1:
            assert len(run.mailbox.message_ids(address)) == 1, address


def stored_invites(database_url: str, tenant: str) -> dict[str, list[str]]:
    """{invited address: the event ids of its UserInvited} in the tenant, from the store."""
    log = EventLog(database_url, event_types=["UserInvited"])
    found: dict[str, list[str]] = {}
    try:
        position = 0
        while True:
            envelopes, last = log.read_with_high_water(position, 1000)
            for e in envelopes:
                if e.tenant_id == tenant:
                    found.setdefault(str(e.data["email"]), []).append(str(e.event_id))
            if last == position:
                return found
            position = last
    finally:
        log.close()


class LeaderSampler:
    """Samples every instance's `*_leading` gauges at once, every `interval` seconds,
    and keeps the highest sum seen per gauge."""

    def __init__(self, run: Run, interval: float = 0.1) -> None:
        self._run = run
        self._interval = interval
        self.highest: dict[str, float] = {}
        self.samples = 0
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=8)

    async def __aenter__(self) -> LeaderSampler:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._pool.shutdown(wait=False)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sums = await loop.run_in_executor(self._pool, self._sample_once)
            self.samples += 1
            for name, value in sums.items():
                self.highest[name] = max(self.highest.get(name, 0.0), value)
            await asyncio.sleep(self._interval)

    def _sample_once(self) -> dict[str, float]:
        # Every instance scraped at the same moment (a thread each): sampled one after
        # the other, a leader and its successor could be read across the handover.
        stack = self._run.stack
        keys = [k for k in stack.processes if stack.alive(k)]
        with ThreadPoolExecutor(max_workers=max(1, len(keys))) as scrape:
            answers = list(scrape.map(lambda k: stack.leading_of(k), keys))
        sums: dict[str, float] = {}
        for gauges in answers:
            for name, value in gauges.items():
                sums[name] = sums.get(name, 0.0) + value
        return sums
