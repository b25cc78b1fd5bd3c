"""Use cases on temporary passwords: issue, withdraw, expire, record delivery, retrieve."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from services.invitation.application.lookups import (
    account_of,
)
from services.invitation.application.tools import Tools
from services.invitation.domain.account import Account
from services.invitation.domain.cause import Cause
from services.invitation.domain.ids import account_uuid
from services.invitation.domain.tenant import TenantSettings
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c


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
    account = account_of(uow, cmd.email)
    account.retrieve_manual(cmd.temp_password_id, cause)
    uow.add(account)
    uow.shred(cmd.temp_password_id)
    return {"temp_password_id": str(cmd.temp_password_id), "retrieved": True}
