"""Rule 37 end to end: any well-formed address is invited and emailed; an internationalised
one travels with SMTPUTF8 and IDNA, or is reported undeliverable where the server cannot
take it; nothing crashes, nothing is lost silently.

Real events from the real invitation service (in-process), a real notifier, PostgreSQL,
RabbitMQ, and an aiosmtpd server with and without SMTPUTF8.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from services.invitation.eventstore import EventLog
from services.notifier.adapters.smtp import NO_SMTPUTF8
from shared.contract import EventEnvelope
from tests.support import wait_for

from .conftest import Invitations, SmtpSink

pytestmark = pytest.mark.integration


def tenant() -> str:
    return f"t-{uuid4().hex[:10]}"


def failures(invitations: Invitations, tenant_id: str) -> list[EventEnvelope]:
    log = EventLog("", store=invitations.service.store)
    return [
        e
        for e in log.read(0, 100_000)
        if e.event_type == "NotificationFailed" and e.tenant_id == tenant_id
    ]


def without_smtputf8(smtp: SmtpSink) -> None:
    smtp.stop()
    smtp.smtputf8 = False
    smtp.start()


@pytest.mark.parametrize(
    "address", ["someone@example.test", "printer@office.local", "nobody@nowhere.invalid"]
)
async def test_an_address_on_a_special_use_domain_is_invited_and_emailed(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, address: str
) -> None:
    reply = invitations.do("invite_user", tenant_id=tenant(), email=address, role="user")
    assert reply.result is not None
    await start_notifier()
    (email,) = await wait_for(lambda: smtp.to(address))
    assert email.kind == "invitation_automatic"
    assert email.rcpt_to == (address,)


async def test_an_internationalised_address_is_delivered_with_smtputf8_and_idna(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    invitations.do("invite_user", tenant_id=tenant(), email="José@Bücher.example", role="user")
    await start_notifier()
    (email,) = await wait_for(lambda: smtp.messages)
    # The local part in UTF-8 (SMTPUTF8), the domain in IDNA A-labels.
    assert email.rcpt_to == ("josé@xn--bcher-kva.example",)
    assert email.to == "josé@xn--bcher-kva.example"
    assert "Hello josé@bücher.example," in email.text


async def test_an_idn_domain_alone_needs_no_smtputf8(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    without_smtputf8(smtp)
    invitations.do("invite_user", tenant_id=tenant(), email="bob@bücher.example", role="user")
    await start_notifier()
    (email,) = await wait_for(lambda: smtp.messages)
    assert email.rcpt_to == ("bob@xn--bcher-kva.example",)
    assert email.to == "bob@xn--bcher-kva.example"


async def test_a_server_without_smtputf8_makes_it_a_reported_failure_and_nothing_else_stops(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    without_smtputf8(smtp)
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    invitations.do("invite_user", tenant_id=t, email="josé@bücher.example", role="user")
    invitations.do("invite_user", tenant_id=t, email="ann@example.com", role="user")
    await start_notifier()

    (failed,) = await wait_for(lambda: failures(invitations, t))
    assert failed.data["recipient"] == "josé@bücher.example"
    assert failed.data["reason"] == NO_SMTPUTF8
    (notice,) = await wait_for(lambda: smtp.of_kind("admin_notification_failed"))
    assert notice.to == "ops@acme.io"
    assert "does not support SMTPUTF8" in notice.text
    assert [m.to for m in smtp.of_kind("invitation_automatic")] == ["ann@example.com"]
