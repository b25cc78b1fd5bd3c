"""Finding the aggregates a command names; a missing one is a domain error."""

from __future__ import annotations

from uuid import UUID

from services.invitation.domain.account import Account
from services.invitation.domain.administrators import Administrators
from services.invitation.domain.cause import Cause
from services.invitation.domain.emails import normalise_email
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import (
    account_uuid,
    administrators_uuid,
    membership_uuid,
    tenant_id_to_uuid,
)
from services.invitation.domain.invitation import Invitation
from services.invitation.domain.membership import Membership
from services.invitation.domain.tenant import DEFAULT_SETTINGS, Tenant, TenantSettings
from services.invitation.unit_of_work import UnitOfWork
from shared.contract.codes import RejectionCode


def settings_of(uow: UnitOfWork, tenant_id: str) -> TenantSettings:
    tenant = uow.get(Tenant, tenant_id_to_uuid(tenant_id))
    return DEFAULT_SETTINGS if tenant is None else tenant.settings


def find_invitation(
    uow: UnitOfWork, tenant_id: str, invitation_id: UUID | None, email: str | None
) -> Invitation:
    if invitation_id is None:
        assert email is not None
        membership = uow.get(Membership, membership_uuid(tenant_id, normalise_email(email)))
        invitation_id = None if membership is None else membership.invitation_id
    invitation = None if invitation_id is None else uow.get(Invitation, invitation_id)
    if invitation is None or invitation.tenant_id != tenant_id:
        raise DomainError(
            RejectionCode.INVITATION_NOT_FOUND,
            "no such invitation in this tenant",
            {"invitation_id": str(invitation_id) if invitation_id else None},
        )
    return invitation


def membership_of(uow: UnitOfWork, invitation: Invitation) -> Membership:
    membership = uow.get(Membership, membership_uuid(invitation.tenant_id, invitation.email))
    assert membership is not None, "every invitation has its membership"
    return membership


def account_of(uow: UnitOfWork, email: str) -> Account:
    account = uow.get(Account, account_uuid(normalise_email(email)))
    if account is None:
        raise DomainError(RejectionCode.ACCOUNT_NOT_FOUND, "no account with this email")
    return account


def contractor_of(uow: UnitOfWork, tenant_id: str, email: str) -> Membership:
    membership = uow.get(Membership, membership_uuid(tenant_id, normalise_email(email)))
    if membership is None:
        raise DomainError(RejectionCode.NOT_A_CONTRACTOR, "no contractor with this email")
    return membership


def member_of(uow: UnitOfWork, tenant_id: str, email: str) -> Membership:
    membership = uow.get(Membership, membership_uuid(tenant_id, normalise_email(email)))
    if membership is None:
        raise DomainError(RejectionCode.NOT_A_MEMBER, "no member with this email in the tenant")
    return membership


def administrators_of(uow: UnitOfWork, tenant_id: str, cause: Cause) -> Administrators:
    """The tenant's roster of administrators; a new, empty one until the first joins.

    A new roster is registered with the unit of work only once it changes (`uow.add`).
    """
    roster = uow.get(Administrators, administrators_uuid(tenant_id))
    return roster or Administrators.start(tenant_id, cause)
