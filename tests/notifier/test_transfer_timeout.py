"""A transfer (DATA) is bounded on its own, shorter than the SMTP timeout: a server that
stalls after the message has it cut off at that bound, and the email, whose outcome is
then unknown, is sent again later with the same Message-ID, never recorded as sent or
failed for it. That bound, not the SMTP timeout, is what a new leader waits out."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from services.notifier.adapters.ledger.rows import Delivery
from services.notifier.adapters.smtp import SmtpConfig, SmtpMailer
from services.notifier.errors import TransferUnsettledError
from services.notifier.mailbox import received
from tests.support import wait_for

from .conftest import Invitations, SmtpSink

pytestmark = pytest.mark.integration

STALL = 3.0  # far beyond the transfer bound, well within the SMTP timeout


def message(recipient: str) -> bytes:
    return (
        f"From: notifier@vault.test\r\nTo: {recipient}\r\nSubject: hello\r\n"
        f"Message-ID: <{uuid4().hex}@vault.test>\r\n\r\nhello\r\n"
    ).encode()


async def test_a_transfer_that_stalls_past_its_bound_is_cut_off_as_unsettled(
    smtp: SmtpSink,
) -> None:
    mailer = SmtpMailer(
        SmtpConfig("127.0.0.1", smtp.port, "notifier@vault.test", timeout=30, transfer_timeout=0.3)
    )
    smtp.stalls = [STALL]
    try:
        await mailer.prepare(message("a@example.com"), "a@example.com")
        # Unsettled, not "unreachable": the bound cut it, long before the SMTP timeout.
        with pytest.raises(TransferUnsettledError):
            await mailer.transfer()
        # The connection was dropped: the next email starts on a fresh one.
        await mailer.prepare(message("b@example.com"), "b@example.com")
        await mailer.transfer()
        await wait_for(lambda: smtp.to("b@example.com"))
    finally:
        await mailer.close()


async def test_an_email_whose_transfer_was_cut_off_is_sent_again_with_the_same_message_id(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str
) -> None:
    tenant = f"t-{uuid4().hex[:10]}"
    invitations.do("configure_tenant", tenant_id=tenant)
    smtp.stalls = [STALL]  # the first DATA: the server takes the email, then hangs
    runtime = await start_notifier(notifier_transfer_timeout=0.5)
    invitations.do("invite_user", tenant_id=tenant, email="slow@example.com", role="user")
    runtime.wake()

    def retried() -> Delivery | None:
        rows = received(database_url, recipient="slow@example.com").get("slow@example.com", [])
        return next((row for row in rows if row.last_error), None)

    row = await wait_for(retried)
    assert row.status not in ("sent", "failed")  # unknown: neither
    assert row.last_error is not None and "cut off" in row.last_error

    def sent() -> bool:
        rows = received(database_url, recipient="slow@example.com")["slow@example.com"]
        return rows[0].status == "sent"

    await wait_for(sent)
    # The server had kept the stalled copy: the duplicate bears the same Message-ID.
    first, second = smtp.to("slow@example.com")
    assert first.message_id == second.message_id
