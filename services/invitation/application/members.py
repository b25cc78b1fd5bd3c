"""Use cases on members after they joined (rule 34): remove one, change a role.

Each is get -> decide -> add over the member's membership and the tenant's roster of
administrators (domain/administrators.py), which decides the last-administrator rule.
"""

from __future__ import annotations

from typing import Any

from services.invitation.application.lookups import administrators_of, member_of, settings_of
from services.invitation.application.temp_passwords import withdraw_unused_temp_password
from services.invitation.application.tools import Tools, iso
from services.invitation.domain.cause import Cause
from services.invitation.domain.roles import check_role_and_expiry
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c

ADMINISTRATOR = "administrator"


def remove_member(
    tools: Tools, uow: UnitOfWork, cmd: c.RemoveMember, cause: Cause
) -> dict[str, Any]:
    membership = member_of(uow, cmd.tenant_id, cmd.email)
    role = membership.check_member()
    roster = administrators_of(uow, cmd.tenant_id, cause)
    if role == ADMINISTRATOR:
        roster.check_can_lose(membership.email)
    membership.remove(cmd.reason, cause)
    uow.add(membership)
    if role == ADMINISTRATOR:
        roster.leave(membership.email, cause)
        uow.add(roster)
    # No way in is left behind: a temporary password this membership's invitation issued
    # and nobody replaced goes too, so no "expired unused" notice follows (rule 36).
    assert membership.invitation_id is not None
    withdrawn = withdraw_unused_temp_password(
        uow, membership.email, membership.invitation_id, cause
    )
    return {
        "email": membership.email,
        "account_id": str(membership.account_id),
        "role": role,
        "temp_password_withdrawn": withdrawn,
    }


def change_role(tools: Tools, uow: UnitOfWork, cmd: c.ChangeRole, cause: Cause) -> dict[str, Any]:
    membership = member_of(uow, cmd.tenant_id, cmd.email)
    previous = membership.check_member()
    settings = settings_of(uow, cmd.tenant_id)
    # The role's own refusals first: a bad role is refused as such, whoever the member is.
    check_role_and_expiry(cmd.role, cmd.access_expires_at, settings.contractor_enabled, cause.at)
    roster = administrators_of(uow, cmd.tenant_id, cause)
    if previous == ADMINISTRATOR and cmd.role != ADMINISTRATOR:
        roster.check_can_lose(membership.email)
    changed = membership.change_role(
        cmd.role, cmd.access_expires_at, settings.contractor_enabled, cause
    )
    uow.add(membership)
    if changed and cmd.role == ADMINISTRATOR:
        roster.join(membership.email, cause)
        uow.add(roster)
    elif changed and previous == ADMINISTRATOR:
        roster.leave(membership.email, cause)
        uow.add(roster)
    return {
        "email": membership.email,
        "account_id": str(membership.account_id),
        "role": membership.role,
        "previous_role": previous,
        "access_expires_at": iso(membership.access_expires_at),
        "changed": changed,
    }
