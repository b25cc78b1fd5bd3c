"""The notifier's leadership as a state machine: a fake lease, a fake clock, a fake mailer.

The real parts are the runtime, the sender and an SQLite email ledger; the lease is
scripted (held, lost, hung) and the clock is moved by the test, so what each state
allows is checked without waiting on a database or a real clock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.notifier.adapters.ledger import PlanStep, SQLiteLedger
from services.notifier.domain.emails import Kind, PlannedEmail
from services.notifier.metrics import Metrics
from services.notifier.planner import PlanReport
from services.notifier.runtime import NotifierRuntime
from services.notifier.sender import DeliveryEngine
from tests.fakes import FakeClock
from tests.support import wait_for

TTL = 0.3  # the lease's TTL: confirmed every 0.1 s (real time), judged on the fake clock


class ScriptedLease:
    """Answers as the test says; records every call, in order, in `calls`."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.acquire_answers: list[float | None] = []  # then None: another one leads
        self.held = True
        self.hung = threading.Event()  # set: confirm blocks (a connection that hangs)
        self.unblock = threading.Event()
        self.hanging = threading.Event()  # a confirmation is blocked right now
        self.released: list[bool] = []
        # The last leader's fence as the database tells it: raised if an exception.
        self.fence_answer: float | Exception = 60.0

    def acquire(self) -> float | None:
        self.calls.append("acquire")
        return self.acquire_answers.pop(0) if self.acquire_answers else None

    def fence_left(self) -> float:
        self.calls.append("fence_left")
        if isinstance(self.fence_answer, Exception):
            raise self.fence_answer
        return self.fence_answer

    def confirm(self) -> bool:
        self.calls.append("confirm")
        if self.hung.is_set():
            self.hanging.set()
            self.unblock.wait(5)
            return False
        return self.held

    def release(self, *, stopped_sending: bool) -> None:
        self.calls.append("release")
        self.released.append(stopped_sending)


class FakeMailer:
    def __init__(self, calls: list[str], transfers: list[str], server: FakeServer) -> None:
        self._calls = calls
        self._transfers = transfers
        self._server = server
        self._message = b""

    async def prepare(self, message: bytes, recipient: str) -> None:
        if not self._server.answers.is_set():
            self._server.hanging += 1
            await self._server.answers.wait()
        self._message = message

    async def transfer(self) -> None:
        self._calls.append("transfer")
        self._transfers.append(self._message.decode())
        await asyncio.sleep(0.005)  # a server that takes a moment

    async def abandon(self) -> None:
        self._message = b""

    async def close(self) -> None:
        return None


class FakeServer:
    """What the fake mailers share: clear `answers` and envelopes hang (never transfers:
    a transfer under way ends within its own bound)."""

    def __init__(self) -> None:
        self.answers = asyncio.Event()
        self.answers.set()
        self.hanging = 0


class FakeComposer:
    sender = "notifier@vault.test"

    def compose(self, row: Any, password: Any, now: float, attachments: Any) -> tuple[str, bytes]:
        return "subject", str(row.key).encode()


class NothingToPlan:
    def plan_available(self, should_stop: Callable[[], bool] = lambda: False) -> PlanReport:
        return PlanReport(0, 0, -1)


class IdleReports:
    def start(self) -> None:
        return None

    def wake(self) -> None:
        return None

    async def stop(self, grace: float = 2.0) -> None:
        return None


class Notifier:
    """A runtime over an SQLite ledger, with the scripted lease and a fake mailer."""

    def __init__(self, ledger: SQLiteLedger, *, standby_poll: float = 0.02) -> None:
        self.ledger = ledger
        self.calls: list[str] = []
        self.transfers: list[str] = []
        self.lease = ScriptedLease(self.calls)
        self.clock = FakeClock()
        self.metrics = Metrics()
        self.server = FakeServer()
        engine = DeliveryEngine(
            ledger,
            FakeComposer(),  # type: ignore[arg-type]
            passwords=None,  # type: ignore[arg-type]
            mailer_factory=lambda: FakeMailer(self.calls, self.transfers, self.server),
            connections=2,
            metrics=self.metrics,
            poll_interval=0.02,
        )
        self.runtime = NotifierRuntime(
            ledger,
            NothingToPlan(),  # type: ignore[arg-type]
            engine,
            IdleReports(),  # type: ignore[arg-type]
            metrics=self.metrics,
            lease=self.lease,
            lease_ttl=TTL,
            transfer_timeout=0.2,
            poll_interval=0.02,
            standby_poll=standby_poll,
            clock=self.clock.seconds,
        )

    @property
    def leading_gauge(self) -> float:
        return float(self.metrics.leading._value.get())

    def statuses(self) -> dict[str, int]:
        return self.ledger.status_counts()


