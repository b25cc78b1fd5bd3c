"""The expiry service at scale: memory with a million deadlines, lateness under that load.

Prepared once per invocation: a store in which 100,000 pending contractor invitations each
hold ten deadlines: the end of access, seven reminders (their tenants remind 1 to 7 days
before the end), the invitation link's lapse and the temporary password's expiry, so a
million deadlines. It is built through the real application (mass invites of 5,000
contractors in tenants that enable them), not through the broker.

Each run starts the real `python -m services.expiry` and `python -m services.invitation`
processes on that store (a fresh vhost per run) and measures:

- `expiry_rebuild_s`: process start until `/readyz` says the schedule is rebuilt;
- `expiry_rss_mb` (≤ 500 MB): the expiry process's resident size once rebuilt, and
  `expiry_peak_rss_mb` its high-water mark (the rebuild's transient peak);
- `expiry_lateness_p50_ms` / `_p99_ms` (p99 ≤ 1 s): a mass invite of `soon` more contractors
  (full: 1,000) whose access ends spread over the next 20 s, among all the others; lateness
  is the `ContractorExpired` event's time (stored by the invitation service) minus the end
  of access it states, so it covers the whole path: expiry's timer, the command over the
  broker, the invitation service's decision and commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.core import Figure, Scale, Suite
from services.invitation.application import InvitationService
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from shared import contract as c
from shared.command_client import CommandClient
from shared.ops_http import probe
from tests.support import (
    TEST_SECRETS_KEY,
    ServiceProcess,
    free_port,
    service_env,
    temporary_schema,
    temporary_vhost,
    wait_for,
)

ADMIN = "bench.admin@example.com"
PER_TENANT = 5_000  # contractors per tenant (one mass invite each)
# Per contractor: its end, these reminders, its link and its temporary password.
REMINDERS = 7
DEADLINES_PER_CONTRACTOR = 1 + REMINDERS + 2
LOGS = Path("var/bench/expiry")


@dataclass
class _Prepared:
    database_url: str
    contractors: int
    cleanup: contextlib.ExitStack


_prepared: _Prepared | None = None


def _command(model: type[c.Command], **fields: Any) -> c.Command:
    return model(command_id=uuid.uuid4(), actor=ADMIN, **fields)


def _accepted(replies: Sequence[c.Reply]) -> None:
    refused = [reply for reply in replies if reply.status != "accepted"]
    if refused:
        raise RuntimeError(f"{len(refused)} commands refused, e.g. {refused[0].error}")


def build_store(database_url: str, contractors: int) -> None:
    """`contractors` pending contractor invitations, ten deadlines each."""
    service = InvitationService(
        InvitationStore(env=store_env(database_url)), secrets_key=TEST_SECRETS_KEY.encode()
    )
    try:
        now = datetime.now(UTC)
        started = time.perf_counter()
        for number, first in enumerate(range(0, contractors, PER_TENANT)):
            tenant = f"bench-expiry-{number}"
            configured = service.handle(
                "configure_tenant",
                _command(
                    c.ConfigureTenant,
                    tenant_id=tenant,
                    contractor_enabled=True,
                    expiry_reminders=[timedelta(days=d) for d in range(1, 1 + REMINDERS)],
                ),
            )
            _accepted([configured])
            # Ends spread over days 10 to 90, so every reminder is still ahead.
            rows = [
                c.MassInvitee(
                    email=f"contractor{i}@bench.example",
                    role="contractor",
                    access_expires_at=now + timedelta(days=10, seconds=(i * 7919) % 6_900_000),
                )
                for i in range(first, min(first + PER_TENANT, contractors))
            ]
            reply = service.handle(
                "mass_invite", _command(c.MassInvite, tenant_id=tenant, invitees=rows)
            )
            if reply.result is None or reply.result["invited"] != len(rows):
                raise RuntimeError(f"the mass invite did not invite every row: {reply}")
            print(
                f"  expiry store: {first + len(rows):,} of {contractors:,} contractors"
                f" ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    finally:
        service.close()


async def prepare(scale: Scale) -> None:
    global _prepared
    contractors = scale.pick(100_000, 300)
    cleanup = contextlib.ExitStack()
    database_url = cleanup.enter_context(temporary_schema())
    _prepared = _Prepared(database_url, contractors, cleanup)
    await asyncio.to_thread(build_store, database_url, contractors)


async def finish() -> None:
    global _prepared
    if _prepared is not None:
        _prepared.cleanup.close()
        _prepared = None


def _memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


async def service_ready(service: ServiceProcess, port: int, within: float) -> None:
    """Waits until `service` answers /readyz on `port`; fails at once if it exits."""

    async def answered() -> bool:
        assert service.process is not None
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited:\n{service.log()[-2000:]}")
        return await asyncio.to_thread(probe, "/readyz", port=port, timeout=1.0)

    await wait_for(answered, timeout=within, interval=0.1, what=f"{service.name} /readyz")


def _expirations(database_url: str, tenant: str, after: int) -> list[float]:
    """Lateness in seconds of each ContractorExpired of `tenant` after position `after`."""
    log = EventLog(database_url)
    try:
        return [
            (e.occurred_at - datetime.fromisoformat(e.data["access_expires_at"])).total_seconds()
            for e in log.iterate(after)
            if e.event_type == "ContractorExpired" and e.tenant_id == tenant
        ]
    finally:
        log.close()


def _scheduled(port: int) -> float:
    """The deadlines the running service holds, as its own /metrics count them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        metrics = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("expiry_deadlines_scheduled{")
    )


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run(scale: Scale) -> Mapping[str, float]:
    assert _prepared is not None, "prepare() first"
    soon = scale.pick(1_000, 20)
    spread = scale.seconds(20.0, 2.0)
    lead = scale.seconds(5.0, 3.0)  # from the mass invite to the first end
    await asyncio.to_thread(LOGS.mkdir, parents=True, exist_ok=True)
    with temporary_vhost() as amqp_url:
        ports = {"invitation": free_port(), "expiry": free_port()}
        env = service_env(_prepared.database_url, amqp_url, LOG_LEVEL="WARNING")
        # No relay: the store was built without the broker, so a relay would first
        # publish its hundreds of thousands of events (a backlog no live system has)
        # and take the CPU the expiry commands need. The expiry reads the store itself.
        invitation = ServiceProcess(
            "invitation",
            {**env, "HTTP_PORT": str(ports["invitation"]), "RELAY_ENABLED": "false"},
            LOGS,
        ).start()
        expiry: ServiceProcess | None = None
        try:
            await service_ready(invitation, ports["invitation"], within=60)
            started = time.perf_counter()
            expiry = ServiceProcess("expiry", {**env, "HTTP_PORT": str(ports["expiry"])}, LOGS)
            expiry.start()
            await service_ready(expiry, ports["expiry"], within=600)
            rebuild_s = time.perf_counter() - started
            assert expiry.process is not None
            await asyncio.sleep(1.0)  # the post-rebuild collection and gc.freeze
            rss_mb, peak_mb = _memory_mb(expiry.process.pid)
            deadlines = await asyncio.to_thread(_scheduled, ports["expiry"])

            lateness = await _lateness(_prepared.database_url, amqp_url, soon, spread, lead)
        finally:
            if expiry is not None:
                expiry.stop()
            invitation.stop()
    return {
        "expiry_deadlines": deadlines,
        "expiry_rebuild_s": rebuild_s,
        "expiry_rss_mb": rss_mb,
        "expiry_peak_rss_mb": peak_mb,
        "expiry_lateness_p50_ms": 1000 * statistics.median(lateness),
        "expiry_lateness_p99_ms": 1000 * _percentile(lateness, 0.99),
    }


