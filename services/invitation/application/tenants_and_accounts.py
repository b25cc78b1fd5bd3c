"""Use cases on tenants and accounts: settings, registration, a password set."""

from __future__ import annotations

from typing import Any

from services.invitation.application.lookups import (
    account_of,
)
from services.invitation.application.tools import Tools
from services.invitation.domain.account import Account
from services.invitation.domain.cause import Cause
from services.invitation.domain.emails import normalise_email
from services.invitation.domain.ids import account_uuid, tenant_id_to_uuid
from services.invitation.domain.tenant import Tenant
from services.invitation.eventstore.envelopes import settings_json
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c


def configure_tenant(
    tools: Tools, uow: UnitOfWork, cmd: c.ConfigureTenant, cause: Cause
) -> dict[str, Any]:
    changes = {
        name: value
        for name, value in cmd.model_dump(
            include={
                "contractor_enabled",
                "temp_password_delivery",
                "invitation_ttl",
                "temp_password_ttl",
                "expiry_reminders",
                "admin_notification_emails",
            }
        ).items()
        if value is not None
    }
    tenant = uow.get(Tenant, tenant_id_to_uuid(cmd.tenant_id))
    if tenant is None:
        tenant = Tenant.start(cmd.tenant_id, cause)
    settings = tenant.configure(changes, cause) if changes else tenant.settings
    uow.add(tenant)
    return {
        "tenant_id": cmd.tenant_id,
        "settings": settings_json(settings),
        "changed": sorted(changes),
    }


def register_account(
    tools: Tools, uow: UnitOfWork, cmd: c.RegisterAccount, cause: Cause
) -> dict[str, Any]:
    email = normalise_email(cmd.email)
    account = uow.get(Account, account_uuid(email))
    created = account is None
    if account is None:
        account = Account.register(email, cmd.display_name, cause)
        uow.add(account)
    return {"account_id": str(account.id), "email": email, "created": created}


def record_password_changed(
    tools: Tools, uow: UnitOfWork, cmd: c.RecordPasswordChanged, cause: Cause
) -> dict[str, Any]:
    account = account_of(uow, cmd.email)
    sealed = account.temp_password_id if account.temp_sealed else None
    account.record_password_changed(cause)
    uow.add(account)
    if sealed is not None:
        uow.shred(sealed)
    return {"account_id": str(account.id)}
