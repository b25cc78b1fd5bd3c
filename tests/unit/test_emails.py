"""Rule 1: an email is trimmed and lower-cased, then must be a valid address."""

from __future__ import annotations

import pytest

from services.invitation.domain.emails import normalise_email
from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("bob@example.com", "bob@example.com"),
        ("Bob@Example.COM", "bob@example.com"),
        ("  BOB@EXAMPLE.COM\t", "bob@example.com"),
        ("first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised


def test_differently_cased_emails_are_the_same_person() -> None:
    assert normalise_email("Bob@Example.COM") == normalise_email("bob@example.com")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "bob",
        "bob@",
        "@example.com",
        "bob@@example.com",
        "bob smith@example.com",
        "bob@example",
        "bob..x@example.com",
        "bob@example.com.",
    ],
)
def test_malformed_email_is_refused_invalid_email(raw: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalise_email(raw)
    assert refused.value.code == RejectionCode.INVALID_EMAIL