def plan_emails(ledger: SQLiteLedger, count: int) -> list[str]:
    """`count` pending emails to administrators (no password, no link): their keys."""
    emails = [
        PlannedEmail(
            event_id=uuid4(),
            position=1,
            kind=Kind.ADMIN_INVITATION_ACCEPTED,
            recipient=f"admin{i}@example.com",
            locale="en",
            tenant_id="acme",
        )
        for i in range(count)
    ]
    ledger.plan(lambda position, load: PlanStep(position + 1, 1, emails))
    return [str(e.key) for e in emails]


@pytest.fixture
async def notifier(tmp_path: Path) -> AsyncIterator[Notifier]:
    ledger = SQLiteLedger(str(tmp_path / "notifier.db"))
    ledger.create_tables()
    made = Notifier(ledger)
    yield made
    made.lease.unblock.set()
    await made.runtime.stop(grace=0.5)
    ledger.close()


async def test_a_standby_polls_on_its_own_timer_and_wake_ups_never_make_it_ask(
    tmp_path: Path,
) -> None:
    ledger = SQLiteLedger(str(tmp_path / "notifier.db"))
    ledger.create_tables()
    standby = Notifier(ledger, standby_poll=60)  # longer than the test: one poll only
    standby.runtime.start()
    try:
        await wait_for(lambda: standby.calls == ["acquire"], what="the first poll")
        for _ in range(200):  # events published meanwhile: each wakes the notifier
            standby.runtime.wake()
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        assert standby.calls == ["acquire"]
        assert not standby.runtime.leading and standby.leading_gauge == 0
    finally:
        await standby.runtime.stop(grace=0.5)
        ledger.close()


