"""Use cases on temporary passwords: issue, withdraw, expire, record delivery, retrieve
(sealed to the caller's key)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from services.invitation.application.lookups import account_of, find_invitation
from services.invitation.application.tools import Tools, iso
from services.invitation.domain.account import Account
from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import account_uuid
from services.invitation.domain.tenant import TenantSettings
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c
from shared.contract.codes import RejectionCode
from shared.sealed_box import SealedBoxError, parse_public_key, seal_for


def issue_temp_password(
    tools: Tools,
    uow: UnitOfWork,
    account: Account,
    invitation_id: UUID,
    delivery: str,
    settings: TenantSettings,
    cause: Cause,
) -> None:
    password, password_hash = tools.passwords.take()
    temp_password_id = uuid4()
    account.issue_temp_password(
        temp_password_id=temp_password_id,
        invitation_id=invitation_id,
        password_hash=password_hash,
        valid_until=cause.at + settings.temp_password_ttl,
        delivery=delivery,
        cause=cause,
    )
    uow.seal(temp_password_id, tools.sealer.seal(temp_password_id, password))
    uow.add(account)


def withdraw_temp_password(uow: UnitOfWork, account: Account, cause: Cause) -> None:
    if account.temp_password_id is None:
        return
    if account.temp_active:
        account.revoke_temp_password(cause)
        uow.add(account)
    uow.shred(account.temp_password_id)


def withdraw_unused_temp_password(
    uow: UnitOfWork, email: str, invitation_id: UUID, cause: Cause
) -> bool:
    """Withdraw the temporary password `invitation_id` issued to `email`, if still unused.

    For an invitation revoked, a member removed, a contractor whose access ended: that
    password opens nothing any more, so it must not stay usable, nor expire later with
    an "expired unused" notice whose advice (resend) could not be followed (rule 36).
    """
    account = uow.get(Account, account_uuid(email))
    if account is None or account.has_unused_temp_password_from != invitation_id:
        return False
    withdraw_temp_password(uow, account, cause)
    return True


def expire_temp_password(
    tools: Tools, uow: UnitOfWork, cmd: c.ExpireTempPassword, cause: Cause
) -> dict[str, Any]:
    account = account_of(uow, cmd.email)
    changed = account.expire_temp_password(cmd.temp_password_id, cause)
    uow.add(account)
    if changed:
        uow.shred(cmd.temp_password_id)
    return {"temp_password_id": str(cmd.temp_password_id), "expired": changed}


def record_temp_password_delivered(
    tools: Tools, uow: UnitOfWork, cmd: c.RecordTempPasswordDelivered, cause: Cause
) -> dict[str, Any]:
    account = account_of(uow, cmd.email)
    changed = account.record_delivered(cmd.temp_password_id, cause)
    uow.add(account)
    if changed:  # never shred a manual password, or one of another account
        uow.shred(cmd.temp_password_id)
    return {"temp_password_id": str(cmd.temp_password_id), "recorded": changed}


def retrieve_temp_password(
    tools: Tools, uow: UnitOfWork, cmd: c.RetrieveTempPassword, cause: Cause
) -> dict[str, Any]:
    """A manual password, once, sealed to the caller's key (rule 33); its sealed copy is
    destroyed in the same transaction. Everything is checked, and the box made, before
    anything changes: a refusal leaves the password retrievable."""
    try:
        recipient = parse_public_key(cmd.recipient_public_key)
    except SealedBoxError as error:
        raise DomainError(RejectionCode.INVALID_COMMAND, f"recipient_public_key: {error}") from None
    invitation = find_invitation(uow, cmd.tenant_id, cmd.invitation_id, cmd.email)
    account = uow.get(Account, invitation.account_id)
    temp_password_id = None if account is None else account.temp_password_id
    sealed = None if temp_password_id is None else uow.sealed_copy(temp_password_id)
    if (
        account is None
        or temp_password_id is None
        or account.temp_invitation_id != invitation.id
        or account.temp_delivery != "manual"
        or sealed is None
    ):
        raise DomainError(
            RejectionCode.TEMP_PASSWORD_NOT_AVAILABLE,
            "this invitation has no manual temporary password to retrieve: it was already "
            "retrieved, or it expired, was replaced or withdrawn, or it was never manual",
            {"invitation_id": str(invitation.id)},
        )
    try:
        box = seal_for(recipient, tools.sealer.unseal(temp_password_id, sealed))
    except SealedBoxError as error:
        raise DomainError(RejectionCode.INVALID_COMMAND, f"recipient_public_key: {error}") from None
    account.retrieve_manual(temp_password_id, cause)
    uow.add(account)
    uow.shred(temp_password_id)
    return {
        "invitation_id": str(invitation.id),
        "email": invitation.email,
        SEALED_RESULT_FIELD: box,
        "valid_until": iso(account.temp_valid_until),
        "sealed_copy_destroyed": True,
    }


# The one result field never stored with the reply (batches.py): a repeat of the
# command's id is answered without it, and nothing kept can open to the password.
SEALED_RESULT_FIELD = "sealed_temp_password"
