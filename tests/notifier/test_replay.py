"""`invitations replay notifier` rebuilds exactly the state live planning had built."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from services.invitation.eventstore import EventLog
from services.notifier.adapters.ledger import EmailLedger, open_ledger
from services.notifier.domain.delivery import Sent
from services.notifier.domain.planning import EVENT_TYPES
from services.notifier.mailbox import received
from services.notifier.planner import Planner
from services.notifier.replay import rebuild
from services.notifier.replay import reset as reset_for_replay
from shared.settings import ServiceSettings
from tests.fakes import FakeClock
from tests.support import POSTGRES, TEST_SECRETS_KEY, wait_for

from .conftest import Invitations, SmtpSink
from .test_delivery import seed, tenant

pytestmark = pytest.mark.integration


def history(invitations: Invitations, clock: FakeClock) -> None:
    """Invitations of every variant, then a resend, a revoke and a contractor's end date."""
    t = tenant()
    seed(invitations, t)
    invitations.do(
        "configure_tenant", tenant_id=t, contractor_enabled=True, temp_password_delivery="manual"
    )
    resent = invitations.do("invite_user", tenant_id=t, email="re@example.com", role="user")
    invitations.do("resend_invitation", tenant_id=t, invitation_id=resent.result["invitation_id"])
    gone = invitations.do("invite_user", tenant_id=t, email="gone@example.com", role="user")
    invitations.do("revoke_invitation", tenant_id=t, invitation_id=gone.result["invitation_id"])
    invitations.do(
        "invite_user", tenant_id=t, email="kim@example.com", role="contractor",
        access_expires_at=(clock.now + timedelta(days=3)).isoformat(),
    )  # fmt: skip
    invitations.do("remind_contractor_expiry", tenant_id=t, email="kim@example.com", offset="P7D")
    invitations.do(
        "invite_user", tenant_id=t, email="second-admin@example.com", role="administrator"
    )


def tables(database_url: str) -> tuple[list[Any], list[Any]]:
    """The notifier's state rows and email rows, in key order."""
    schema = database_url.rpartition("schema=")[2]
    with psycopg.connect(POSTGRES) as conn:
        state = conn.execute(f'SELECT key, value FROM "{schema}".notifier_state ORDER BY key')
        emails = conn.execute(
            f'SELECT message_key, status, position, context FROM "{schema}".notifier_emails '
            "ORDER BY message_key"
        )
        return state.fetchall(), emails.fetchall()


def plan_live(planner: Planner) -> None:
    while planner.plan_once() is not None:
        pass


def live_planner(invitations: Invitations, ledger: EmailLedger, **options: Any) -> Planner:
    log = EventLog("unused", store=invitations.service.store, event_types=EVENT_TYPES)
    return Planner(log, ledger, batch_size=3, **options)


def test_a_replay_rebuilds_the_state_and_rows_that_live_planning_wrote(
    invitations: Invitations, clock: FakeClock, database_url: str
) -> None:
    history(invitations, clock)
    ledger = open_ledger(database_url)
    try:
        plan_live(live_planner(invitations, ledger))
        planned = tables(database_url)
        assert planned[0] and planned[1]
        # None sent yet (the resend's new email among them): a replay keeps them to send.
        assert {row[1] for row in planned[1]} == {"pending"}

        settings = ServiceSettings(database_url=database_url, secrets_key=TEST_SECRETS_KEY)
        rebuild(settings, lambda position, last: None)

        assert tables(database_url) == planned  # statuses included: nothing re-planned
    finally:
        ledger.close()


def test_a_rebuild_that_another_planner_overtakes_reads_the_state_back(
    invitations: Invitations, clock: FakeClock, database_url: str
) -> None:
    history(invitations, clock)
    ledger = open_ledger(database_url)
    try:
        plan_live(live_planner(invitations, ledger))
        planned = tables(database_url)
        reset_for_replay(database_url)

        rebuilding = live_planner(invitations, ledger, resident_state={})
        assert rebuilding.plan_once() is not None
        assert live_planner(invitations, ledger).plan_once() is not None  # another planner
        plan_live(rebuilding)

        assert tables(database_url) == planned
    finally:
        ledger.close()


def send_all(ledger: EmailLedger) -> None:
    """What the notifier's sender records once every pending email went out."""
    claimed = ledger.claim(100, time.time())
    ledger.record(
        [
            Sent(e.key, f"sent before the replay: {e.kind}", time.time(), attempt=e.attempts)
            for e in claimed
        ]
    )


async def replay_while_a_resend_is_pending(
    invitations: Invitations,
    database_url: str,
    smtp: SmtpSink,
    start_notifier: Any,
    *,
    first_sent: bool,
) -> None:
    """Invite (its email sent or not), resend, replay while the resend's email is pending;
    then the notifier sends that email once, and nothing else. Run on each store."""
    t = tenant()

    def statuses() -> list[str]:
        return [d.status for d in received(database_url, tenant_id=t)["re@example.com"]]

    invitations.do("register_account", email="re@example.com")
    invited = invitations.do("invite_user", tenant_id=t, email="re@example.com", role="user")
    ledger = open_ledger(database_url)
    try:
        plan_live(live_planner(invitations, ledger))
        if first_sent:
            send_all(ledger)
        invitations.do(
            "resend_invitation", tenant_id=t, invitation_id=invited.result["invitation_id"]
        )
        plan_live(live_planner(invitations, ledger))
        first = "sent" if first_sent else "skipped"  # superseded by the resend
        assert statuses() == [first, "pending"]

        settings = ServiceSettings(database_url=database_url, secrets_key=TEST_SECRETS_KEY)
        rebuild(settings, lambda position, last: None)

        assert statuses() == [first, "pending"]
    finally:
        ledger.close()

    await start_notifier(database_url=database_url)
    await wait_for(lambda: statuses() == [first, "sent"])
    (email,) = smtp.messages
    assert email.to == "re@example.com" and email.subject.startswith("New link")


@pytest.mark.parametrize("first_sent", [True, False], ids=["first-sent", "first-unsent"])
async def test_a_replay_keeps_a_resends_pending_email_which_the_notifier_then_sends_once(
    invitations: Invitations,
    database_url: str,
    smtp: SmtpSink,
    start_notifier: Any,
    first_sent: bool,
) -> None:
    await replay_while_a_resend_is_pending(
        invitations, database_url, smtp, start_notifier, first_sent=first_sent
    )


def test_a_backlog_is_handed_to_sending_batch_by_batch_not_once_all_is_planned(
    invitations: Invitations, clock: FakeClock, database_url: str
) -> None:
    history(invitations, clock)
    ledger = open_ledger(database_url)
    try:
        planner = live_planner(invitations, ledger)  # 3 events a batch
        pending_at_each_call: list[int] = []

        def pending() -> int:
            _, emails = tables(database_url)
            return sum(1 for row in emails if row[1] == "pending")

        report = planner.plan_available(on_emails=lambda: pending_at_each_call.append(pending()))

        assert len(pending_at_each_call) > 1
        # Each call comes once its batch is committed: the rows are there to be claimed.
        assert pending_at_each_call == sorted(pending_at_each_call)
        assert 0 < pending_at_each_call[0] < report.emails
        assert pending_at_each_call[-1] == report.emails
    finally:
        ledger.close()
