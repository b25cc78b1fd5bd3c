"""The `result` of an accepted reply, one model per command.

The reply envelope (`replies.Reply`) is the same for every command; these say what its
`result` holds when the status is `accepted`. Like event data, a result may gain fields:
clients ignore the ones they do not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contract.events import TenantSettingsData

Outcome = Literal["account_linked", "temp_password_issued"]
Delivery = Literal["automatic", "manual"]


class Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class InviteUserResult(Result):
    invitation_id: UUID
    account_id: UUID
    outcome: Outcome
    temp_password_delivery: Delivery | None
    invitation_expires_at: datetime


class RowError(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    code: str
    message: str
    details: dict[str, Any] = {}


class MassInviteRow(BaseModel):
    """One invitee of a mass invite, in input order: invited (with its outcome) or refused."""

    model_config = ConfigDict(frozen=True, extra="allow")

    index: int
    email: str
    status: Literal["invited", "refused"]
    role: str | None = None
    invitation_id: UUID | None = None
    outcome: Outcome | None = None
    temp_password_delivery: Delivery | None = None
    error: RowError | None = None


class MassInviteResult(Result):
    batch_id: UUID
    invited: int
    refused: int
    rows: list[MassInviteRow]


class ResendInvitationResult(Result):
    invitation_id: UUID
    invitation_expires_at: datetime
    temp_password_reissued: bool


class RevokeInvitationResult(Result):
    invitation_id: UUID
    temp_password_withdrawn: bool


class AcceptInvitationResult(Result):
    invitation_id: UUID
    account_id: UUID
    email: str
    role: str
    access_expires_at: datetime | None


class SetContractorExpiryResult(Result):
    email: str
    access_expires_at: datetime


class ConfigureTenantResult(Result):
    tenant_id: str
    settings: TenantSettingsData
    changed: list[str]


class RegisterAccountResult(Result):
    account_id: UUID
    email: str
    created: bool


class RecordPasswordChangedResult(Result):
    account_id: UUID


class LapseInvitationResult(Result):
    invitation_id: UUID
    lapsed: bool


class ExpireTempPasswordResult(Result):
    temp_password_id: UUID
    expired: bool


class ExpireContractorResult(Result):
    email: str
    expired: bool


class RemindContractorExpiryResult(Result):
    email: str
    reminded: bool


class RecordTempPasswordDeliveredResult(Result):
    temp_password_id: UUID
    recorded: bool


class RetrieveTempPasswordResult(Result):
    temp_password_id: UUID
    retrieved: bool


class RemoveMemberResult(Result):
    email: str
    account_id: UUID
    role: str
    temp_password_withdrawn: bool


class ChangeRoleResult(Result):
    email: str
    account_id: UUID
    role: str
    previous_role: str
    access_expires_at: datetime | None
    changed: bool


class RecordNotificationFailedResult(Result):
    message_key: UUID
    recorded: bool


RESULTS: dict[str, type[Result]] = {
    "invite_user": InviteUserResult,
    "mass_invite": MassInviteResult,
    "resend_invitation": ResendInvitationResult,
    "revoke_invitation": RevokeInvitationResult,
    "accept_invitation": AcceptInvitationResult,
    "set_contractor_expiry": SetContractorExpiryResult,
    "configure_tenant": ConfigureTenantResult,
    "register_account": RegisterAccountResult,
    "record_password_changed": RecordPasswordChangedResult,
    "lapse_invitation": LapseInvitationResult,
    "expire_temp_password": ExpireTempPasswordResult,
    "expire_contractor": ExpireContractorResult,
    "remind_contractor_expiry": RemindContractorExpiryResult,
    "record_temp_password_delivered": RecordTempPasswordDeliveredResult,
    "retrieve_temp_password": RetrieveTempPasswordResult,
    "remove_member": RemoveMemberResult,
    "change_role": ChangeRoleResult,
    "record_notification_failed": RecordNotificationFailedResult,
}
