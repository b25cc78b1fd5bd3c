"""Rule 35: an email that cannot be delivered becomes `NotificationFailed`, and the tenant's
administrators are told, once per failed invitation, without a loop.

Real events from the real invitation service (in-process, which the test's command relay
feeds with the notifier's `record_notification_failed`), a real notifier, PostgreSQL,
RabbitMQ and an SMTP server that refuses some recipients.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from services.invitation.eventstore import EventLog
from services.notifier.adapters.ledger import open_ledger
from services.notifier.runtime import NotifierRuntime
from services.notifier.settings import NotifierSettings
from shared.contract import EventEnvelope
from shared.secrets import TokenSigner
from tests.support import wait_for

from .conftest import CommandRelay, Invitations, SmtpSink

pytestmark = pytest.mark.integration

REFUSED = "550 5.1.1 no such mailbox"


def tenant() -> str:
    return f"t-{uuid4().hex[:10]}"


def failures(invitations: Invitations, tenant_id: str) -> list[EventEnvelope]:
    log = EventLog("", store=invitations.service.store)
    return [
        e
        for e in log.read(0, 100_000)
        if e.event_type == "NotificationFailed" and e.tenant_id == tenant_id
    ]


def join_as_administrator(invitations: Invitations, secrets_key: bytes, t: str, email: str) -> None:
    reply = invitations.do("invite_user", tenant_id=t, email=email, role="administrator")
    assert reply.result is not None
    token = TokenSigner(secrets_key).token(UUID(reply.result["invitation_id"]), 1)
    invitations.do("accept_invitation", tenant_id=t, token=token, email=email, actor=email)


def planned_kinds(settings: NotifierSettings, tenant_id: str) -> list[tuple[str, str, str]]:
    ledger = open_ledger(settings.database_url)
    try:
        rows = ledger.deliveries(tenant_id=tenant_id)
    finally:
        ledger.close()
    return [(r.recipient, r.kind, r.status) for r in rows]


async def caught_up(runtime: NotifierRuntime, invitations: Invitations) -> None:
    """Until the notifier has planned every event stored so far."""
    last = invitations.service.store.recorder.max_notification_id() or 0
    await wait_for(lambda: runtime.store.position() >= last, what="the notifier to catch up")


async def test_a_bounced_invitation_is_recorded_and_told_to_the_administrators_once(
    invitations: Invitations,
    secrets_key: bytes,
    smtp: SmtpSink,
    commands: CommandRelay,
    start_notifier: Any,
) -> None:
    t = tenant()
    join_as_administrator(invitations, secrets_key, t, "ann@acme.io")
    smtp.replies["typo@exmaple.com"] = REFUSED
    invited = invitations.do("invite_user", tenant_id=t, email="typo@exmaple.com", role="user")
    assert invited.result is not None
    invitation_id = invited.result["invitation_id"]
    runtime = await start_notifier()

    (failed,) = await wait_for(lambda: failures(invitations, t))
    assert failed.data["kind"] == "invitation_automatic"
    assert failed.data["recipient"] == "typo@exmaple.com"
    assert failed.data["invitation_id"] == invitation_id
    assert "550 5.1.1 no such mailbox" in failed.data["reason"]
    assert failed.actor == "service:notifier"
    (notice,) = await wait_for(lambda: smtp.of_kind("admin_notification_failed"))
    assert notice.to == "ann@acme.io"
    assert notice.subject == f"[{t}] Email not delivered: typo@exmaple.com"
    assert "550 5.1.1 no such mailbox" in notice.text
    assert "revoke the invitation and invite the right address" in notice.text

    # The same dead address again: recorded again, not told again.
    invitations.do("resend_invitation", tenant_id=t, invitation_id=invitation_id)
    await wait_for(lambda: len(failures(invitations, t)) == 2)
    await caught_up(runtime, invitations)
    assert len(smtp.of_kind("admin_notification_failed")) == 1
    assert [c["routing_key"] for c in commands.received].count("record_notification_failed") == 2


async def test_a_failed_notice_to_the_administrators_is_recorded_and_not_answered(
    invitations: Invitations,
    settings: NotifierSettings,
    smtp: SmtpSink,
    start_notifier: Any,
) -> None:
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    smtp.replies["ops@acme.io"] = REFUSED
    smtp.replies["bounce@example.com"] = REFUSED
    invitations.do("invite_user", tenant_id=t, email="bounce@example.com", role="user")
    runtime = await start_notifier()

    found = await wait_for(lambda: len(failures(invitations, t)) == 2 and failures(invitations, t))
    assert sorted(e.data["kind"] for e in found) == [
        "admin_notification_failed",
        "invitation_automatic",
    ]
    await caught_up(runtime, invitations)
    assert sorted(planned_kinds(settings, t)) == [
        ("bounce@example.com", "invitation_automatic", "failed"),
        ("ops@acme.io", "admin_notification_failed", "failed"),
    ]


async def test_retries_exhausted_is_a_failure_too(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("register_account", email="busy@example.com")
    smtp.replies["busy@example.com"] = "451 4.2.1 mailbox busy, try later"
    invitations.do("invite_user", tenant_id=t, email="busy@example.com", role="user")
    await start_notifier(notifier_max_attempts=2)

    (failed,) = await wait_for(lambda: failures(invitations, t))
    assert failed.data["kind"] == "invitation_linked"
    assert failed.data["reason"].startswith("gave up after 2 attempts")
    assert "451 4.2.1 mailbox busy" in failed.data["reason"]
