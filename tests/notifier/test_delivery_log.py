"""What the notifier logs of its emails: a line each, and a summary while SMTP is away."""

from __future__ import annotations

import logging
import re
from typing import Any
from uuid import uuid4

import pytest

from services.notifier.adapters.ledger import OutboxEmail
from services.notifier.delivery_log import DeliveryLog
from tests.fakes import FakeClock
from tests.support import wait_for

from .conftest import Invitations, SmtpSink


def row(recipient: str = "jane.doe@example.com") -> OutboxEmail:
    return OutboxEmail(
        key=uuid4(), event_id=uuid4(), position=7, kind="invitation_linked",
        recipient=recipient, locale="en", tenant_id="acme", context={}, invitation_id=None,
        link_generation=None, temp_password_id=None, attempts=1, last_error=None,
    )  # fmt: skip


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("services.notifier")]


def test_a_sent_email_is_one_line_with_its_kind_domain_and_message_id_never_the_local_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    DeliveryLog().sent(row(), "<k@vault.test>")
    (line,) = messages(caplog)
    assert "invitation_linked" in line and "example.com" in line and "<k@vault.test>" in line
    assert "jane.doe" not in line


def test_an_unreachable_server_is_told_once_then_summarised_every_period_then_its_return(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    said = DeliveryLog(every=30, clock=clock.seconds)
    for _ in range(50):  # every retry of every email while the server is away
        said.server_unreachable("ConnectionRefusedError: [Errno 111]")
    assert len(messages(caplog)) == 1 and not said.summary_due()
    clock.advance(seconds=31)
    assert said.summary_due()
    said.summarise(waiting=840)
    assert not said.summary_due()
    clock.advance(seconds=30)
    said.summarise(waiting=845)
    said.server_reachable()
    said.server_reachable()
    assert messages(caplog)[1:] == [
        "SMTP unreachable for 31s; 840 emails waiting",
        "SMTP unreachable for 61s; 845 emails waiting",
        "SMTP reachable again after 61s",
    ]


@pytest.mark.integration
async def test_the_notifier_logs_each_email_and_summarises_an_smtp_outage_without_a_line_per_retry(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO)
    tenant = f"t-{uuid4().hex[:10]}"
    invitations.do("configure_tenant", tenant_id=tenant, admin_notification_emails=["ops@acme.io"])
    smtp.stop()
    invitations.do(
        "mass_invite",
        tenant_id=tenant,
        invitees=[{"email": f"quiet{i}@example.com", "role": "user"} for i in range(5)],
    )
    await start_notifier(notifier_unreachable_log_every=0.3)
    summary = re.compile(r"^SMTP unreachable for \d+s; (\d+) emails waiting$")

    def counts() -> list[int]:
        return [int(found[1]) for m in messages(caplog) if (found := summary.match(m))]

    # Each summary counts what waits at that moment (planning may still be adding
    # emails): once all six are planned and refused, a summary says six.
    await wait_for(lambda: len(counts()) >= 2 and counts()[-1] == 6, what="summaries to six")
    assert all(0 < count <= 6 for count in counts())
    assert not [m for m in messages(caplog) if m.startswith("retrying")]  # no line per retry

    smtp.start()
    await wait_for(lambda: len(smtp.messages) == 6, what="every email, once SMTP is back")
    await wait_for(
        lambda: len([m for m in messages(caplog) if m.startswith("sent ")]) == 6,
        what="a line per email",
    )
    lines = [m for m in messages(caplog) if m.startswith("sent ")]
    ids = {m.message_id for m in smtp.messages}
    assert {re.search(r"Message-ID (\S+)", line).group(1) for line in lines} == ids  # type: ignore[union-attr]
    assert all("example.com" in line or "acme.io" in line for line in lines)
    assert not [line for line in messages(caplog) if "quiet" in line or "ops@" in line]
    assert any(m.startswith("SMTP reachable again") for m in messages(caplog))
