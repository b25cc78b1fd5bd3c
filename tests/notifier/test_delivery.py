"""Exactly once, whatever happens: replays, rebuilds, SMTP outages, refusals."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from services.invitation.eventstore import EventLog
from services.notifier.adapters.ledger import OutboxEmail, PostgresLedger
from services.notifier.adapters.ledger.lease import PostgresLease
from services.notifier.domain.delivery import Outcome, Retry
from services.notifier.domain.planning import EVENT_TYPES as READ
from services.notifier.mailbox import received
from services.notifier.replay import rebuild
from services.notifier.replay import reset as reset_for_replay
from services.notifier.runtime import NotifierRuntime
from services.notifier.settings import NotifierSettings
from shared.contract import AcceptInvitation
from tests.support import POSTGRES, wait_for

from .conftest import Invitations, SmtpSink, stop_notifier

pytestmark = pytest.mark.integration


def tenant() -> str:
    return f"t-{uuid4().hex[:10]}"


def message_ids(smtp: SmtpSink) -> Counter[str]:
    return Counter(m.message_id for m in smtp.messages)


def seed(invitations: Invitations, t: str) -> None:
    """One of each invitation variant, plus administrator notices."""
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    invitations.do("register_account", email="linked@example.com")
    invitations.do("invite_user", tenant_id=t, email="linked@example.com", role="administrator")
    invitations.do("invite_user", tenant_id=t, email="auto@example.com", role="user")
    invitations.do(
        "invite_user", tenant_id=t, email="manual@example.com", role="user",
        temp_password_delivery="manual",
    )  # fmt: skip


async def caught_up(runtime: NotifierRuntime, invitations: Invitations) -> None:
    """The notifier planned everything in the store and has nothing left to send."""
    log = EventLog("unused", store=invitations.service.store)
    last = max((e.position for e in log.iterate()), default=0)  # internal events not included

    def done() -> bool:
        counts = runtime.store.status_counts()
        return (
            runtime.store.position() >= last
            and counts.get("pending", 0) == 0
            and counts.get("sending", 0) == 0
        )

    await wait_for(done)


async def test_wake_ups_and_a_replay_from_scratch_never_send_twice(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str
) -> None:
    seed(invitations, tenant())
    runtime = await start_notifier()
    await wait_for(lambda: len(smtp.messages) == 5)
    await caught_up(runtime, invitations)
    for _ in range(5):  # what a redelivered or republished event does: wake the planner
        runtime.wake()
    reset_for_replay(database_url)  # the whole log is planned again, state rebuilt
    runtime.wake()
    # Caught up means re-planned from position 0 with nothing pending or sending: a
    # duplicate would have been sent (and the sink holds it) before this returns.
    await caught_up(runtime, invitations)
    assert len(smtp.messages) == 5
    assert set(message_ids(smtp).values()) == {1}


async def test_a_notifier_refused_by_the_database_at_start_up_keeps_trying_then_sends(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, monkeypatch: Any
) -> None:
    seed(invitations, tenant())
    refusals = {"acquire": 2, "reclaim_interrupted": 1}
    for owner, name in ((PostgresLease, "acquire"), (PostgresLedger, "reclaim_interrupted")):
        real = getattr(owner, name)

        def refusing(self: Any, *, _name: str = name, _real: Any = real) -> Any:
            if refusals[_name]:
                refusals[_name] -= 1
                raise psycopg.OperationalError("sorry, too many clients already")
            return _real(self)

        monkeypatch.setattr(owner, name, refusing)
    await start_notifier()
    await wait_for(lambda: len(smtp.messages) == 5, timeout=20)
    assert refusals == {"acquire": 0, "reclaim_interrupted": 0}


async def test_a_fresh_notifier_on_an_existing_store_catches_up_and_rebuilds_its_state(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str,
    commands: Any,
) -> None:  # fmt: skip
    t = tenant()
    seed(invitations, t)
    # The notifier was never running: it catches up on everything the store holds.
    first = await start_notifier()
    await wait_for(lambda: len(smtp.messages) == 5)
    (link,) = [m for m in smtp.to("linked@example.com")]
    token = re.search(r"token=([A-Za-z0-9_-]+)", link.text)
    assert token
    invitations.handle(
        "accept_invitation",
        AcceptInvitation(
            command_id=uuid4(), actor="login", tenant_id=t, token=token.group(1),
            email="linked@example.com",
        ),
    )  # fmt: skip
    await wait_for(lambda: smtp.of_kind("admin_one_administrator"))
    await caught_up(first, invitations)
    await stop_notifier(first, None)
    sent_before = len(smtp.messages)

    # A new notifier with an empty state (the sent-records kept): nothing twice...
    reset_for_replay(database_url)
    second = await start_notifier()
    await caught_up(second, invitations)
    assert len(smtp.messages) == sent_before
    # ...and the rebuilt state knows the administrators: a new administrator invite
    # reaches the one accepted before the rebuild, and the extra address.
    invitations.do("invite_user", tenant_id=t, email="second@example.com", role="administrator")
    await wait_for(lambda: len(smtp.of_kind("admin_administrator_invited")) == 3)
    assert sorted(m.to for m in smtp.of_kind("admin_administrator_invited")) == [
        "linked@example.com",
        "ops@acme.io",
        "ops@acme.io",
    ]
    await caught_up(second, invitations)
    assert set(message_ids(smtp).values()) == {1}
    everyone = received(database_url, tenant_id=t)
    assert [d.kind for d in everyone["linked@example.com"]] == [
        "invitation_linked",
        "admin_one_administrator",
        "admin_administrator_invited",
    ]
    assert all(d.status == "sent" and d.subject for rows in everyone.values() for d in rows)


class StoreCalls:
    """The sender's claim and record transactions, counted around the real ones."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.claims: list[int] = []  # rows claimed, per claim that found any
        self.records: list[list[Outcome]] = []  # outcomes, per record transaction
        real_claim, real_record = PostgresLedger.claim, PostgresLedger.record

        def claim(ledger: PostgresLedger, limit: int, now: float) -> list[OutboxEmail]:
            rows = real_claim(ledger, limit, now)
            if rows:
                self.claims.append(len(rows))
            return rows

        def record(ledger: PostgresLedger, outcomes: Any) -> None:
            real_record(ledger, outcomes)
            self.records.append(list(outcomes))

        monkeypatch.setattr(PostgresLedger, "claim", claim)
        monkeypatch.setattr(PostgresLedger, "record", record)


