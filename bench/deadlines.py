"""Deadlines on time: the timings the expiry tests check the behaviour of, measured.

The tests assert that deadlines fire, in order, once, and that the services stop and
catch up; how late and how fast is measured here, where a loaded machine makes a figure
worse instead of a test red. Each figure's target is the bound the tests once asserted.

In process: `ExpiryRunner` over an in-memory event log and a sender that answers at once
(tests.fakes.MemoryLog and RecordingCommandSender, as tests/expiry/test_runner.py drives
it), polling every 20 ms:

- `runner_lateness_max_ms` (≤ 500 ms): ten invitation links lapsing 0.3-0.8 s ahead,
  written to the log while the runner sleeps towards `far` contractors' ends and
  reminders (full: 100,000 contractors, 200,000 deadlines); the latest of their firings.
- `runner_overdue_ms` (≤ 3 s): 20 deadlines already overdue at start; start → all sent.
- `runner_stop_ms` (≤ 2 s): `stop()` while the runner waits for a deadline an hour
  away → its task done.

Live: `python -m services.invitation` and `python -m services.expiry` on a fresh schema
and vhost. Lateness is the stored event's time minus the instant it acts for, so it
covers the whole path (the expiry's timer, the command over the broker, the decision
and its commit):

- `live_reminder_lateness_ms`, `live_end_lateness_ms` (≤ 1 s each): a contractor whose
  access ends 4 s after the invite, reminded 2 s before;
- `live_moved_end_lateness_ms` (≤ 1 s): an end an hour away moved to 3 s away;
- `live_stop_s` (≤ 10 s): SIGTERM → the expiry process has exited;
- `live_catch_up_s` (≤ 10 s): three ends that passed while the expiry service was down;
  its restart → the last of their `ContractorExpired` stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.core import Figure, Scale, Suite
from bench.expiry import service_ready
from services.expiry.adapters.commands import RecordingCommandSender
from services.expiry.application import Expiry
from services.expiry.domain.deadlines import contractor_end, contractor_reminder
from services.expiry.entrypoints.runner import ExpiryRunner
from services.invitation.eventstore import EventLog
from shared.command_client import CommandClient
from shared.contract import EventEnvelope, Reply
from tests.fakes import MemoryLog
from tests.support import (
    ServiceProcess,
    enable_contractors,
    free_port,
    send_with_end_in,
    service_env,
    suffix,
    temporary_schema,
    temporary_vhost,
    wait_for,
)

NEAR = 10
OVERDUE = 20
LOGS = Path("var/bench/deadlines")

# -- in process ----------------------------------------------------------------------------


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _runner(expiry: Expiry, log: MemoryLog) -> tuple[ExpiryRunner, RecordingCommandSender]:
    sender = RecordingCommandSender(lambda f: Reply.accepted(str(f.command.command_id), {}))
    runner = ExpiryRunner(expiry, log, sender, poll_interval=0.02)
    sender.on_reply = runner.on_reply
    return runner, sender


async def _runner_lateness(far: int) -> float:
    """Max lateness (s) of NEAR deadlines added while the runner sleeps towards `far` ones."""
    expiry = Expiry()
    far_end = time.time() + 30 * 86_400
    for i in range(far):
        email = f"contractor{i}@bench.example"
        expiry.dispatcher.set(contractor_end("big", email), far_end + i)
        expiry.dispatcher.set(contractor_reminder("big", email, 86_400.0), far_end + i - 86_400)
    log = MemoryLog()
    runner, sender = _runner(expiry, log)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(runner.ready.wait(), 60)
        for i in range(NEAR):
            log.user_invited("acme", f"near{i}@bench.example", _in(0.3 + 0.5 * i / NEAR))
        await wait_for(lambda: len(sender.sent) >= NEAR, timeout=30, what="the near deadlines")
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)
    return runner.max_lateness


async def _runner_overdue_and_stop() -> tuple[float, float]:
    """(start → OVERDUE overdue deadlines sent, stop → done while an hour from the next), s."""
    log = MemoryLog()
    for i in range(OVERDUE):
        log.user_invited("acme", f"late{i}@bench.example", _in(-100 + i))
    log.user_invited("acme", "far@bench.example", _in(3600))
    runner, sender = _runner(Expiry(), log)
    started = time.perf_counter()
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: len(sender.sent) >= OVERDUE, timeout=30, what="the overdue ones")
        overdue = time.perf_counter() - started
        await asyncio.sleep(0.1)  # asleep now, towards the far deadline
    finally:
        stopping = time.perf_counter()
        runner.stop()
        await asyncio.wait_for(task, 30)
    return overdue, time.perf_counter() - stopping


# -- live ----------------------------------------------------------------------------------


def _events(database_url: str, tenant: str, event_type: str) -> dict[str, EventEnvelope]:
    """email -> its `event_type` event in `tenant`."""
    log = EventLog(database_url)
    try:
        return {
            e.data["email"]: e
            for e in log.iterate()
            if e.event_type == event_type and e.tenant_id == tenant
        }
    finally:
        log.close()


async def _stored(
    database_url: str, tenant: str, event_type: str, emails: set[str]
) -> dict[str, EventEnvelope]:
    async def found() -> dict[str, EventEnvelope] | None:
        events = await asyncio.to_thread(_events, database_url, tenant, event_type)
        return events if emails <= events.keys() else None

    events: dict[str, EventEnvelope] = await wait_for(
        found, timeout=30, interval=0.1, what=f"{event_type} of {sorted(emails)}"
    )
    return events


async def _contractor(client: CommandClient, tenant: str, email: str, seconds: float) -> datetime:
    """A contractor whose access ends in `seconds`: the end."""
    fields = {"tenant_id": tenant, "email": email, "role": "contractor"}
    return await send_with_end_in(client, seconds, "invite_user", **fields)


def _late(event: EventEnvelope, due: datetime) -> float:
    return (event.occurred_at - due).total_seconds()


async def _live() -> dict[str, float]:
    await asyncio.to_thread(LOGS.mkdir, parents=True, exist_ok=True)
    with temporary_schema("bench_deadlines") as database_url, temporary_vhost() as amqp_url:
        env = service_env(database_url, amqp_url, LOG_LEVEL="WARNING")
        ports = {"invitation": free_port(), "expiry": free_port()}

        def start(name: str) -> ServiceProcess:
            return ServiceProcess(name, {**env, "HTTP_PORT": str(ports[name])}, LOGS).start()

        invitation, expiry = start("invitation"), start("expiry")
        try:
            await service_ready(invitation, ports["invitation"], within=60)
            await service_ready(expiry, ports["expiry"], within=60)
            async with CommandClient(amqp_url) as client:
                tenant = f"bench-deadlines-{suffix()}"
                await enable_contractors(client, tenant, "PT2S")
                reminded, moved = f"carol-{suffix()}@bench.example", f"dan-{suffix()}@bench.example"
                end = await _contractor(client, tenant, reminded, 4)
                await _contractor(client, tenant, moved, 3600)
                new_end = await send_with_end_in(
                    client, 3, "set_contractor_expiry", tenant_id=tenant, email=moved
                )
                expired = await _stored(
                    database_url, tenant, "ContractorExpired", {reminded, moved}
                )
                reminders = await _stored(
                    database_url, tenant, "ContractorExpiryApproaching", {reminded}
                )

                stopping = time.perf_counter()
                if expiry.terminate() != 0:
                    raise RuntimeError(f"the expiry service did not stop cleanly:\n{expiry.log()}")
                stop_s = time.perf_counter() - stopping

                missed = {f"c{i}-{suffix()}@bench.example" for i in range(3)}
                ends = [
                    await _contractor(client, tenant, email, 1 + i)
                    for i, email in enumerate(sorted(missed))
                ]
                # The ends pass with no expiry service running.
                await asyncio.sleep((max(ends) - datetime.now(UTC)).total_seconds() + 0.5)
                back = datetime.now(UTC)
                expiry = start("expiry")
                caught_up = await _stored(database_url, tenant, "ContractorExpired", missed)
        finally:
            expiry.stop()
            invitation.stop()
    return {
        "live_reminder_lateness_ms": 1000 * _late(reminders[reminded], end - timedelta(seconds=2)),
        "live_end_lateness_ms": 1000 * _late(expired[reminded], end),
        "live_moved_end_lateness_ms": 1000 * _late(expired[moved], new_end),
        "live_stop_s": stop_s,
        "live_catch_up_s": max(_late(caught_up[email], back) for email in missed),
    }


async def run(scale: Scale) -> Mapping[str, float]:
    lateness = await _runner_lateness(scale.pick(100_000, 1_000))
    overdue_s, stop_s = await _runner_overdue_and_stop()
    return {
        "runner_lateness_max_ms": 1000 * lateness,
        "runner_overdue_ms": 1000 * overdue_s,
        "runner_stop_ms": 1000 * stop_s,
        **await _live(),
    }


SUITE = Suite(
    name="deadlines",
    figures=(
        Figure("runner_lateness_max_ms", "runner lateness, max, in process", "ms", 500, "lower"),
        Figure(
            "runner_overdue_ms",
            f"runner: {OVERDUE} overdue at start, all sent",
            "ms",
            3000,
            "lower",
        ),
        Figure("runner_stop_ms", "runner stop while waiting", "ms", 2000, "lower"),
        Figure("live_reminder_lateness_ms", "live reminder lateness", "ms", 1000, "lower"),
        Figure("live_end_lateness_ms", "live end-of-access lateness", "ms", 1000, "lower"),
        Figure(
            "live_moved_end_lateness_ms", "live lateness, end moved earlier", "ms", 1000, "lower"
        ),
        Figure("live_stop_s", "expiry process: SIGTERM → exited", "s", 10, "lower"),
        Figure("live_catch_up_s", "expiry restart → missed ends fired", "s", 10, "lower"),
    ),
    run=run,
    notes=__doc__ or "",
)
