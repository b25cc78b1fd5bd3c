"""The roster of a tenant's administrators: the last-administrator guard (rule 34)."""

from __future__ import annotations

import pytest

from services.invitation.domain.administrators import Administrators
from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode
from tests.histories import MakeCause


def test_the_only_listed_administrator_cannot_be_lost(cause: MakeCause) -> None:
    roster = Administrators.start("acme", cause())
    roster.join("ada@example.com", cause())
    with pytest.raises(DomainError) as refused:
        roster.check_can_lose("ada@example.com")
    assert refused.value.code == RejectionCode.LAST_ADMINISTRATOR


def test_an_administrator_can_be_lost_while_another_remains(cause: MakeCause) -> None:
    roster = Administrators.start("acme", cause())
    roster.join("ada@example.com", cause())
    roster.join("bea@example.com", cause())
    roster.check_can_lose("ada@example.com")
    roster.leave("ada@example.com", cause())
    assert roster.emails == ["bea@example.com"]


def test_an_administrator_missing_from_the_roster_leaves_only_the_listed_ones(
    cause: MakeCause,
) -> None:
    # Someone who administered the tenant before the roster existed: the guard counts
    # only who it knows, so it may refuse too much, never too little.
    roster = Administrators.start("acme", cause())
    with pytest.raises(DomainError):
        roster.check_can_lose("old@example.com")
    roster.join("bea@example.com", cause())
    roster.check_can_lose("old@example.com")


def test_joining_or_leaving_twice_records_once(cause: MakeCause) -> None:
    roster = Administrators.start("acme", cause())
    roster.join("ada@example.com", cause())
    roster.join("ada@example.com", cause())
    roster.leave("bea@example.com", cause())
    assert [type(e).__name__ for e in roster.collect_events()] == ["Created", "Joined"]
