"""Rules 4, 5, 13-15 on the account: one live temporary password and its lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from services.invitation.domain.account import Account
from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from shared.contract.codes import RejectionCode
from tests.fakes import T0

MakeCause = Callable[..., Cause]
TTL = timedelta(days=7)
SECOND = timedelta(seconds=1)


def _with_temp_password(
    cause: MakeCause, delivery: str = "automatic"
) -> tuple[Account, UUID, UUID]:
    account = Account.create_for_invitation("bob@example.com", "Bob", cause())
    temp_id, invitation_id = uuid4(), uuid4()
    account.issue_temp_password(
        temp_id, invitation_id, "$argon2id$fake", T0 + TTL, delivery, cause()
    )
    return account, temp_id, invitation_id


def _types(account: Account) -> list[str]:
    return [type(e).__name__ for e in account.collect_events()]


def test_registered_account_has_its_own_password(cause: MakeCause) -> None:
    account = Account.register("carol@example.com", None, cause(tenant_id=None))
    assert account.password_set is True
    assert account.has_unused_temp_password_from is None


def test_issued_temp_password_is_unused_and_sealed(cause: MakeCause) -> None:
    account, _, invitation_id = _with_temp_password(cause)
    assert account.has_unused_temp_password_from == invitation_id
    assert (account.temp_active, account.temp_sealed) == (True, True)


def test_temp_password_events_belong_to_the_issuing_tenant(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause)
    account.record_delivered(temp_id, cause(tenant_id=None))
    assert [e.tenant_id for e in account.collect_events()] == ["acme", "acme", "acme"]


def test_delivery_is_recorded_once(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause)
    assert account.record_delivered(temp_id, cause()) is True
    assert account.record_delivered(temp_id, cause()) is False
    assert account.temp_sealed is False
    assert account.temp_active is True  # delivered, not yet used: still signs in


def test_delivery_of_a_replaced_temp_password_changes_nothing(cause: MakeCause) -> None:
    account, _, _ = _with_temp_password(cause)
    assert account.record_delivered(uuid4(), cause()) is False
    assert account.temp_sealed is True


def test_manual_temp_password_is_retrieved_exactly_once(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause, "manual")
    account.retrieve_manual(temp_id, cause())
    with pytest.raises(DomainError) as refused:
        account.retrieve_manual(temp_id, cause())
    assert refused.value.code == RejectionCode.TEMP_PASSWORD_NOT_AVAILABLE


def test_automatic_temp_password_cannot_be_retrieved_by_hand(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause, "automatic")
    with pytest.raises(DomainError) as refused:
        account.retrieve_manual(temp_id, cause())
    assert refused.value.code == RejectionCode.TEMP_PASSWORD_NOT_AVAILABLE


def test_temp_password_expiry_is_refused_before_its_validity_ends(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause)
    with pytest.raises(DomainError) as refused:
        account.expire_temp_password(temp_id, cause(T0 + TTL - SECOND))
    assert refused.value.code == RejectionCode.NOT_DUE


def test_unused_temp_password_expires_once(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause)
    assert account.expire_temp_password(temp_id, cause(T0 + TTL)) is True
    assert account.expire_temp_password(temp_id, cause(T0 + TTL)) is False
    assert (account.temp_active, account.temp_sealed) == (False, False)
    assert _types(account)[-1] == "TempPasswordExpired"


def test_temp_password_of_a_changed_password_does_not_expire(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause)
    account.record_password_changed(cause())
    assert account.expire_temp_password(temp_id, cause(T0 + TTL)) is False
    assert account.has_unused_temp_password_from is None
    assert account.temp_sealed is False


def test_revoking_withdraws_the_live_temp_password_once(cause: MakeCause) -> None:
    account, _, _ = _with_temp_password(cause)
    account.revoke_temp_password(cause())
    account.revoke_temp_password(cause())
    assert _types(account).count("TempPasswordRevoked") == 1
    assert account.has_unused_temp_password_from is None


def test_a_new_temp_password_replaces_the_old_one(cause: MakeCause) -> None:
    account, old_id, _ = _with_temp_password(cause)
    account.revoke_temp_password(cause())
    new_id = uuid4()
    account.issue_temp_password(new_id, uuid4(), "$argon2id$new", T0 + TTL, "automatic", cause())
    assert account.expire_temp_password(old_id, cause(T0 + TTL)) is False
    assert account.temp_password_id == new_id


def test_a_manual_password_is_never_marked_delivered_by_the_notifier(cause: MakeCause) -> None:
    account, temp_id, _ = _with_temp_password(cause, delivery="manual")
    account.collect_events()
    assert account.record_delivered(temp_id, cause()) is False
    assert account.temp_sealed is True  # still there for the administrator's one retrieval
    assert _types(account) == []
