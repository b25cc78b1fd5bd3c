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


class RecordInvitationEmailSent(TenantCommand):
    """The notifier handed an invitation email without a password (linked or manual) to
    the mail server; an automatic one is told by `record_temp_password_delivered`."""

    invitation_id: UUID
    link_generation: int = Field(ge=1)


# -- public since the read side (contract: "Retrieving a manual temporary password") --------

# base64 (standard or URL-safe, padding optional) of 32 bytes: 43 or 44 characters.
RecipientPublicKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/_-]{43}=?$")]


class RetrieveTempPassword(_ByInvitationOrEmail):
    """Take a manual temporary password, once, sealed to `recipient_public_key` (an X25519
    public key): only the holder of its private key can open the result."""

    recipient_public_key: RecipientPublicKey


# -- queries (contract: "Queries"): they change nothing and record no event ------------------

InvitationStatus = Literal["pending", "accepted", "revoked", "lapsed"]
MemberStatus = Literal["active", "expired", "removed"]
Role = Literal["user", "administrator", "contractor"]
PageSize = Annotated[int, Field(ge=1, le=500)]
PageToken = Annotated[str, Field(min_length=1, max_length=1024)]


class _Paged(TenantCommand):
    page_size: PageSize = 100
    page_token: PageToken | None = None


class GetInvitation(_ByInvitationOrEmail):
    pass


class ListInvitations(_Paged):
    """Newest first."""

    status: list[InvitationStatus] | None = Field(default=None, min_length=1, max_length=4)
    role: Role | None = None
    email: str | None = Field(default=None, max_length=320)
    batch_id: UUID | None = None


class ListMembers(_Paged):
    """By email."""

    role: Role | None = None
    status: list[MemberStatus] | None = Field(default=None, min_length=1, max_length=3)


class LookupInvitationToken(Command):
    """The login front end: "you are invited to X as Y", before sign-in. No `tenant_id`."""

    token: str = Field(min_length=1, max_length=512)


class GetMassInviteReport(_Paged):
    """Paged over the report's rows, in input order."""

    batch_id: UUID


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
    "record_invitation_email_sent": RecordInvitationEmailSent,
    "get_invitation": GetInvitation,
    "list_invitations": ListInvitations,
    "list_members": ListMembers,
    "lookup_invitation_token": LookupInvitationToken,
    "get_mass_invite_report": GetMassInviteReport,
}


class Audience(StrEnum):
    """Who may send a command (rule 30)."""

    PUBLIC = "public"  # any authenticated sender, within SENDER_POLICY if there is one
    INTERNAL = "internal"  # only the services' own broker users (INTERNAL_SENDERS)


# The one table of who may send what. `retrieve_temp_password` is public (the contract's
# sealed retrieval: a backend's or the CLI's, each with a key pair of its own), and so is
# every query; `record_invitation_email_sent` is the notifier's.
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
    "get_invitation": Audience.PUBLIC,
    "list_invitations": Audience.PUBLIC,
    "list_members": Audience.PUBLIC,
    "lookup_invitation_token": Audience.PUBLIC,
    "get_mass_invite_report": Audience.PUBLIC,
    "lapse_invitation": Audience.INTERNAL,
    "expire_temp_password": Audience.INTERNAL,
    "expire_contractor": Audience.INTERNAL,
    "remind_contractor_expiry": Audience.INTERNAL,
    "record_temp_password_delivered": Audience.INTERNAL,
    # The notifier's report of an undeliverable email (rule 35).
    "record_notification_failed": Audience.INTERNAL,
    "record_invitation_email_sent": Audience.INTERNAL,
}
assert AUDIENCE.keys() == COMMANDS.keys(), "every command says who may send it"

INTERNAL_COMMANDS = frozenset(n for n, a in AUDIENCE.items() if a is Audience.INTERNAL)
PUBLIC_COMMANDS = frozenset(n for n, a in AUDIENCE.items() if a is Audience.PUBLIC)

# Answered from the read model, outside the batches: no event, no stored reply. They pass
# the sender gate like any public command (SENDER_POLICY may restrict them too).
QUERIES = frozenset(
    {
        "get_invitation",
        "list_invitations",
        "list_members",
        "lookup_invitation_token",
        "get_mass_invite_report",
    }
)