async def _lateness(
    database_url: str, amqp_url: str, soon: int, spread: float, lead: float
) -> list[float]:
    tenant = f"bench-soon-{uuid.uuid4().hex[:8]}"
    log = EventLog(database_url)
    try:
        before = await asyncio.to_thread(log.max_position)
    finally:
        log.close()
    async with CommandClient(amqp_url) as client:
        configured = await client.send(
            "configure_tenant",
            {
                "command_id": str(uuid.uuid4()),
                "actor": ADMIN,
                "tenant_id": tenant,
                "contractor_enabled": True,
            },
        )
        assert configured.status == "accepted", configured
        first_end = datetime.now(UTC) + timedelta(seconds=lead)
        reply = await client.send(
            "mass_invite",
            {
                "command_id": str(uuid.uuid4()),
                "actor": ADMIN,
                "tenant_id": tenant,
                "invitees": [
                    {
                        "email": f"soon{i}@bench.example",
                        "role": "contractor",
                        "access_expires_at": (
                            first_end + timedelta(seconds=spread * i / soon)
                        ).isoformat(),
                    }
                    for i in range(soon)
                ],
            },
            within=120,
        )
        assert reply.status == "accepted", reply
    await asyncio.sleep(max(0.0, (first_end - datetime.now(UTC)).total_seconds() + spread))

    async def all_expired() -> list[float] | None:
        found = await asyncio.to_thread(_expirations, database_url, tenant, before)
        return found if len(found) >= soon else None

    found: list[float] = await wait_for(
        all_expired, timeout=120, interval=0.5, what="every contractor's end"
    )
    return found


SUITE = Suite(
    name="expiry",
    figures=(
        Figure("expiry_deadlines", "deadlines scheduled", "", better="higher"),
        Figure("expiry_rebuild_s", "rebuild at start", "s", better="lower"),
        Figure("expiry_rss_mb", "memory once rebuilt (RSS)", "MB", target=500, better="lower"),
        Figure("expiry_peak_rss_mb", "peak memory during rebuild", "MB", better="lower"),
        Figure("expiry_lateness_p50_ms", "lateness p50 among them", "ms", better="lower"),
        Figure(
            "expiry_lateness_p99_ms", "lateness p99 among them", "ms", target=1000, better="lower"
        ),
    ),
    run=run,
    prepare=prepare,
    finish=finish,
    notes=__doc__ or "",
)
