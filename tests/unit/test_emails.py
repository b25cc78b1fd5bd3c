"""Rules 1 and 37: any syntactically valid address, trimmed, NFC-normalised, lower-cased."""

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
        "someone@example.test",
        "someone@test",
        "printer@office.local",
        "nobody@nowhere.invalid",
        "root@localhost",
        "admin@mail.example",
        "service@hidden.onion",
        "a@b",
        '"john smith"@example.test',
        "ops@[192.0.2.1]",
    ],
)
def test_a_special_use_or_private_domain_is_accepted_as_written(raw: str) -> None:
    assert normalise_email(raw) == raw


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("José@Bücher.Example", "josé@bücher.example"),
        ("用户@例子.测试", "用户@例子.测试"),
        ("bob@xn--bcher-kva.example", "bob@bücher.example"),
        ("ZOË@Example.Local", "zoë@example.local"),
    ],
)
def test_an_internationalised_address_is_accepted_and_normalised(raw: str, normalised: str) -> None:
    assert normalise_email(raw) == normalised


def test_a_composed_and_a_decomposed_accent_are_the_same_person() -> None:
    composed = "jos\u00e9@example.test"
    decomposed = "jose\u0301@example.test"
    assert composed != decomposed
    assert normalise_email(composed) == normalise_email(decomposed) == composed


@pytest.mark.parametrize(
    ("look_alike", "latin"),
    [
        ("\u0430lice@example.test", "alice@example.test"),  # Cyrillic small a
        ("\u03bfscar@example.test", "oscar@example.test"),  # Greek small omicron
        ("\ufb01ona@example.test", "fiona@example.test"),  # NFKC would fold the ligature
        ("ﬃ@example.test", "ffi@example.test"),
    ],
)
def test_look_alike_characters_are_not_folded_together(look_alike: str, latin: str) -> None:
    assert normalise_email(look_alike) != normalise_email(latin)
    assert normalise_email(look_alike) == look_alike


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
        "bob..x@example.com",
        "bob@example.com.",
        "bob@-x.local",
        "bob@exa_mple.invalid",
        f"bob@{'x' * 64}.local",
        f"bob@{'x.' * 125}local",
    ],
)
def test_malformed_email_is_refused_invalid_email(raw: str) -> None:
    with pytest.raises(DomainError) as refused:
        normalise_email(raw)
    assert refused.value.code == RejectionCode.INVALID_EMAIL
