"""Use cases on contractors: move the end date, remind before it, expire at it."""

from __future__ import annotations

from typing import Any

from services.invitation.application.lookups import (
    contractor_of,
)
from services.invitation.application.temp_passwords import withdraw_unused_temp_password
from services.invitation.application.tools import Tools, iso
from services.invitation.domain.cause import Cause
from services.invitation.domain.invitation import Invitation
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c


def set_contractor_expiry(
    tools: Tools, uow: UnitOfWork, cmd: c.SetContractorExpiry, cause: Cause
) -> dict[str, Any]:
    membership = contractor_of(uow, cmd.tenant_id, cmd.email)
    membership.change_contractor_expiry(cmd.access_expires_at, cause)
    uow.add(membership)
    assert membership.invitation_id is not None
    invitation = uow.get(Invitation, membership.invitation_id)
    if invitation is not None:
        invitation.change_access_expiry(cmd.access_expires_at, cause)
        uow.add(invitation)
    return {"email": membership.email, "access_expires_at": iso(cmd.access_expires_at)}


def remind_contractor_expiry(
    tools: Tools, uow: UnitOfWork, cmd: c.RemindContractorExpiry, cause: Cause
) -> dict[str, Any]:
    membership = contractor_of(uow, cmd.tenant_id, cmd.email)
    changed = membership.remind_expiry(cmd.offset, cause)
    uow.add(membership)
    return {"email": membership.email, "reminded": changed}


def expire_contractor(
    tools: Tools, uow: UnitOfWork, cmd: c.ExpireContractor, cause: Cause
) -> dict[str, Any]:
    membership = contractor_of(uow, cmd.tenant_id, cmd.email)
    pending_invitation = membership.invitation_id if membership.status == "invited" else None
    changed = membership.expire_contractor(cause)
    uow.add(membership)
    if changed and pending_invitation is not None:
        invitation = uow.get(Invitation, pending_invitation)
        if invitation is not None:
            invitation.lapse(cause, access_ended=True)
            uow.add(invitation)
    withdrawn = False
    if changed:
        # Rule 36: the access is over, so is its unused temporary password (no PDF of it,
        # no "expired unused" notice advising a resend that would be refused).
        assert membership.invitation_id is not None
        withdrawn = withdraw_unused_temp_password(
            uow, membership.email, membership.invitation_id, cause
        )
    return {"email": membership.email, "expired": changed, "temp_password_withdrawn": withdrawn}
