"""Scale: a million deadlines in memory, and near deadlines firing among many far ones."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from services.expiry.adapters.commands import RecordingCommandSender
from services.expiry.application import Expiry
from services.expiry.domain.deadlines import contractor_end, contractor_reminder
from services.expiry.entrypoints.runner import ExpiryRunner
from shared.contract import Reply
from tests.fakes import MemoryLog
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.slow

# Run in a child process so that its resident size measures the expiry service alone:
# 250,000 contractor invites, each with its end, two reminders and its link = 1,000,000.
_MILLION = """
import gc, json, sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from services.expiry.application import Expiry
from shared.contract import EventEnvelope

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

expiry = Expiry()
gc.collect()
before = rss_mb()
start = datetime(2030, 1, 1, tzinfo=UTC)
for i in range(250_000):
    end = start + timedelta(days=30, seconds=i)
    expiry.apply([EventEnvelope.model_construct(
        event_id=uuid4(), event_type="UserInvited", schema_version=1, occurred_at=start,
        position=i + 1, tenant_id=f"tenant-{i % 500}", aggregate_id=uuid4(),
        aggregate_version=1, correlation_id=None, actor="admin@example.com",
        data={"invitation_id": str(uuid4()), "email": f"contractor{i}@example.com",
              "role": "contractor", "access_expires_at": end.isoformat(),
              "invitation_expires_at": (start + timedelta(days=7)).isoformat()},
    )])
gc.collect()
json.dump({"deadlines": len(expiry.deadlines()), "rss_mb": rss_mb(), "grew_mb": rss_mb() - before},
          sys.stdout)
"""


def test_a_million_deadlines_fit_in_500_mb() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MILLION],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    measured = json.loads(done.stdout)

    assert measured["deadlines"] == 1_000_000
    assert measured["rss_mb"] < 500, measured


async def test_near_deadlines_fire_among_a_hundred_thousand_far_ones() -> None:
    """How late they fire among so many: bench/deadlines.py (runner_lateness_max_ms)."""
    expiry = Expiry()
    far = (datetime.now(UTC) + timedelta(days=30)).timestamp()
    for i in range(100_000):
        email = f"contractor{i}@example.com"
        expiry.dispatcher.set(contractor_end("big", email), far + i)
        expiry.dispatcher.set(contractor_reminder("big", email, 86_400.0), far + i - 86_400)
    memory_log = MemoryLog()
    for i in range(5):
        memory_log.user_invited(
            "acme", f"near{i}@example.com", datetime.now(UTC) + timedelta(seconds=0.3 + i / 10)
        )
    sender = RecordingCommandSender(lambda f: Reply.accepted(str(f.command.command_id), {}))
    runner = ExpiryRunner(expiry, memory_log, sender, poll_interval=0.02)
    sender.on_reply = runner.on_reply
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: len(sender.sent) == 5, timeout=10, what="the near deadlines")
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)

    assert len(expiry.deadlines()) == 200_000
