"""The unit of work notices a refused command that changed something, whatever the batch size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application

from services.invitation.domain.account import Account
from services.invitation.domain.cause import Cause
from services.invitation.unit_of_work import CommandLeftChangesError, UnitOfWork

MakeCause = Callable[..., Cause]


class NothingStored:
    """Side tables of an empty store: every stream is new."""

    def select_streams(self, ids: Sequence[UUID]) -> list[Any]:
        return []


def uow_with(*accounts: Account) -> UnitOfWork:
    uow = UnitOfWork(Application[UUID](), NothingStored())  # type: ignore[arg-type]
    for account in accounts:
        uow.add(account)
    return uow


def test_a_refused_command_that_changed_an_aggregate_it_was_handed_is_caught(
    cause: MakeCause,
) -> None:
    account = Account.register("bob@example.com", None, cause(tenant_id=None))
    uow = uow_with(account)

    before = uow.checkpoint()
    found = uow.get(Account, account.id)
    assert found is not None
    found.record_password_changed(cause(tenant_id=None))

    with pytest.raises(CommandLeftChangesError):
        uow.check_unchanged_since(before)


def test_a_refused_command_that_created_an_aggregate_is_caught(cause: MakeCause) -> None:
    uow = uow_with()

    before = uow.checkpoint()
    uow.add(Account.register("carol@example.com", None, cause(tenant_id=None)))

    with pytest.raises(CommandLeftChangesError):
        uow.check_unchanged_since(before)


def test_a_refused_command_that_sealed_a_secret_is_caught(cause: MakeCause) -> None:
    uow = uow_with()

    before = uow.checkpoint()
    uow.seal(UUID(int=1), b"sealed")

    with pytest.raises(CommandLeftChangesError):
        uow.check_unchanged_since(before)


def test_changes_of_earlier_commands_in_the_batch_are_not_held_against_a_refusal(
    cause: MakeCause,
) -> None:
    accounts = [
        Account.register(f"user{i}@example.com", None, cause(tenant_id=None)) for i in range(50)
    ]
    uow = uow_with(*accounts)  # 50 earlier commands, each with its pending event

    before = uow.checkpoint()
    assert uow.get(Account, accounts[0].id) is accounts[0]  # a read is not a change

    uow.check_unchanged_since(before)
