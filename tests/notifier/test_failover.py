"""Two notifier processes; the leader's PostgreSQL connection is cut while emails flow.

The leader reaches PostgreSQL through a proxy (tests/proxy.py). Cutting it ends the
leader's sessions, so PostgreSQL frees its lock and the standby takes it, while the old
leader does not know yet. The fence must keep them from sending together: the sum of
their `notifier_leading` gauges (scraped from their metrics endpoints all along) never
exceeds 1, every email arrives, and none twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import pytest

from services.notifier.mailbox import received
from services.notifier.settings import NotifierSettings
from tests.proxy import proxy_to
from tests.support import ROOT, ServiceProcess, free_port, wait_for

from .conftest import CommandRelay, Invitations, SmtpSink, subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EMAILS = 300
REPORT = ROOT / "var" / "reports" / "notifier-failover.json"


def leading(port: int) -> int | None:
    """The process's `notifier_leading` gauge (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    found = re.search(r"^notifier_leading (\S+)$", text, re.MULTILINE)
    return None if found is None else int(float(found.group(1)))


class Gauges:
    """Samples both processes' gauges together, all along the test."""

    def __init__(self, ports: tuple[int, int]) -> None:
        self.ports = ports
        self.samples: list[tuple[int | None, int | None]] = []

    async def run(self) -> None:
        while True:
            pair = await asyncio.gather(*(asyncio.to_thread(leading, p) for p in self.ports))
            self.samples.append((pair[0], pair[1]))
            await asyncio.sleep(0.05)

    def last(self, index: int) -> int | None:
        return self.samples[-1][index] if self.samples else None


async def test_cutting_the_leaders_database_connection_hands_over_without_two_leaders_or_duplicates(
    invitations: Invitations, smtp: SmtpSink, settings: NotifierSettings,
    commands: CommandRelay, database_url: str, tmp_path: Path,
) -> None:  # fmt: skip
    direct = urlsplit(database_url)
    timings = {
        "SMTP_TIMEOUT": "2",
        "NOTIFIER_LEASE_TTL": "1.5",
        "NOTIFIER_STANDBY_POLL": "0.2",
    }
    ports = (free_port(), free_port())
    with proxy_to(f"{direct.hostname}:{direct.port}") as proxy:
        through_proxy = direct._replace(netloc=f"{direct.username}@127.0.0.1:{proxy.port}")
        first = ServiceProcess(
            "notifier",
            subprocess_env(
                settings, commands.exchange, DATABASE_URL=through_proxy.geturl(),
                HTTP_PORT=str(ports[0]), **timings,
            ),
            tmp_path,
        )  # fmt: skip
        second = ServiceProcess(
            "notifier",
            subprocess_env(settings, commands.exchange, HTTP_PORT=str(ports[1]), **timings),
            tmp_path,
        )
        gauges = Gauges(ports)
        sampling = asyncio.create_task(gauges.run())
        try:
            first.start()
            await wait_for(lambda: gauges.last(0) == 1, timeout=30, what="the first leading")
            second.start()
            await wait_for(lambda: gauges.last(1) == 0, timeout=30, what="the second standing by")

            tenant = f"t-{uuid4().hex[:10]}"
            invitations.do(
                "configure_tenant", tenant_id=tenant, admin_notification_emails=["ops@acme.io"]
            )
            smtp.delay = 0.01
            invitations.do(
                "mass_invite",
                tenant_id=tenant,
                invitees=[{"email": f"f{i}@example.com", "role": "user"} for i in range(EMAILS)],
            )
            await wait_for(lambda: len(smtp.messages) >= 40, timeout=60, what="emails flowing")
            proxy.down()  # PostgreSQL ends the leader's sessions, and frees its lock
            at_cut = len(smtp.messages)
            await asyncio.sleep(1.0)  # a short outage, as a database restart would be
            proxy.up()
            await wait_for(lambda: gauges.last(1) == 1, timeout=60, what="the standby leading")
            await wait_for(
                lambda: len({m.message_id for m in smtp.messages}) == EMAILS + 1,
                timeout=120,
                what="every email",
            )
            await wait_for(
                lambda: all(d.status == "sent" for r in received(database_url).values() for d in r),
                timeout=30,
            )
            assert gauges.last(0) == 0  # the old leader stands by
        finally:
            sampling.cancel()
            await asyncio.gather(sampling, return_exceptions=True)
            for process in (first, second):
                process.stop()

    sums = [sum(v or 0 for v in pair) for pair in gauges.samples]
    copies = [m.message_id for m in smtp.messages]
    figures = {
        "emails": EMAILS + 1,
        "sent_before_cut": at_cut,
        "samples": len(sums),
        "max_leading_sum": max(sums),
        "duplicates": len(copies) - len(set(copies)),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nnotifier failover: {json.dumps(figures)}")
    assert max(sums) <= 1
    assert len(copies) == len(set(copies)) == EMAILS + 1
    assert "lost the notifier lease" in first.log()
    assert "standing by" in first.log() and "standing by" in second.log()
