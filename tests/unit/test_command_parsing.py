"""Whatever the bytes, the intake's parser says why they are not a command: it never raises,
so nothing is requeued and retried for nothing (issue: huge numbers, deep nesting)."""

from __future__ import annotations

import json
import uuid

import pytest

from services.invitation.entrypoints.commands import Malformed, parse_command
from shared.contract import RejectionCode

COMMAND_ID = str(uuid.uuid4())


def invite(**extra: object) -> bytes:
    body = {
        "command_id": COMMAND_ID,
        "actor": "admin@example.com",
        "tenant_id": "acme",
        "email": "bob@example.com",
        "role": "user",
        **extra,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"command_id": ' + b"9" * 5000 + b"}", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"command_id": "\xff\xfe"}', "not JSON"),
        (b"\x00\x01binary", "not JSON"),
    ],
    ids=["a 5000-digit integer", "100,000 levels of nesting", "invalid UTF-8", "binary"],
)
def test_a_body_that_cannot_be_read_is_refused_not_raised(body: bytes, why: str) -> None:
    parsed = parse_command("invite_user", body)
    assert isinstance(parsed, Malformed)
    assert parsed.code is RejectionCode.INVALID_COMMAND
    assert why in parsed.message


def test_a_body_over_the_size_limit_is_refused_before_it_is_read() -> None:
    parsed = parse_command("invite_user", invite(display_name="x" * 2000), max_bytes=1024)
    assert isinstance(parsed, Malformed)
    assert parsed.code is RejectionCode.INVALID_COMMAND
    assert parsed.details == {"max_bytes": 1024}


def test_deep_nesting_inside_a_command_is_a_validation_refusal_with_its_id() -> None:
    nested: object = "x"
    for _ in range(500):  # below the JSON parser's limit, deep for the model
        nested = [nested]
    parsed = parse_command("invite_user", invite(display_name=nested))
    assert isinstance(parsed, Malformed)
    assert parsed.code is RejectionCode.INVALID_COMMAND
    assert parsed.command_id == COMMAND_ID


def test_a_refusal_lists_a_bounded_number_of_problems() -> None:
    rows = [{"email": 1, "role": 2, "extra": 3}] * 100
    body = json.dumps(
        {"command_id": COMMAND_ID, "actor": "a@example.com", "tenant_id": "acme", "invitees": rows}
    ).encode()
    parsed = parse_command("mass_invite", body)
    assert isinstance(parsed, Malformed)
    assert len(parsed.details["errors"]) == 20
    assert "300 problem(s)" in parsed.message


def test_a_valid_command_still_parses() -> None:
    assert not isinstance(parse_command("invite_user", invite()), Malformed)
