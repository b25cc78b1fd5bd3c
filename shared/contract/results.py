"""What queries answer (contract, "Queries"): the `result` of each reply, field for field.

The queries themselves are commands (shared/contract/commands.py); these models are their
results, and the AsyncAPI document's schemas for them. Nothing here ever holds a
password or a token.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contract.commands import InvitationStatus, MemberStatus, Role

InvitationEmail = Literal["pending", "sent", "failed"]
# The contract's states, plus `awaiting_delivery`: an automatic password whose email has
# not been handed to the mail server yet.
TempPasswordState = Literal[
    "none",
    "awaiting_delivery",
    "awaiting_retrieval",
    "delivered",
    "retrieved",
    "withdrawn",
    "expired",
]


# -- results --------------------------------------------------------------------------------


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class InvitationView(Result):
    """An invitation as the read model holds it. Never a password or a token."""

    invitation_id: UUID
    tenant_id: str
    email: str
    role: Role
    status: InvitationStatus
    outcome: Literal["account_linked", "temp_password_issued"] | None
    temp_password_delivery: Literal["automatic", "manual"] | None
    invited_by: str
    inviter_name: str | None
    invited_at: str
    invitation_expires_at: str
    access_expires_at: str | None
    batch_id: UUID | None
    accepted_at: str | None
    revoked_at: str | None
    lapsed_at: str | None
    invitation_email: InvitationEmail
    # Extensions: the temporary password's state and until when it is valid; what the
    # invitee is called and the language of their emails.
    temp_password: TempPasswordState
    temp_password_valid_until: str | None
    display_name: str | None = None
    locale: str | None = None


class MemberView(Result):
    account_id: UUID
    email: str
    role: Role
    status: MemberStatus
    member_since: str
    access_expires_at: str | None
    invitation_id: UUID | None


class ReportRowError(Result):
    code: str
    message: str
    details: dict[str, object] = {}


class ReportRow(Result):
    """A row of the `mass_invite` reply, with the invitation's live state."""

    index: int
    email: str
    status: Literal["invited", "refused"]
    invitation_id: UUID | None = None
    outcome: str | None = None
    role: str | None = None
    temp_password_delivery: str | None = None
    error: ReportRowError | None = None
    invitation_status: InvitationStatus | None = None
    invitation_email: InvitationEmail | None = None
    temp_password: TempPasswordState | None = None


class InvitationResult(Result):
    invitation: InvitationView


class InvitationPage(Result):
    invitations: list[InvitationView]
    next_page_token: str | None


class MemberPage(Result):
    members: list[MemberView]
    next_page_token: str | None


class MassInviteReportPage(Result):
    batch_id: UUID
    invited: int
    refused: int
    rows: list[ReportRow]
    next_page_token: str | None


class SealedTempPassword(Result):
    """The result of `retrieve_temp_password`: the password sealed to the caller's key.

    `sealed_temp_password` is base64 of a libsodium sealed box (`crypto_box_seal`) of the
    UTF-8 password. It is never stored: the same `command_id` again is answered with it
    null (`sealed_copy_destroyed` true), and the password cannot be retrieved again.
    """

    invitation_id: UUID
    email: str
    sealed_temp_password: str | None
    valid_until: str | None
    sealed_copy_destroyed: bool = True


QUERY_RESULTS: dict[str, type[Result]] = {
    "get_invitation": InvitationResult,
    "list_invitations": InvitationPage,
    "list_members": MemberPage,
    "lookup_invitation_token": InvitationResult,
    "get_mass_invite_report": MassInviteReportPage,
}