async def test_a_standby_says_standing_by_once_however_often_it_polls(
    notifier: Notifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notifier.runtime.start()
    await wait_for(lambda: notifier.calls.count("acquire") >= 10, what="ten polls")
    lines = [r for r in caplog.records if "standing by" in r.getMessage()]
    assert len(lines) == 1
    assert notifier.leading_gauge == 0


async def test_a_leader_that_cannot_confirm_its_lease_stops_sending_records_what_it_sent_and_stands_by(  # noqa: E501
    notifier: Notifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    keys = plan_emails(notifier.ledger, 200)
    notifier.lease.acquire_answers = [0.0]
    notifier.runtime.start()
    await wait_for(lambda: len(notifier.transfers) >= 10, what="sending")
    assert notifier.runtime.leading and notifier.leading_gauge == 1

    notifier.lease.held = False  # its session ended: the database freed the lock
    await wait_for(lambda: notifier.lease.released, what="the lease given up")
    sent = list(notifier.transfers)
    assert not notifier.runtime.leading and notifier.leading_gauge == 0
    assert notifier.lease.released == [True]  # every send of its own had ended
    # It stands by again, and sends nothing more.
    await wait_for(lambda: notifier.calls[-1] == "acquire", what="standing by again")
    assert notifier.transfers == sent
    assert len(sent) < len(keys), "everything went out before the lease was lost"
    # What it had sent is recorded (the next leader sends none of it again); the rest
    # is pending again, for the next leader: nothing is left `sending`.
    assert notifier.statuses() == {"sent": len(sent), "pending": len(keys) - len(sent)}
    assert any("lost the notifier lease" in r.getMessage() for r in caplog.records)


async def test_a_deposed_leader_says_it_stopped_sending_without_waiting_for_hung_envelopes(
    notifier: Notifier,
) -> None:
    keys = plan_emails(notifier.ledger, 200)
    notifier.lease.acquire_answers = [0.0]
    notifier.runtime.start()
    await wait_for(lambda: len(notifier.transfers) >= 10, what="sending")
    notifier.server.answers.clear()  # the server stops answering envelopes
    await wait_for(lambda: notifier.server.hanging == 2, what="both connections hung")

    notifier.lease.held = False
    # An envelope delivers nothing: once no transfer can be under way (its bound), the
    # next leader is told, rather than after the SMTP timeout.
    await wait_for(lambda: notifier.lease.released, what="the lease given up")
    assert notifier.lease.released == [True]
    sent = len(notifier.transfers)
    # The hung envelopes' rows stay `sending`, for the next leader to send.
    assert notifier.statuses() == {"sent": sent, "sending": 2, "pending": len(keys) - sent - 2}


async def test_the_fence_stops_sends_once_the_last_confirmation_is_older_than_the_ttl(
    notifier: Notifier,
) -> None:
    plan_emails(notifier.ledger, 200)
    notifier.lease.acquire_answers = [0.0]
    notifier.runtime.start()
    await wait_for(lambda: len(notifier.transfers) >= 10, what="sending")

    # The lease's connection hangs: no confirmation comes back, and no error either.
    notifier.lease.hung.set()
    await wait_for(notifier.lease.hanging.is_set, what="a confirmation hanging")
    notifier.clock.advance(seconds=TTL)
    transfers_at_expiry = notifier.calls.count("transfer")
    # No transfer starts once the fence lapsed, before the runtime even notices.
    await wait_for(lambda: not notifier.runtime.leading, what="stepping down")
    assert notifier.calls.count("transfer") == transfers_at_expiry
    await wait_for(lambda: notifier.lease.released, what="the lease given up")
    assert notifier.statuses().get("sending", 0) == 0


async def test_a_new_leader_waits_out_the_last_leaders_fence_then_sends_what_it_left(
    notifier: Notifier,
) -> None:
    keys = plan_emails(notifier.ledger, 3)
    left = notifier.ledger.claim(3, notifier.clock.seconds())  # the last leader's claim
    assert len(left) == 3
    notifier.lease.acquire_answers = [0.25]  # until the last leader's sends are over
    notifier.runtime.start()
    await wait_for(lambda: len(notifier.transfers) == 3, what="the left emails sent")

    first_transfer = notifier.calls.index("transfer")
    # It confirmed its own lease while waiting, and sent only after.
    assert "confirm" in notifier.calls[:first_transfer]
    assert sorted(notifier.transfers) == sorted(keys)
    await wait_for(lambda: notifier.statuses() == {"sent": 3}, what="recorded")


async def test_a_standby_that_loses_the_lease_while_waiting_out_the_fence_never_sends(
    notifier: Notifier,
) -> None:
    plan_emails(notifier.ledger, 3)
    notifier.ledger.claim(3, notifier.clock.seconds())
    notifier.lease.acquire_answers = [5.0]
    notifier.lease.held = False
    notifier.runtime.start()
    await wait_for(lambda: notifier.lease.released, what="the lease given up")
    await wait_for(lambda: notifier.calls[-1] == "acquire", what="standing by again")
    assert notifier.transfers == []
    assert not notifier.runtime.leading
    # The rows the last leader left are not reclaimed by one that never led.
    assert notifier.statuses() == {"sending": 3}


async def test_a_new_leader_waiting_out_the_fence_starts_as_soon_as_the_last_leader_says_it_stopped(
    notifier: Notifier,
) -> None:
    keys = plan_emails(notifier.ledger, 3)
    notifier.ledger.claim(3, notifier.clock.seconds())  # the last leader's claim
    notifier.lease.acquire_answers = [60.0]  # longer than the test
    notifier.runtime.start()
    await wait_for(lambda: notifier.calls.count("fence_left") >= 3, what="polling the fence")
    assert notifier.transfers == []

    notifier.lease.fence_answer = 0.0  # the last leader stopped sending and said so
    await wait_for(lambda: len(notifier.transfers) == 3, what="the left emails sent")
    assert sorted(notifier.transfers) == sorted(keys)
    await wait_for(lambda: notifier.statuses() == {"sent": 3}, what="recorded")


async def test_a_new_leader_waits_out_the_whole_fence_of_a_last_leader_that_never_says_it_stopped(
    notifier: Notifier,
) -> None:
    plan_emails(notifier.ledger, 3)
    notifier.ledger.claim(3, notifier.clock.seconds())
    notifier.lease.acquire_answers = [2.0]
    notifier.lease.fence_answer = OSError("the database cannot say")  # counts as waiting
    notifier.runtime.start()
    await wait_for(lambda: notifier.calls.count("fence_left") >= 3, what="polling the fence")
    notifier.lease.fence_answer = 60.0  # it never said it stopped
    await wait_for(lambda: notifier.calls.count("fence_left") >= 6, what="polling the fence")
    assert notifier.transfers == []

    await wait_for(lambda: len(notifier.transfers) == 3, what="the left emails sent")
    first_transfer = notifier.calls.index("transfer")
    # The fence was polled all along, and our own lease confirmed right before sending.
    assert notifier.calls[:first_transfer].count("fence_left") >= 6
    assert "confirm" in notifier.calls[:first_transfer]
