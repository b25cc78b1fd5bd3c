"""Every email variant reaches a real SMTP server, from real events in the real store."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.invitation.domain.ids import account_uuid
from services.notifier.mailbox import received
from shared.contract import AcceptInvitation
from shared.secrets import TempPasswordHasher
from tests.fakes import FakeClock
from tests.support import wait_for

from .conftest import CommandRelay, Invitations, SmtpSink

pytestmark = pytest.mark.integration


def tenant() -> str:
    return f"t-{uuid4().hex[:10]}"


def token_of(text: str) -> str:
    match = re.search(r"https://vault\.test/accept\?token=([A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


def password_of(text: str) -> str:
    match = re.search(r"^ {4}(\S+)$", text, re.MULTILINE)
    assert match, text
    return match.group(1)


def address_in(text: str) -> str:
    found = re.search(r"[^\s:]+@\S+", text)
    assert found, text
    return found.group(0)


def invite(
    invitations: Invitations, t: str, email: str, role: str = "user", **fields: Any
) -> dict[str, Any]:
    reply = invitations.do("invite_user", tenant_id=t, email=email, role=role, **fields)
    assert reply.result is not None
    return reply.result


async def test_existing_account_gets_the_linked_invitation_and_its_link_accepts(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("register_account", email="bob@example.com")
    invite(invitations, t, "bob@example.com")
    await start_notifier()
    (email,) = await wait_for(lambda: smtp.to("bob@example.com"))
    assert email.kind == "invitation_linked"
    assert f"join {t} on Cloud Vault" in email.subject
    assert "Sign in with it" in email.text
    token = token_of(email.text)
    reply = invitations.handle(
        "accept_invitation",
        AcceptInvitation(
            command_id=uuid4(), actor="login", tenant_id=t, token=token, email="bob@example.com"
        ),
    )
    assert reply.status == "accepted"


async def test_automatic_invitation_carries_the_real_password_then_the_sealed_copy_is_destroyed(
    invitations: Invitations, smtp: SmtpSink, commands: CommandRelay, start_notifier: Any
) -> None:
    t = tenant()
    invite(invitations, t, "new@example.com")
    account = invitations.service.store.repository.get(account_uuid("new@example.com"))
    temp_password_id = account.temp_password_id
    assert invitations.open_sealed(temp_password_id) is not None
    await start_notifier()
    (email,) = await wait_for(lambda: smtp.to("new@example.com"))
    assert email.kind == "invitation_automatic"
    password = password_of(email.text)
    assert TempPasswordHasher().verify(account.temp_hash, password)
    assert "change it when you first sign in" in email.text
    # Rule 13: the notifier reported the delivery, and the sealed copy is gone for good.
    # The relay lists a command once it is handled (the copy can be gone a moment before).
    await wait_for(lambda: commands.received, what="the delivery report relayed")
    assert [c["routing_key"] for c in commands.received] == ["record_temp_password_delivered"]
    assert commands.received[0]["temp_password_id"] == str(temp_password_id)
    assert invitations.open_sealed(temp_password_id) is None


async def test_manual_invitation_warns_the_invitee_and_tells_the_administrators(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    invite(invitations, t, "man@example.com", temp_password_delivery="manual", locale="fr")
    await start_notifier()
    (email,) = await wait_for(lambda: smtp.to("man@example.com"))
    assert email.kind == "invitation_manual"
    assert "Vous recevrez votre mot de passe temporaire séparément" in email.text
    assert email.message["Content-Language"] == "fr"
    (notice,) = await wait_for(lambda: smtp.to("ops@acme.io"))
    assert notice.kind == "admin_manual_passwords_pending"
    assert "man@example.com" in notice.text and "retrieve_temp_password" in notice.text


async def test_contractor_gets_read_only_terms_reminders_and_the_end_notice(
    invitations: Invitations, smtp: SmtpSink, clock: FakeClock, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do(
        "configure_tenant",
        tenant_id=t,
        contractor_enabled=True,
        admin_notification_emails=["ops@acme.io"],
    )
    end = clock.now + timedelta(days=10)
    invitations.do("register_account", email="kim@example.com")
    invite(invitations, t, "kim@example.com", role="contractor", access_expires_at=end.isoformat())
    await start_notifier()
    (invitation,) = await wait_for(lambda: smtp.to("kim@example.com"))
    assert "read-only" in invitation.text and str(end.year) in invitation.text

    clock.advance(timedelta(days=3, seconds=1))
    invitations.do("remind_contractor_expiry", tenant_id=t, email="kim@example.com", offset="P7D")
    clock.advance(timedelta(days=7))
    invitations.do("expire_contractor", tenant_id=t, email="kim@example.com")
    await wait_for(lambda: len(smtp.to("kim@example.com")) == 3)
    # Sent concurrently: the order of arrival is not the order of events.
    by_kind = {m.kind: m for m in smtp.to("kim@example.com")}
    assert sorted(by_kind) == [
        "contractor_access_ended",
        "contractor_expiry_reminder",
        "invitation_linked",
    ]
    assert "ends in 7 days" in by_kind["contractor_expiry_reminder"].text
    await wait_for(lambda: len(smtp.to("ops@acme.io")) == 2)
    assert sorted(m.kind for m in smtp.to("ops@acme.io")) == [
        "admin_contractor_expired",
        "admin_contractor_expiry_approaching",
    ]


async def test_resent_invitation_has_a_new_link_and_a_new_password(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    result = invite(invitations, t, "re@example.com")
    await start_notifier()
    (first,) = await wait_for(lambda: smtp.to("re@example.com"))
    invitations.do("resend_invitation", tenant_id=t, invitation_id=result["invitation_id"])
    await wait_for(lambda: len(smtp.to("re@example.com")) == 2)
    second = smtp.to("re@example.com")[1]
    assert second.kind == "invitation_automatic"
    assert second.subject.startswith("New link and temporary password")
    assert token_of(second.text) != token_of(first.text)
    assert password_of(second.text) != password_of(first.text)
    account = invitations.service.store.repository.get(account_uuid("re@example.com"))
    assert TempPasswordHasher().verify(account.temp_hash, password_of(second.text))


async def test_administrators_are_the_accepted_ones_plus_the_configured_addresses(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    for person in ("ann@acme.io", "ben@acme.io", "cat@example.com"):
        invitations.do("register_account", email=person)
    await start_notifier()

    def accept(email: str) -> None:
        (message,) = [m for m in smtp.to(email) if m.kind == "invitation_linked"]
        invitations.handle(
            "accept_invitation",
            AcceptInvitation(
                command_id=uuid4(),
                actor="login",
                tenant_id=t,
                token=token_of(message.text),
                email=email,
            ),
        )

    invitations.do("invite_user", tenant_id=t, email="ann@acme.io", role="administrator")
    await wait_for(lambda: smtp.to("ann@acme.io"))
    accept("ann@acme.io")
    await wait_for(lambda: smtp.of_kind("admin_one_administrator"))
    invitations.do("invite_user", tenant_id=t, email="ben@acme.io", role="administrator")
    await wait_for(lambda: smtp.to("ben@acme.io"))
    accept("ben@acme.io")
    invitations.do("invite_user", tenant_id=t, email="cat@example.com", role="user")
    await wait_for(lambda: smtp.to("cat@example.com"))
    accept("cat@example.com")
    await wait_for(lambda: len(smtp.of_kind("admin_invitation_accepted")) == 6)

    def received(kind: str) -> list[tuple[str, str]]:
        """(recipient, the person the notice is about: the address in its subject)."""
        return sorted((m.to, address_in(m.subject)) for m in smtp.of_kind(kind))

    assert [m.to for m in smtp.of_kind("admin_one_administrator")] == ["ann@acme.io"]
    assert received("admin_administrator_invited") == [
        ("ann@acme.io", "ben@acme.io"),
        ("ops@acme.io", "ann@acme.io"),
        ("ops@acme.io", "ben@acme.io"),
    ]
    assert received("admin_invitation_accepted") == [
        ("ann@acme.io", "ben@acme.io"),
        ("ann@acme.io", "cat@example.com"),
        ("ben@acme.io", "cat@example.com"),
        ("ops@acme.io", "ann@acme.io"),
        ("ops@acme.io", "ben@acme.io"),
        ("ops@acme.io", "cat@example.com"),
    ]


async def test_mass_invite_tells_the_administrators_its_counts_and_where_the_passwords_are(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    reply = invitations.do(
        "mass_invite",
        tenant_id=t,
        temp_password_delivery="manual",
        invitees=[
            {"email": "m1@example.com", "role": "user"},
            {"email": "m2@example.com", "role": "user"},
            {"email": "not-an-email", "role": "user"},
        ],
    )
    assert reply.result is not None
    batch_id = reply.result["batch_id"]
    await start_notifier()
    await wait_for(lambda: len(smtp.to("ops@acme.io")) == 2)
    passwords, summary = sorted(smtp.to("ops@acme.io"), key=lambda m: m.kind)
    assert summary.kind == "admin_mass_invite_completed"
    assert summary.subject == f"[{t}] Mass invite finished: 2 invited, 1 refused"
    assert passwords.kind == "admin_manual_passwords_pending"
    assert f"invitations report {batch_id} --temp-passwords DIR" in passwords.text
    await wait_for(lambda: smtp.to("m1@example.com") and smtp.to("m2@example.com"))
    assert {m.kind for m in smtp.to("m1@example.com") + smtp.to("m2@example.com")} == {
        "invitation_manual"
    }
    assert not list(passwords.message.iter_attachments())


async def test_the_finished_mass_invite_carries_its_report_as_csv_without_passwords(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    invitees = ["+plus@example.com", "=sum@example.com", "auto@example.com", "bad"]
    reply = invitations.do(
        "mass_invite", tenant_id=t, invitees=[{"email": e, "role": "user"} for e in invitees]
    )
    assert reply.result is not None
    await start_notifier()
    summary = await wait_for(lambda: smtp.of_kind("admin_mass_invite_completed"))
    await wait_for(lambda: all(smtp.to(e) for e in invitees[:3]))

    (attachment,) = summary[0].message.iter_attachments()
    assert attachment.get_filename() == f"mass-invite-{reply.result['batch_id']}.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert [r["email"] for r in rows] == ["'+plus@example.com", "'=sum@example.com", *invitees[2:]]
    assert [r["status"] for r in rows] == ["invited", "invited", "invited", "refused"]
    assert rows[3]["error_code"] == "invalid_email"
    assert all(not v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    # No password: what the invitees received is nowhere in the report.
    for invitee in invitees[:3]:
        assert password_of(smtp.to(invitee)[0].text) not in attachment.get_content()


async def test_an_invitation_email_without_a_password_is_recorded_as_sent(
    invitations: Invitations, smtp: SmtpSink, commands: CommandRelay, start_notifier: Any
) -> None:
    t = tenant()
    invitations.do("register_account", email="known@example.com")
    invitation_id = invite(invitations, t, "known@example.com")["invitation_id"]
    await start_notifier()
    await wait_for(lambda: smtp.to("known@example.com"))

    await wait_for(
        lambda: [c for c in commands.received if c["routing_key"] == "record_invitation_email_sent"]
    )
    found = invitations.do("get_invitation", tenant_id=t, invitation_id=invitation_id)
    assert found.result is not None
    assert found.result["invitation"]["invitation_email"] == "sent"


async def test_a_temporary_password_gone_before_sending_is_never_sent_empty(
    invitations: Invitations,
    smtp: SmtpSink,
    clock: FakeClock,
    start_notifier: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = tenant()
    invitations.do("configure_tenant", tenant_id=t, admin_notification_emails=["ops@acme.io"])
    invite(invitations, t, "late@example.com")
    account = invitations.service.store.repository.get(account_uuid("late@example.com"))
    # The notifier was down for longer than the password's TTL.
    clock.advance(timedelta(days=8))
    invitations.do(
        "expire_temp_password",
        email="late@example.com",
        temp_password_id=str(account.temp_password_id),
    )
    runtime = await start_notifier()
    (notice,) = await wait_for(lambda: smtp.to("ops@acme.io"))
    assert notice.kind == "admin_temp_password_expired"
    await wait_for(lambda: runtime.store.status_counts().get("skipped") == 1)
    assert smtp.to("late@example.com") == []
    assert any("no longer available" in r.getMessage() for r in caplog.records)


async def test_an_invitation_revoked_or_resent_before_its_email_went_out_never_sends_a_dead_link(
    invitations: Invitations, smtp: SmtpSink, start_notifier: Any, database_url: str
) -> None:
    t = tenant()
    for email in ("gone@example.com", "again@example.com", "late@example.com"):
        invitations.do("register_account", email=email)
    gone = invite(invitations, t, "gone@example.com")
    again = invite(invitations, t, "again@example.com")
    late = invite(invitations, t, "late@example.com")
    # Revoked before the notifier even planned it: never planned at all.
    invitations.do("revoke_invitation", tenant_id=t, invitation_id=late["invitation_id"])
    # The others are planned, but the mail server is down: they wait for a retry.
    smtp.stop()
    await start_notifier(notifier_retry_base_delay=60, notifier_retry_max_delay=60)

    def waiting() -> bool:
        rows = received(database_url, tenant_id=t)
        return all(
            rows.get(e) and rows[e][0].status == "pending" and rows[e][0].attempts == 1
            for e in ("gone@example.com", "again@example.com")
        )

    await wait_for(waiting)
    smtp.start()
    invitations.do("revoke_invitation", tenant_id=t, invitation_id=gone["invitation_id"])
    invitations.do("resend_invitation", tenant_id=t, invitation_id=again["invitation_id"])
    (email,) = await wait_for(lambda: smtp.to("again@example.com"))
    assert email.subject.startswith("New link")

    def statuses() -> dict[str, list[str]]:
        return {
            e: [d.status for d in rows] for e, rows in received(database_url, tenant_id=t).items()
        }

    # The sink has the email before the notifier records it `sent` (it is `sending` until
    # then): wait for the rows to be what is asserted, not merely for nothing pending.
    settled = {"gone@example.com": ["skipped"], "again@example.com": ["skipped", "sent"]}
    await wait_for(lambda: statuses() == settled, what=f"the rows to settle as {settled}")
    assert smtp.to("gone@example.com") == [] and smtp.to("late@example.com") == []
