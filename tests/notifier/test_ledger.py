"""The notifier's planning writes, on PostgreSQL (bulk, through COPY) and on SQLite.

A planning step's email rows are inserted unless their message key exists (a replay
re-plans history: the rows it finds are kept as they are, sent or not), and its state
rows replace the values they had; the position moves in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services.notifier.adapters.ledger import EmailLedger, PlanStep, StateLoader, open_ledger
from services.notifier.domain.delivery import PENDING, REPLAYED
from services.notifier.domain.emails import Kind, PlannedEmail


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmailLedger]:
    # Only the PostgreSQL variant asks for a schema: the SQLite one needs no server at all.
    if request.param == "postgres":
        url = request.getfixturevalue("database_url")
    else:
        url = f"sqlite:///{tmp_path}/notifier.db"
    ledger = open_ledger(url)
    yield ledger
    ledger.close()


def _email(recipient: str, event_id: UUID, position: int, **context: str) -> PlannedEmail:
    return PlannedEmail(
        event_id=event_id,
        position=position,
        kind=Kind.ADMIN_INVITATION_ACCEPTED,
        recipient=recipient,
        locale="fr",
        tenant_id="acme",
        context=context,
        invitation_id=uuid4(),
        link_generation=2,
        temp_password_id=None,
    )


def _plan(ledger: EmailLedger, step: PlanStep) -> None:
    def run(position: int, load: StateLoader) -> PlanStep:
        return step

    assert ledger.plan(run) == step


def _state(ledger: EmailLedger, keys: list[str]) -> dict[str, object]:
    found: dict[str, object] = {}

    def read(position: int, load: StateLoader) -> None:
        found.update(load(keys))

    ledger.plan(read)
    return found


def test_a_replay_keeps_the_rows_it_finds_and_adds_the_missing_ones(
    ledger: EmailLedger,
) -> None:
    event = uuid4()
    first = _email("ann@example.com", event, 3, note="tab\there,\nline \\N é")
    _plan(ledger, PlanStep(3, 1, [first], {"tenant:acme": {"admins": {"a": "en"}}}))
    again = _email("ann@example.com", event, 3, note="replayed")  # same key as `first`
    new = _email("bob@example.com", event, 3, note="new")
    twice = _email("cy@example.com", uuid4(), 5, note="twice")

    _plan(
        ledger,
        PlanStep(
            9,
            4,
            [again, new, twice, twice],
            {"tenant:acme": {"admins": {}}, "inv:1": {"email": "é@example.com"}},
            status=REPLAYED,
        ),
    )

    rows = {(d.recipient, d.status, d.message_key, d.position) for d in ledger.deliveries()}
    assert rows == {
        ("ann@example.com", PENDING, first.key, 3),
        ("bob@example.com", REPLAYED, new.key, 3),
        ("cy@example.com", REPLAYED, twice.key, 5),
    }
    assert ledger.position() == 9
    assert _state(ledger, ["tenant:acme", "inv:1", "inv:2"]) == {
        "tenant:acme": {"admins": {}},
        "inv:1": {"email": "é@example.com"},
    }
    [kept] = ledger.claim(10, now=2e9)  # the pending one, as first planned
    assert kept.context == {"note": "tab\there,\nline \\N é"}
    assert (kept.key, kept.locale, kept.link_generation) == (first.key, "fr", 2)
    assert kept.invitation_id == first.invitation_id


def test_each_planning_step_writes_only_its_own_rows(ledger: EmailLedger) -> None:
    # PostgreSQL stages a step's rows in temporary tables emptied at commit: the next
    # step must not write them again.
    one, two = _email("ann@example.com", uuid4(), 1), _email("bob@example.com", uuid4(), 2)
    _plan(ledger, PlanStep(1, 1, [one], {"a": {"v": 1}}))
    _plan(ledger, PlanStep(2, 1, [], {}, {"a"}))
    _plan(ledger, PlanStep(3, 1, [two], {"b": {"v": 2}}))

    assert [d.message_key for d in ledger.deliveries()] == [one.key, two.key]
    assert ledger.status_counts() == {PENDING: 2}
    assert _state(ledger, ["a", "b"]) == {"b": {"v": 2}}
    assert ledger.position() == 3
