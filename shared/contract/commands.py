"""Commands: what other systems (and our own expiry service, notifier and CLI) ask for.

Input models are frozen and refuse unknown fields. Fields whose refusal has its own
contract code (email syntax, role, batch size, expiry bounds, names, the number of
reminders) are plain strings or unbounded lists here, and judged by the domain, so that a
bad value gets its specific code instead of the generic `invalid_command`.

`AUDIENCE` says for every command who may send it: any authenticated sender (`public`,
within SENDER_POLICY when there is one) or only the services' own broker users
(`internal`, INTERNAL_SENDERS).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

TenantId = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,64}$")]
Actor = Annotated[str, Field(min_length=1, max_length=320)]
Delivery = Literal["automatic", "manual"]


class Command(BaseModel):
    """Fields every command carries. `command_id` is the idempotency key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: UUID
    actor: Actor


class TenantCommand(Command):
    tenant_id: TenantId


class InviteUser(TenantCommand):
    email: str
    role: str
    access_expires_at: AwareDatetime | None = None
    temp_password_delivery: Delivery | None = None
    # Text invitees read: judged by the domain (`invalid_name`), so no bounds here.
    display_name: str | None = None
    inviter_name: str | None = None
    locale: str | None = Field(default=None, max_length=16)


class MassInvitee(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str
    role: str
    access_expires_at: AwareDatetime | None = None
    display_name: str | None = None
    inviter_name: str | None = None
    locale: str | None = Field(default=None, max_length=16)


class MassInvite(TenantCommand):
    # No max_length: more than 10,000 rows is refused `batch_too_large` by the domain.
    invitees: list[MassInvitee] = Field(min_length=1)
    temp_password_delivery: Delivery | None = None


class _ByInvitationOrEmail(TenantCommand):
    invitation_id: UUID | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> _ByInvitationOrEmail:
        if (self.invitation_id is None) == (self.email is None):
            raise ValueError("give exactly one of invitation_id or email")
        return self


class ResendInvitation(_ByInvitationOrEmail):
    pass


class RevokeInvitation(_ByInvitationOrEmail):
    reason: str | None = Field(default=None, max_length=500)


class AcceptInvitation(TenantCommand):
    token: str = Field(min_length=1, max_length=512)
    email: str


class SetContractorExpiry(TenantCommand):
    email: str
    access_expires_at: AwareDatetime


class ConfigureTenant(TenantCommand):
    contractor_enabled: bool | None = None
    temp_password_delivery: Delivery | None = None
    invitation_ttl: timedelta | None = None
    temp_password_ttl: timedelta | None = None
    expiry_reminders: list[timedelta] | None = None
    admin_notification_emails: list[str] | None = None


class RemoveMember(TenantCommand):
    """An administrator ends a member's access to the tenant (rule 34)."""

    email: str
    reason: str | None = Field(default=None, max_length=500)


class ChangeRole(TenantCommand):
    """An administrator gives a member another role; `access_expires_at` for contractors."""

    email: str
    role: str
    access_expires_at: AwareDatetime | None = None


class RegisterAccount(Command):
    email: str
    display_name: str | None = None


class RecordPasswordChanged(Command):
    email: str


# Commands of our own services. Each time-driven one is refused `not_due` before its
# deadline and is accepted without effect when repeated.


class LapseInvitation(TenantCommand):
    invitation_id: UUID


class ExpireTempPassword(Command):
    email: str
    temp_password_id: UUID


class ExpireContractor(TenantCommand):
    email: str


class RemindContractorExpiry(TenantCommand):
    email: str
    offset: timedelta


class RecordTempPasswordDelivered(Command):
    """The notifier handed the automatic temporary-password email to the mail server."""

    email: str
    temp_password_id: UUID


class RecordNotificationFailed(TenantCommand):
    """The notifier could not deliver an email: refused for good, or retries exhausted.

    `message_key` is the notifier's key of that one email (event, kind, recipient): the
    same failure reported twice is recorded once.
    """

    message_key: UUID
    kind: str = Field(min_length=1, max_length=64)
    recipient: str = Field(min_length=1, max_length=320)
    invitation_id: UUID | None = None
    reason: str = Field(min_length=1, max_length=1000)


class RetrieveTempPassword(Command):
    """An administrator takes a manual temporary password (the CLI's report), once."""

    email: str
    temp_password_id: UUID


COMMANDS: dict[str, type[Command]] = {
    "invite_user": InviteUser,
    "mass_invite": MassInvite,
    "resend_invitation": ResendInvitation,
    "revoke_invitation": RevokeInvitation,
    "accept_invitation": AcceptInvitation,
    "set_contractor_expiry": SetContractorExpiry,
    "configure_tenant": ConfigureTenant,
    "remove_member": RemoveMember,
    "change_role": ChangeRole,
    "register_account": RegisterAccount,
    "record_password_changed": RecordPasswordChanged,
    "lapse_invitation": LapseInvitation,
    "expire_temp_password": ExpireTempPassword,
    "expire_contractor": ExpireContractor,
    "remind_contractor_expiry": RemindContractorExpiry,
    "record_temp_password_delivered": RecordTempPasswordDelivered,
    "retrieve_temp_password": RetrieveTempPassword,
    "record_notification_failed": RecordNotificationFailed,
}


class Audience(StrEnum):
    """Who may send a command (rule 30)."""

    PUBLIC = "public"  # any authenticated sender, within SENDER_POLICY if there is one
    INTERNAL = "internal"  # only the services' own broker users (INTERNAL_SENDERS)


# The one table of who may send what. `retrieve_temp_password` is public: the CLI's
# report sends it as an operator, and it is becoming the sealed retrieval of the contract.
AUDIENCE: dict[str, Audience] = {
    "invite_user": Audience.PUBLIC,
    "mass_invite": Audience.PUBLIC,
    "resend_invitation": Audience.PUBLIC,
    "revoke_invitation": Audience.PUBLIC,
    "accept_invitation": Audience.PUBLIC,
    "set_contractor_expiry": Audience.PUBLIC,
    "configure_tenant": Audience.PUBLIC,
    "register_account": Audience.PUBLIC,
    "record_password_changed": Audience.PUBLIC,
    "retrieve_temp_password": Audience.PUBLIC,
    "remove_member": Audience.PUBLIC,
    "change_role": Audience.PUBLIC,
    "lapse_invitation": Audience.INTERNAL,
    "expire_temp_password": Audience.INTERNAL,
    "expire_contractor": Audience.INTERNAL,
    "remind_contractor_expiry": Audience.INTERNAL,
    "record_temp_password_delivered": Audience.INTERNAL,
    # The notifier's report of an undeliverable email (rule 35).
    "record_notification_failed": Audience.INTERNAL,
}
assert AUDIENCE.keys() == COMMANDS.keys(), "every command says who may send it"

INTERNAL_COMMANDS = frozenset(n for n, a in AUDIENCE.items() if a is Audience.INTERNAL)
PUBLIC_COMMANDS = frozenset(n for n, a in AUDIENCE.items() if a is Audience.PUBLIC)