def mass_invite(invitations: Invitations, t: str, count: int) -> list[str]:
    """`count` invitees (automatic passwords) and an administrator address: count + 1 emails."""
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    emails = [f"p{i}@example.com" for i in range(count)]
    invitations.do(
        "mass_invite", tenant_id=t, invitees=[{"email": e, "role": "user"} for e in emails]
    )
    return emails


async def test_a_burst_is_claimed_in_batches_and_each_outcome_recorded_before_its_next_send(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str,
    settings: NotifierSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    calls = StoreCalls(monkeypatch)
    expected = len(mass_invite(invitations, tenant(), 200)) + 1
    runtime = await start_notifier()
    await wait_for(lambda: len(smtp.messages) == expected, timeout=60)
    await caught_up(runtime, invitations)

    batch = runtime.engine.batch  # 8 with the tests' 4 connections
    assert sum(calls.claims) == expected  # each row claimed once
    # A claim takes at least a batch, except where the due rows run out (planning's
    # pages, the tail): far fewer transactions than emails.
    assert len(calls.claims) <= expected // batch + 3, calls.claims
    assert sum(len(r) for r in calls.records) == expected
    # Outcomes are recorded as they come (a group commit of what arrived meanwhile),
    # never waiting for a batch: a worker sends its next email only once its last one
    # is recorded, so no transaction holds more than one outcome per connection.
    assert max(len(r) for r in calls.records) <= settings.smtp_connections
    assert set(message_ids(smtp).values()) == {1}
    rows = [d for rows in received(database_url).values() for d in rows]
    assert {(d.status, d.attempts) for d in rows} == {("sent", 1)}


async def test_one_failure_in_a_batch_is_retried_alone_and_the_rest_of_its_batch_recorded(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    calls = StoreCalls(monkeypatch)
    emails = mass_invite(invitations, tenant(), 20)
    deferred, refused = emails[3], emails[5]
    replies = iter(["451 4.2.0 mailbox busy"])
    smtp.replies[deferred] = lambda: next(replies, None)
    smtp.replies[refused] = "550 5.1.1 no such mailbox"
    runtime = await start_notifier()
    delivered = [e for e in emails if e != refused]
    # Waited for by recipient, not by count: the administrators' notice of the refused
    # address may come in the same poll as the last of these.
    await wait_for(
        lambda: all(smtp.to(e) for e in delivered) and smtp.of_kind("admin_mass_invite_completed"),
        timeout=90,
        what="every deliverable invitee's email and the administrators' report",
    )
    await caught_up(runtime, invitations)

    rows = {d.recipient: d for rows in received(database_url).values() for d in rows}
    assert (rows[deferred].status, rows[deferred].attempts) == ("sent", 2)
    assert (rows[refused].status, rows[refused].attempts) == ("failed", 1)
    others = [d for r, d in rows.items() if r not in (deferred, refused)]
    assert len(others) == 19 and {(d.status, d.attempts) for d in others} == {("sent", 1)}
    (with_retry,) = [r for r in calls.records if any(isinstance(o, Retry) for o in r)]
    assert [o.key for o in with_retry if isinstance(o, Retry)] == [rows[deferred].message_key]
    assert set(message_ids(smtp).values()) == {1}


async def test_mail_server_down_then_up_delivers_everything_once(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str
) -> None:
    smtp.stop()
    seed(invitations, tenant())
    runtime = await start_notifier()

    def retried() -> bool:
        rows = [d for rows in received(database_url).values() for d in rows]
        return len(rows) == 5 and all(d.attempts >= 2 and d.last_error for d in rows)

    await wait_for(retried)
    assert runtime.metrics.retried.labels(kind="invitation_manual")._value.get() >= 1
    smtp.start()
    await wait_for(lambda: len(smtp.messages) == 5)
    await caught_up(runtime, invitations)
    assert set(message_ids(smtp).values()) == {1}


async def test_a_deferred_recipient_is_retried_without_holding_up_the_others(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str
) -> None:
    replies = iter(["451 4.2.0 mailbox busy", "421 4.3.2 try later"])
    smtp.replies["auto@example.com"] = lambda: next(replies, None)
    seed(invitations, tenant())
    runtime = await start_notifier()
    await wait_for(lambda: len(smtp.messages) == 5)
    assert len(smtp.to("auto@example.com")) == 1
    await caught_up(runtime, invitations)
    (row,) = received(database_url, recipient="auto@example.com")["auto@example.com"]
    assert (row.status, row.attempts) == ("sent", 3)


async def test_a_refused_recipient_is_recorded_failed_and_counted_not_retried(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    smtp.replies["manual@example.com"] = "550 5.1.1 no such mailbox"
    seed(invitations, tenant())
    runtime = await start_notifier()
    await wait_for(lambda: len(smtp.messages) == 4)
    await caught_up(runtime, invitations)
    (row,) = received(database_url, recipient="manual@example.com")["manual@example.com"]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error is not None and "550" in row.last_error
    assert runtime.metrics.failed.labels(kind="invitation_manual")._value.get() == 1
    assert any("refused" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert smtp.to("manual@example.com") == []


async def test_no_log_line_holds_a_password_or_a_link_token(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    seed(invitations, tenant())
    runtime = await start_notifier()
    (email,) = await wait_for(lambda: smtp.to("auto@example.com"))
    await caught_up(runtime, invitations)
    password = re.search(r"^ {4}(\S+)$", email.text, re.MULTILINE)
    token = re.search(r"token=([A-Za-z0-9_-]+)", email.text)
    assert password and token
    # Everything the notifier process logs, libraries included; not the test's SMTP
    # server ("mail.log"), whose very job is to receive the password.
    lines = [r.getMessage() for r in caplog.records if r.name != "mail.log"]
    assert lines  # the flow did log
    assert not [line for line in lines if password.group(1) in line or token.group(1) in line]


async def test_cli_replay_rebuilds_the_state_and_sends_nothing_from_history(
    invitations: Invitations,
    smtp: SmtpSink,
    start_notifier: Any,
    settings: NotifierSettings,
    database_url: str,
) -> None:
    t = tenant()
    seed(invitations, t)
    first = await start_notifier()
    await wait_for(lambda: len(smtp.messages) == 5)
    await caught_up(first, invitations)
    await stop_notifier(first, None)
    # A row lost (or an email a newer notifier would imply for old events): a replay
    # records it as handled in history, it does not send it now.
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        schema = database_url.rpartition("schema=")[2]
        conn.execute(
            f'DELETE FROM "{schema}".notifier_emails WHERE recipient = %s', ("auto@example.com",)
        )
    seen: list[tuple[int, int]] = []
    applied = rebuild(settings, lambda position, last: seen.append((position, last)))
    # Up to where the notifier had got to (a later TempPasswordDelivered is left to it).
    until = seen[-1][1]
    history = EventLog("unused", store=invitations.service.store).iterate()
    # Every event planning reads, up to there (the others are not even fetched).
    assert applied == len([e for e in history if e.position <= until and e.event_type in READ])
    assert seen[0][0] == 0 and seen[-1][0] == until
    second = await start_notifier()
    invitations.do("invite_user", tenant_id=t, email="later@example.com", role="administrator")
    await wait_for(lambda: smtp.to("later@example.com"))
    await caught_up(second, invitations)
    (replayed,) = received(database_url, recipient="auto@example.com")["auto@example.com"]
    assert replayed.status == "replayed"
    assert len(smtp.to("auto@example.com")) == 1  # only the original
    # The rebuilt state still knows the extra administrator address.
    assert [m.kind for m in smtp.to("ops@acme.io")].count("admin_administrator_invited") == 2
