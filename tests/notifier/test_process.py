"""`python -m services.notifier` as a real process: kill -9, restart, queue, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import aio_pika
import pytest

from services.invitation.eventstore import EventLog
from services.notifier.adapters.ledger import open_ledger
from services.notifier.mailbox import received
from services.notifier.settings import NotifierSettings
from shared.ops_http import probe
from tests.support import RABBITMQ, ROOT, foreign_metrics, free_port, wait_for

from .conftest import PYTHON, CommandRelay, Invitations, SmtpSink, subprocess_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Spawn = Callable[..., Any]


@pytest.fixture
async def spawn(
    settings: NotifierSettings, commands: CommandRelay, tmp_path: Path
) -> AsyncIterator[Spawn]:
    """Starts `python -m services.notifier` processes; kills any left at teardown."""
    processes: list[asyncio.subprocess.Process] = []

    async def start(**extra_env: str) -> asyncio.subprocess.Process:
        log = (tmp_path / f"notifier-{len(processes)}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "services.notifier",
            cwd=ROOT,
            env=subprocess_env(settings, commands.exchange, **extra_env),
            stdout=log,
            stderr=log,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop_gracefully(process: asyncio.subprocess.Process) -> int:
    """SIGTERM; the contract gives 10 s to stop cleanly."""
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout=10)


async def consumers(queue_name: str) -> int:
    connection = await aio_pika.connect_robust(RABBITMQ)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(queue_name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return 0
        return int(queue.declaration_result.consumer_count or 0)


async def messages_in(queue_name: str) -> int:
    connection = await aio_pika.connect_robust(RABBITMQ)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def publish_to_queue(queue_name: str, body: bytes, message_id: str) -> None:
    connection = await aio_pika.connect_robust(RABBITMQ)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id, content_type="application/json"),
            routing_key=queue_name,
        )


async def test_kill_9_mid_burst_then_restart_loses_nothing_and_duplicates_nothing_unrecognisable(
    invitations: Invitations, smtp: SmtpSink, spawn: Spawn, database_url: str,
    settings: NotifierSettings,
) -> None:  # fmt: skip
    total = 300
    tenant = f"t-{uuid4().hex[:10]}"
    invitations.do("configure_tenant", tenant_id=tenant, admin_notification_emails=["ops@acme.io"])
    invitations.do(
        "mass_invite",
        tenant_id=tenant,
        invitees=[{"email": f"p{i}@example.com", "role": "user"} for i in range(total)],
    )
    expected = total + 1  # every invitee, and the administrators' mass-invite summary
    smtp.delay = 0.01  # keep the burst in flight long enough to kill it midway

    first = await spawn()
    await wait_for(lambda: len(smtp.messages) >= 60, timeout=30)
    first.kill()  # SIGKILL: no chance to record anything more
    await first.wait()
    at_kill = len(smtp.messages)
    assert at_kill < expected, "the burst finished before the kill; nothing was tested"
    # Claimed and unrecorded rows are at most `SMTP_CONNECTIONS * 4` (the claims); of
    # those, only an email transferred and not yet recorded can go out twice.
    window = 4 * settings.smtp_connections
    ledger = open_ledger(database_url)
    try:
        left_sending = ledger.status_counts().get("sending", 0)
    finally:
        ledger.close()
    assert left_sending <= window

    second = await spawn()
    await wait_for(lambda: len(set(m.message_id for m in smtp.messages)) == expected, timeout=60)
    # Every email arrived; wait until everything is recorded as sent and reported.
    await wait_for(
        lambda: all(d.status == "sent" for rows in received(database_url).values() for d in rows),
        timeout=20,
    )
    await wait_for(lambda: invitations.service.side_tables.count_sealed() == 0, timeout=20)
    assert await stop_gracefully(second) == 0

    # A duplicate is possible only for an email the SMTP server had accepted when the
    # process died before recording it: it was re-sent with the same Message-ID, and
    # its row shows the second attempt. Nothing else is ever sent twice.
    copies = Counter(m.message_id for m in smtp.messages)
    rows = {
        f"<{d.message_key}@vault.test>": d for rows in received(database_url).values() for d in rows
    }
    assert set(copies) == set(rows)
    duplicated = [mid for mid, n in copies.items() if n > 1]
    assert len(duplicated) <= left_sending
    assert all(copies[mid] == 2 and rows[mid].attempts >= 2 for mid in duplicated)
    assert len(duplicated) <= settings.notifier_max_unrecorded  # one, by default


async def test_the_events_queue_wakes_the_notifier_and_redelivery_sends_nothing_twice(
    invitations: Invitations,
    smtp: SmtpSink,
    spawn: Spawn,
    settings: NotifierSettings,
    database_url: str,
) -> None:
    queue = settings.notifier_queue
    port = free_port()
    # An event with no email, stored first: once the notifier's position shows it, its
    # start-up planning pass is over. With a poll period far longer than the test, only
    # the queue can make it plan again.
    invitations.do("configure_tenant", tenant_id=f"t-{uuid4().hex[:10]}", contractor_enabled=True)
    first = last_position(invitations)
    process = await spawn(NOTIFIER_POLL_INTERVAL="60", HTTP_PORT=str(port))
    await wait_for(lambda: consumers(queue), timeout=20)
    await wait_for(lambda: asyncio.to_thread(probe, "/readyz", port=port), timeout=10)
    await wait_for(lambda: notifier_state(database_url)[0] >= first, timeout=20)

    invitations.do("register_account", email="woken@example.com")
    invitations.do(
        "invite_user", tenant_id=f"t-{uuid4().hex[:10]}", email="woken@example.com", role="user"
    )
    assert notifier_state(database_url)[0] < last_position(invitations)
    envelopes = list(EventLog("unused", store=invitations.service.store).iterate())
    for envelope in envelopes:
        await publish_to_queue(queue, envelope.model_dump_json().encode(), str(envelope.event_id))
    await wait_for(lambda: smtp.to("woken@example.com"), timeout=5)
    metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
    assert 'notifier_emails_sent_total{kind="invitation_linked"} 1.0' in metrics
    assert 'notifier_event_to_email_seconds_count{kind="invitation_linked"} 1.0' in metrics
    assert foreign_metrics(metrics, "notifier_") == []

    # The same events again (a redelivery, a republish): nothing more is sent. Once the
    # queue is drained, every wake-up was taken; once nothing is pending or sending, what
    # they planned (nothing, or a duplicate) has gone out.
    for envelope in envelopes * 3:
        await publish_to_queue(queue, envelope.model_dump_json().encode(), str(envelope.event_id))
    await wait_for(lambda: _drained(queue), timeout=10)
    await wait_for(lambda: idle(database_url, last_position(invitations)), timeout=10)
    assert len(smtp.messages) == 1
    assert len(received(database_url)["woken@example.com"]) == 1

    # Not an event: dead-lettered to `<queue>.dead`, and the queue keeps flowing.
    await publish_to_queue(queue, b"not json at all", "junk-1")
    await wait_for(lambda: _count_is(f"{queue}.dead", 1), timeout=10)
    assert await stop_gracefully(process) == 0


async def test_sigterm_stops_within_ten_seconds_mid_burst_and_the_rest_follows_on_restart(
    invitations: Invitations, smtp: SmtpSink, spawn: Spawn
) -> None:
    tenant = f"t-{uuid4().hex[:10]}"
    invitations.do(
        "mass_invite",
        tenant_id=tenant,
        invitees=[{"email": f"s{i}@example.com", "role": "user"} for i in range(100)],
    )
    smtp.delay = 0.02
    first = await spawn()
    await wait_for(lambda: len(smtp.messages) >= 10, timeout=30)
    assert await stop_gracefully(first) == 0
    second = await spawn()
    await wait_for(lambda: len(smtp.messages) >= 100, timeout=60)
    assert await stop_gracefully(second) == 0
    # A graceful stop leaves nothing half-done: not a single email twice.
    assert set(Counter(m.message_id for m in smtp.messages).values()) == {1}


def last_position(invitations: Invitations) -> int:
    log = EventLog("unused", store=invitations.service.store)
    return max((e.position for e in log.iterate()), default=0)


def notifier_state(database_url: str) -> tuple[int, dict[str, int]]:
    """The notifier's planned position and its emails by status, from its tables."""
    ledger = open_ledger(database_url)
    try:
        return ledger.position(), ledger.status_counts()
    finally:
        ledger.close()


def idle(database_url: str, position: int) -> bool:
    planned, counts = notifier_state(database_url)
    return planned >= position and not counts.get("pending") and not counts.get("sending")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def _drained(queue: str) -> bool:
    return await messages_in(queue) == 0


async def _count_is(queue: str, count: int) -> bool:
    return await messages_in(queue) == count
