"""Events published on `invitations.events`: one envelope, and the `data` of each type.

Consumers validate `data` with `EVENT_DATA[event_type]` when they need typed access;
unknown extra fields are allowed there so that producers may extend an event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class EventEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: UUID
    event_type: str
    schema_version: int = 1
    occurred_at: datetime
    position: int
    tenant_id: str | None
    aggregate_id: UUID
    aggregate_version: int
    correlation_id: str | None
    actor: str | None
    # The broker user whose command caused it (AMQP `user_id`, checked by RabbitMQ):
    # `actor` is what the caller said, `sender` the proof. Null for events recorded
    # before senders were (and for commands run in process, by tests and tools).
    sender: str | None = None
    data: dict[str, Any]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class TenantSettingsData(_Data):
    contractor_enabled: bool
    temp_password_delivery: Literal["automatic", "manual"]
    invitation_ttl: timedelta
    temp_password_ttl: timedelta
    expiry_reminders: list[timedelta]
    admin_notification_emails: list[str]


class TenantConfigured(_Data):
    settings: TenantSettingsData
    changed: list[str]


class AccountRegistered(_Data):
    account_id: UUID
    email: str


class UserInvited(_Data):
    invitation_id: UUID
    email: str
    role: Literal["user", "administrator", "contractor"]
    access_expires_at: datetime | None
    invitation_expires_at: datetime
    invited_by: str
    batch_id: UUID | None
    display_name: str | None
    locale: str | None = None
    link_generation: int = 1
    # The person the email shows as inviting (null: none was given).
    inviter_name: str | None = None


class AccountLinked(_Data):
    invitation_id: UUID
    account_id: UUID
    email: str


class TempPasswordIssued(_Data):
    invitation_id: UUID
    account_id: UUID
    email: str
    delivery: Literal["automatic", "manual"]
    valid_until: datetime
    temp_password_id: UUID | None = None


class InvitationResent(_Data):
    invitation_id: UUID
    invitation_expires_at: datetime
    temp_password_reissued: bool
    link_generation: int = 1


class InvitationRevoked(_Data):
    invitation_id: UUID
    reason: str | None


class InvitationLapsed(_Data):
    invitation_id: UUID


class InvitationAccepted(_Data):
    invitation_id: UUID
    account_id: UUID
    email: str
    role: str


class InvitationAcceptanceRefused(_Data):
    invitation_id: UUID
    reason: str


class ContractorExpiryChanged(_Data):
    account_id: UUID
    email: str
    access_expires_at: datetime
    previous_access_expires_at: datetime


class ContractorExpiryApproaching(_Data):
    account_id: UUID
    email: str
    access_expires_at: datetime
    offset: timedelta


class ContractorExpired(_Data):
    account_id: UUID
    email: str
    access_expires_at: datetime
    expired_at: datetime


class TempPasswordExpired(_Data):
    invitation_id: UUID
    account_id: UUID
    email: str


class PasswordChanged(_Data):
    account_id: UUID
    email: str


class MassInviteCompleted(_Data):
    batch_id: UUID
    invited: int
    refused: int


# Extensions of the contract.


class TempPasswordDelivered(_Data):
    """The sealed copy was destroyed after delivery (automatic: emailed; manual: retrieved)."""

    invitation_id: UUID
    account_id: UUID
    email: str
    temp_password_id: UUID
    delivery: Literal["automatic", "manual"]


class TempPasswordRevoked(_Data):
    """An unused temporary password was withdrawn: its invitation was revoked or re-sent,
    its member removed, or the contractor's access ended."""

    invitation_id: UUID
    account_id: UUID
    email: str
    temp_password_id: UUID


class MemberRemoved(_Data):
    """An administrator ended a member's access (rule 34); `role` is the one they had."""

    account_id: UUID
    email: str
    role: str
    reason: str | None


class MemberRoleChanged(_Data):
    """A member's role changed (rule 34); `access_expires_at` is set for a contractor."""

    account_id: UUID
    email: str
    role: Literal["user", "administrator", "contractor"]
    previous_role: str
    access_expires_at: datetime | None
    invitation_id: UUID | None = None  # the invitation the membership came from


class NotificationFailed(_Data):
    """An email could not be delivered (rule 35): refused for good, or retries exhausted.

    `kind` is the notifier's kind of email; `invitation_id` is set when the email was the
    invitation itself; `reason` is the mail server's reply, or why it was not tried.
    """

    kind: str
    recipient: str
    invitation_id: UUID | None
    reason: str
    message_key: UUID | None = None


class TempPasswordRetrieved(_Data):
    """A manual temporary password was retrieved (sealed to the caller's key), once; its
    sealed copy was destroyed in the same transaction."""

    invitation_id: UUID
    account_id: UUID
    email: str
    temp_password_id: UUID


class InvitationEmailSent(_Data):
    """An invitation email without a password (linked, or manual delivery) was handed to
    the mail server; an automatic one is told by `TempPasswordDelivered`."""

    invitation_id: UUID
    link_generation: int


EVENT_DATA: dict[str, type[_Data]] = {
    cls.__name__: cls
    for cls in (
        TenantConfigured,
        AccountRegistered,
        UserInvited,
        AccountLinked,
        TempPasswordIssued,
        InvitationResent,
        InvitationRevoked,
        InvitationLapsed,
        InvitationAccepted,
        InvitationAcceptanceRefused,
        ContractorExpiryChanged,
        ContractorExpiryApproaching,
        ContractorExpired,
        TempPasswordExpired,
        PasswordChanged,
        MassInviteCompleted,
        TempPasswordDelivered,
        TempPasswordRevoked,
        MemberRemoved,
        MemberRoleChanged,
        NotificationFailed,
        TempPasswordRetrieved,
        InvitationEmailSent,
    )
}
