"""Names invitees read (rule 31): no links, addresses or control characters; 100 at most."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.invitation.domain.errors import DomainError
from services.invitation.domain.names import check_name, name_problem
from services.invitation.domain.tenant import DEFAULT_SETTINGS
from shared.contract.codes import RejectionCode


@pytest.mark.parametrize(
    "name",
    [
        "Jane Doe",
        "J. R. R. Tolkien",
        "R.E.M.",
        "Dr. Smith",
        "Acme Inc.",
        "Anne-Marie O'Neil",
        "Zoë Ångström",
        "李小龙",
        "محمد بن سلمان",
        "👩\u200d💻 Jane",  # a zero-width joiner inside an emoji is fine
        "Jane @ Acme",
        "v1.2 team",
        "x" * 100,
    ],
)
def test_ordinary_names_pass(name: str) -> None:
    assert name_problem(name) is None
    check_name("display_name", name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Your account is locked. Verify now at https://evil.example/login", "web address"),
        ("javascript://alert(1)", "web address"),
        ("www.evil", "web address"),
        ("Visit WWW.EVIL.EXAMPLE", "web address"),
        ("evil.example/login", "web address"),
        ("EVIL.EXAMPLE", "web address"),
        ("evil\u200b.example", "web address"),  # a zero-width space does not hide it
        ("evil\u3002example", "web address"),  # nor an ideographic full stop
        ("".join(chr(ord(c) + 0xFEE0) for c in "evil.example"), "web address"),  # fullwidth
        ("10.0.0.1/login", "web address"),
        ("Dr.Smith", "web address"),  # looks like a domain: write "Dr. Smith"
        ("jane@acme.example", "e-mail address"),
        ("mail jane@acme", "e-mail address"),
        ("Jane\nClick here", "control character"),
        ("Jane\x00", "control character"),
        ("Jane\u2028Doe", "control character"),
        ("\u202eenaJ", "control character"),  # a right-to-left override
        ("x" * 101, "longer than 100"),
    ],
)
def test_links_addresses_control_characters_and_long_names_are_refused_invalid_name(
    name: str, reason: str
) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert reason in problem
    with pytest.raises(DomainError) as refused:
        check_name("inviter_name", name)
    assert refused.value.code is RejectionCode.INVALID_NAME
    assert refused.value.details["field"] == "inviter_name"
    assert name not in refused.value.message  # the refused text is not echoed


def test_no_name_is_fine() -> None:
    check_name("display_name", None)


def test_at_most_ten_reminder_offsets() -> None:
    ten = [timedelta(hours=h) for h in range(1, 11)]
    assert len(DEFAULT_SETTINGS.changed_with({"expiry_reminders": ten}).expiry_reminders) == 10
    with pytest.raises(DomainError) as refused:
        DEFAULT_SETTINGS.changed_with({"expiry_reminders": [*ten, timedelta(hours=11)]})
    assert refused.value.code is RejectionCode.INVALID_SETTING
    assert refused.value.details == {"setting": "expiry_reminders"}
