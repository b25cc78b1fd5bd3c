"""Rendering every email in both languages, the MIME message, and the retry policy."""

from __future__ import annotations

import email
import email.policy
import random
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import pytest

from services.notifier.adapters.rendering import (
    RenderedEmail,
    Renderer,
    build_message,
    format_duration,
    format_moment,
    message_id,
)
from services.notifier.domain.delivery import RetryPolicy
from services.notifier.domain.emails import SUPPORTED_LOCALES, Kind, message_key

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
KEY = UUID("12345678-1234-5678-1234-567812345678")

CONTEXTS: dict[Kind, dict[str, Any]] = {
    **{
        kind: {
            "email": "bob@x.test",
            "display_name": "Bob <Builder>",
            "role": "contractor",
            "inviter": "ann@acme.test",
            "access_expires_at": "2030-03-01T12:00:00+00:00",
            "invitation_expires_at": "2030-01-14T09:00:00+00:00",
            "resent": False,
            "temp_password_valid_until": "2030-01-14T09:00:00+00:00",
        }
        for kind in (Kind.INVITATION_LINKED, Kind.INVITATION_AUTOMATIC, Kind.INVITATION_MANUAL)
    },
    Kind.CONTRACTOR_EXPIRY_REMINDER: {
        "email": "kim@x.test", "display_name": None,
        "access_expires_at": "2030-03-01T12:00:00+00:00", "offset_seconds": 7 * 86400,
    },
    Kind.CONTRACTOR_ACCESS_ENDED: {
        "email": "kim@x.test", "display_name": None,
        "access_expires_at": "2030-03-01T12:00:00+00:00", "expired_at": "2030-03-01T12:00:05+00:00",
    },
    Kind.ADMIN_ADMINISTRATOR_INVITED: {
        "email": "ben@acme.test", "display_name": "Ben", "inviter": "ann@acme.test",
        "invitation_expires_at": "2030-01-14T09:00:00+00:00",
    },
    Kind.ADMIN_INVITATION_ACCEPTED: {
        "email": "ben@acme.test", "display_name": None, "role": "user",
        "accepted_at": "2030-01-08T10:30:00+00:00",
    },
    Kind.ADMIN_CONTRACTOR_EXPIRY_APPROACHING: {
        "email": "kim@x.test", "display_name": "Kim",
        "access_expires_at": "2030-03-01T12:00:00+00:00", "offset_seconds": 86400,
    },
    Kind.ADMIN_CONTRACTOR_EXPIRED: {
        "email": "kim@x.test", "display_name": "Kim",
        "access_expires_at": "2030-03-01T12:00:00+00:00", "expired_at": "2030-03-01T12:00:05+00:00",
    },
    Kind.ADMIN_TEMP_PASSWORD_EXPIRED: {
        "email": "bob@x.test", "display_name": None, "invitation_id": str(KEY),
    },
    Kind.ADMIN_MASS_INVITE_COMPLETED: {
        "batch_id": str(KEY), "invited": 9998, "refused": 2, "manual": 9998,
    },
    Kind.ADMIN_MANUAL_PASSWORDS_PENDING: {
        "count": 9998, "batch_id": str(KEY), "email": None, "display_name": None,
        "temp_password_id": None, "resent": False,
    },
    Kind.ADMIN_ONE_ADMINISTRATOR: {"email": "ann@acme.test"},
    Kind.MEMBER_REMOVED: {
        "email": "bob@x.test", "display_name": "Bob", "role": "user",
        "removed_at": "2030-01-08T10:30:00+00:00",
    },
    Kind.MEMBER_ROLE_CHANGED: {
        "email": "bob@x.test", "display_name": "Bob", "role": "contractor",
        "previous_role": "user", "access_expires_at": "2030-03-01T12:00:00+00:00",
    },
    Kind.ADMIN_NOTIFICATION_FAILED: {
        "email": "bob@x.test", "display_name": "Bob", "role": "user",
        "reason": "550 5.1.1 mailbox unknown", "failed_kind": "invitation_automatic",
        "about": "invitation", "invitation_id": str(KEY),
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer("Cloud Vault")


def render(renderer: Renderer, kind: Kind, locale: str, **extra: Any) -> Any:
    context = {"tenant_id": "acme", **CONTEXTS[kind], **extra}
    link = "https://vault.test/accept?token=T0KEN" if kind.value.startswith("invitation") else None
    password = "Xy7#pQ9!mN2$kL4@wZ8&" if kind == Kind.INVITATION_AUTOMATIC else None
    return renderer.render(kind, locale, context, link=link, password=password)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", list(Kind))
def test_every_email_renders_a_subject_a_text_and_an_html_part(
    renderer: Renderer, kind: Kind, locale: str
) -> None:
    email = render(renderer, kind, locale)
    assert email.subject and "\n" not in email.subject
    assert "acme" in email.subject or "acme" in email.text
    assert email.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in email.html
    assert "{{" not in email.text and "{{" not in email.html


def test_automatic_invitation_carries_the_password_the_link_and_the_change_reminder(
    renderer: Renderer,
) -> None:
    email = render(renderer, Kind.INVITATION_AUTOMATIC, "en")
    for part in (email.text, email.html):
        assert "https://vault.test/accept?token=T0KEN" in part
        assert "change it when you first sign in" in part
    assert "Xy7#pQ9!mN2$kL4@wZ8&" in email.text
    assert "Xy7#pQ9!mN2$kL4@wZ8&amp;" in email.html  # escaped in HTML, intact once read


def test_contractor_invitation_states_read_only_access_and_its_end(renderer: Renderer) -> None:
    english = render(renderer, Kind.INVITATION_LINKED, "en")
    assert "read-only and ends on 1 March 2030, 12:00 UTC" in english.text
    french = render(renderer, Kind.INVITATION_LINKED, "fr")
    assert "lecture seule, qui prendra fin le 1er mars 2030 à 12\u00a0h\u00a000 UTC" in french.text
    user = render(renderer, Kind.INVITATION_LINKED, "en", role="user", access_expires_at=None)
    assert "read-only" not in user.text


def test_each_invitation_variant_tells_how_to_sign_in(renderer: Renderer) -> None:
    linked = render(renderer, Kind.INVITATION_LINKED, "en")
    assert "Sign in with it" in linked.text and "do not need a new password" in linked.text
    manual = render(renderer, Kind.INVITATION_MANUAL, "en")
    assert "administrator will send you your temporary password separately" in manual.text
    manual_fr = render(renderer, Kind.INVITATION_MANUAL, "fr")
    assert "Vous recevrez votre mot de passe temporaire séparément" in manual_fr.text


def test_resent_invitation_says_the_link_is_new_and_old_links_stop(renderer: Renderer) -> None:
    email = render(renderer, Kind.INVITATION_AUTOMATIC, "en", resent=True)
    assert email.subject.startswith("New link and temporary password")
    assert "Earlier links no longer work" in email.text
    assert "new temporary password" in email.text


def test_html_escapes_what_people_typed(renderer: Renderer) -> None:
    email = render(renderer, Kind.INVITATION_LINKED, "en")
    assert "Bob &lt;Builder&gt;" in email.html
    assert "Bob <Builder>" in email.text


def test_manual_password_notices_say_how_to_get_the_passwords(renderer: Renderer) -> None:
    batch = render(renderer, Kind.ADMIN_MANUAL_PASSWORDS_PENDING, "en")
    assert f"invitations report {KEY} --temp-passwords DIR" in batch.text
    assert batch.subject == "[acme] 9998 temporary passwords await forwarding"
    single = render(
        renderer, Kind.ADMIN_MANUAL_PASSWORDS_PENDING, "fr",
        count=1, batch_id=None, email="bob@x.test", temp_password_id=str(KEY),
    )  # fmt: skip
    assert "retrieve_temp_password" in single.text and "recipient_public_key" in single.text
    assert "invitations temp-password --tenant acme --email bob@x.test --pdf DIR" in single.text
    assert single.subject == "[acme] Un mot de passe temporaire à transmettre\u00a0: bob@x.test"
    english = render(
        renderer, Kind.ADMIN_MANUAL_PASSWORDS_PENDING, "en",
        count=1, batch_id=None, email="bob@x.test", temp_password_id=str(KEY),
    )  # fmt: skip
    assert "sealed to a key of your own" in english.text
    assert "opens the sealed box" in english.html


def test_mass_invite_summary_has_its_counts_and_report_command(renderer: Renderer) -> None:
    email = render(renderer, Kind.ADMIN_MASS_INVITE_COMPLETED, "en")
    assert email.subject == "[acme] Mass invite finished: 9998 invited, 2 refused"
    assert f"invitations report {KEY}" in email.text
    assert "The report is attached" in email.text and "get_mass_invite_report" in email.html


def test_one_administrator_recommendation_is_strong(renderer: Renderer) -> None:
    assert (
        "strongly recommend giving at least one other person the administrator role"
        in render(renderer, Kind.ADMIN_ONE_ADMINISTRATOR, "en").text
    )
    assert "vivement" in render(renderer, Kind.ADMIN_ONE_ADMINISTRATOR, "fr").text


def test_message_has_both_parts_and_a_message_id_derived_from_event_and_recipient(
    renderer: Renderer,
) -> None:
    key = message_key(KEY, Kind.INVITATION_LINKED, "Bob@X.test ")
    assert key == message_key(KEY, Kind.INVITATION_LINKED, "bob@x.test")
    assert key != message_key(KEY, Kind.INVITATION_LINKED, "ann@x.test")
    message = build_message(
        render(renderer, Kind.INVITATION_LINKED, "fr"),
        sender="notifier@vault.test",
        recipient="bob@x.test",
        key=key,
        kind=Kind.INVITATION_LINKED,
        locale="fr",
        now=NOW,
    )
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage) and not parsed.defects
    assert parsed["Message-ID"] == f"<{key}@vault.test>" == message_id(key, "notifier@vault.test")
    assert parsed["Content-Language"] == "fr"
    assert parsed["X-Notification-Kind"] == "invitation_linked"
    assert parsed["Subject"] == "Invitation à rejoindre acme sur Cloud Vault"
    assert parsed["Date"].datetime == NOW
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert "Bonjour Bob <Builder>," in plain.get_content()
    assert "Bonjour Bob &lt;Builder&gt;," in html.get_content()
    assert all(len(line) <= 998 for line in message.split(b"\r\n"))


@pytest.mark.parametrize(
    ("seconds", "locale", "expected"),
    [
        (7 * 86400, "en", "7 days"),
        (86400, "fr", "1 jour"),
        (86400 + 6 * 3600, "en", "1 day 6 hours"),
        (90, "en", "1 minute 30 seconds"),
        (3600, "fr", "1 heure"),
    ],
)
def test_durations_read_naturally(seconds: float, locale: str, expected: str) -> None:
    assert format_duration(seconds, locale) == expected


def test_moments_are_shown_in_utc_in_each_language() -> None:
    assert format_moment("2030-01-07T10:00:00+01:00", "en") == "7 January 2030, 09:00 UTC"
    assert (
        format_moment("2030-01-07T10:00:00+01:00", "fr") == "7 janvier 2030 à 9\u00a0h\u00a000 UTC"
    )


def test_retry_delay_doubles_up_to_its_cap_and_gives_up_after_the_last_attempt() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, max_attempts=5, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert not policy.gives_up_after(4)
    assert policy.gives_up_after(5)
    jittery = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.2)
    delays = {jittery.delay(3, random.Random(seed)) for seed in range(20)}
    assert all(3.2 <= d <= 4.8 for d in delays) and len(delays) > 1


