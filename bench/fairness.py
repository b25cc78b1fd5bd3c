"""Fair to every tenant: one tenant's mass invites, another's single invites meanwhile.

One run: `python -m services.invitation` alone (no notifier: the figures are the
invitation service's) on a fresh schema and vhost (`running_stack` of
`bench/services.py`). Tenant A publishes three mass invites of 10,000 valid rows each
(quick: 300) at once; from the same instant tenant B publishes single `invite_user`
commands on a fixed schedule, `B_RATE` a second (open loop: a slow reply never slows
the offered load), until all three mass invites are answered. Every invite gets an
automatic temporary password (hashed, sealed), as in the mass-invite suite.

- `b_reply_p50/p95/p99_ms`: B's invites, command published -> reply received;
- `fair_mass_done_s`: publish -> the last of A's three replies (each checked: 10,000
  rows, all invited);
- `fair_peak_rss_mb`: the invitation process's peak resident set (`VmHWM` of
  /proc/<pid>/status, the kernel's own high-water mark) over the whole run, start-up
  included; `fair_rss_before_mb` its resident set just before the publish.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from bench.core import Figure, Scale, Suite
from bench.latency import percentile
from bench.services import running_stack
from shared.command_client import CommandClient
from shared.contract import Reply

ACTOR = "admin@bench.example"
MASS_INVITES = 3
B_RATE = 5.0  # single invites a second from tenant B


def _mass_invite(tenant: str, rows: int, tag: str) -> bytes:
    invitees = [{"email": f"a{i}-{tag}@bench.example", "role": "user"} for i in range(rows)]
    body = {"command_id": str(uuid.uuid4()), "actor": ACTOR, "tenant_id": tenant}
    return json.dumps({**body, "invitees": invitees}).encode()


def _invite(tenant: str, email: str) -> bytes:
    body = {
        "command_id": str(uuid.uuid4()),
        "actor": ACTOR,
        "tenant_id": tenant,
        "email": email,
        "role": "user",
    }
    return json.dumps(body).encode()


def memory_mb(pid: int, field: str) -> float:
    """`VmRSS` (now) or `VmHWM` (the peak so far) of a process, in MB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


async def _single_invites(
    client: CommandClient, tenant: str, tag: str, until: asyncio.Event
) -> list[float]:
    """B's open loop: publish on schedule until `until`; each reply's latency in ms."""
    latencies: list[float] = []
    slowest: list[tuple[float, float]] = []  # (latency ms, sent at s from the start)
    pending: list[asyncio.Task[None]] = []

    async def follow(sent_at: float, reply: asyncio.Future[Reply]) -> None:
        answer = await asyncio.wait_for(reply, 600)
        assert answer.status == "accepted", answer.error
        latencies.append((time.perf_counter() - sent_at) * 1000)
        slowest.append((latencies[-1], sent_at - started))

    started = time.perf_counter()
    sent = 0
    while not until.is_set():
        due = started + sent / B_RATE
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        sent_at = time.perf_counter()
        body = _invite(tenant, f"b{sent}-{tag}@bench.example")
        reply = await client.publish_raw("invite_user", body)
        assert reply is not None
        pending.append(asyncio.create_task(follow(sent_at, reply)))
        sent += 1
    await asyncio.gather(*pending)
    worst = ", ".join(f"{ms:,.0f} ms at +{at:.1f} s" for ms, at in sorted(slowest)[-5:])
    print(f"  B's five slowest replies: {worst}", flush=True)
    return latencies


async def run(scale: Scale) -> dict[str, float]:
    rows = scale.pick(10_000, 300)
    tag = uuid.uuid4().hex[:8]
    tenant_a, tenant_b = f"fair-a-{tag}", f"fair-b-{tag}"
    bodies = [_mass_invite(tenant_a, rows, f"{tag}-{n}") for n in range(MASS_INVITES)]
    env = {"LOG_LEVEL": "WARNING"}
    async with (
        running_stack(services=("invitation",), env=env) as stack,
        CommandClient(stack.amqp_url) as client,
    ):
        pid = stack.pid("invitation")
        before = memory_mb(pid, "VmRSS")
        all_done = asyncio.Event()
        started = time.perf_counter()
        replies = [await client.publish_raw("mass_invite", body) for body in bodies]
        singles = asyncio.create_task(_single_invites(client, tenant_b, tag, all_done))
        done_at = []
        for reply in replies:
            assert reply is not None
            answer = await asyncio.wait_for(reply, scale.seconds(900, 120))
            assert answer.status == "accepted", answer.error
            assert answer.result is not None
            assert answer.result["invited"] == rows, answer.result["refused"]
            done_at.append(f"+{time.perf_counter() - started:.1f} s")
        mass_done = time.perf_counter() - started
        print(f"  A's mass invites answered at {', '.join(done_at)}", flush=True)
        all_done.set()
        latencies = await singles
        peak = memory_mb(pid, "VmHWM")
    return {
        "b_reply_p50_ms": percentile(latencies, 0.50),
        "b_reply_p95_ms": percentile(latencies, 0.95),
        "b_reply_p99_ms": percentile(latencies, 0.99),
        "b_invites": float(len(latencies)),
        "fair_mass_done_s": mass_done,
        "fair_peak_rss_mb": peak,
        "fair_rss_before_mb": before,
    }


SUITE = Suite(
    name="fairness",
    figures=(
        Figure(
            "b_reply_p50_ms",
            "tenant B's single invites during A's three 10,000-row mass invites: reply p50",
            "ms",
            better="lower",
        ),
        Figure("b_reply_p95_ms", "the same, p95", "ms", better="lower"),
        Figure("b_reply_p99_ms", "the same, p99", "ms", target=1000, better="lower"),
        Figure("b_invites", f"B's invites answered ({B_RATE:g}/s while A's ran)", ""),
        Figure(
            "fair_mass_done_s",
            "publish → the last of A's three mass-invite replies",
            "s",
            better="lower",
        ),
        Figure(
            "fair_peak_rss_mb",
            "invitation service's peak resident memory (VmHWM)",
            "MB",
            target=250,
            better="lower",
        ),
        Figure("fair_rss_before_mb", "its resident memory before the run", "MB", better="lower"),
    ),
    run=run,
)