@pytest.mark.parametrize("subject", ["Short", "Ünïcödé " * 30, "plain ascii " * 20])
def test_any_subject_survives_the_trip_through_a_mail_parser(subject: str) -> None:
    message = build_message(
        RenderedEmail(subject=subject.strip(), text="t\n", html="<p>h</p>\n"),
        sender="notifier@vault.test",
        recipient="bob@example.com",
        key=KEY,
        kind=Kind.INVITATION_LINKED,
        locale="en",
        now=NOW,
    )
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert parsed["Subject"] == subject.strip()
    assert all(len(line) <= 78 for line in message.split(b"\r\n") if b"?utf-8?" in line)


def test_attachments_follow_the_alternatives_in_a_mixed_message(renderer: Renderer) -> None:
    rendered = render(renderer, Kind.ADMIN_MASS_INVITE_COMPLETED, "en")
    content = "index,email\r\n0,'=cmd()\r\n".encode("utf-8-sig")
    raw = build_message(
        rendered,
        sender="n@x.test",
        recipient="a@x.test",
        key=KEY,
        kind=Kind.ADMIN_MASS_INVITE_COMPLETED,
        locale="en",
        now=datetime(2030, 1, 7, tzinfo=UTC),
        attachments=[("report.csv", "text/csv", content)],
    )

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    body = message.get_body(("plain",))
    assert body is not None and "The report is attached" in body.get_content()
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "report.csv"
    assert attachment.get_payload(decode=True) == content
