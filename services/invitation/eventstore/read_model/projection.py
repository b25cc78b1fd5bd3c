"""The read model's fold: stored events in, rows out. Pure: no I/O, no clock.

One fold serves both ways the read model is kept (rule 28): live, in the insert
transaction of every save (the recorders load the rows the saved events touch, fold the
events into them and write the changed rows back, under the events table's lock), and
from scratch (`invitations replay read-model`, rebuild.py: every event into empty rows).

Events come as `(position, topic, fields, originator_id)`, `fields` being the stored JSON
state as stored (envelopes.parse_state) or a domain event's attributes: the value helpers
read both forms. Only the topics in `PROJECTED_TOPICS` matter here.

`invitation_email` (pending / sent / failed) is taken from the events that say an
invitation email was handed to the mail server: `TempPasswordDelivered` (automatic: the
email carries the password) and `InvitationEmailSent` (linked or manual: reported by the
notifier), or that it failed (`NotificationFailed` of an invitation email). A resend sets
it back to pending: a new email, with a new link, is on its way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from services.invitation.domain.ids import account_uuid
from services.invitation.eventstore.envelopes import field_moment, field_uuid

_INV, _ACC, _MEM, _BATCH = (
    "invitations:Invitation.",
    "invitations:Account.",
    "invitations:Membership.",
    "invitations:MassInvite.",
)
AWAITING = ("awaiting_delivery", "awaiting_retrieval")
NOTIFICATION_FAILED = "invitations:NotificationFailure.Recorded"


@dataclass(slots=True)
class InvitationRow:
    invitation_id: UUID
    tenant_id: str
    email: str
    role: str
    status: str
    outcome: str | None
    temp_password_delivery: str | None
    invited_by: str
    inviter_name: str | None
    display_name: str | None
    locale: str | None
    invited_at: datetime
    invited_position: int
    invitation_expires_at: datetime
    access_expires_at: datetime | None
    batch_id: UUID | None
    account_id: UUID
    link_generation: int
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None
    lapsed_at: datetime | None = None
    invitation_email: str = "pending"
    temp_password_id: UUID | None = None
    temp_password: str = "none"
    temp_password_valid_until: datetime | None = None


@dataclass(slots=True)
class MemberRow:
    """One (tenant, email): a member once `status` is set (active, expired, removed).

    The `offered_*` fields are the pending invitation's terms, which become the member's
    at acceptance."""

    membership_id: UUID
    tenant_id: str
    email: str
    account_id: UUID
    offered_role: str | None = None
    offered_access_expires_at: datetime | None = None
    offered_invitation_id: UUID | None = None
    role: str | None = None
    status: str | None = None
    member_since: datetime | None = None
    access_expires_at: datetime | None = None
    invitation_id: UUID | None = None


@dataclass(slots=True)
class BatchRow:
    batch_id: UUID
    tenant_id: str
    invited: int
    refused: int
    completed_at: datetime
    completed_position: int
    actor: str
    # (index, invitation_id, the row of the mass_invite reply as JSON-able data)
    rows: list[tuple[int, UUID | None, dict[str, Any]]] = field(default_factory=list)


def _at(fields: Mapping[str, Any]) -> datetime:
    return field_moment(fields["timestamp"])


def _opt_moment(value: Any) -> datetime | None:
    return None if value is None else field_moment(value)


def _opt_uuid(value: Any) -> UUID | None:
    return None if value is None else field_uuid(value)


@dataclass
class Fold:
    """Rows by key, and which of them changed since the fold began."""

    invitations: dict[UUID, InvitationRow] = field(default_factory=dict)
    members: dict[UUID, MemberRow] = field(default_factory=dict)
    batches: dict[UUID, BatchRow] = field(default_factory=dict)
    changed_invitations: set[UUID] = field(default_factory=set)
    changed_members: set[UUID] = field(default_factory=set)
    # An account's invitations that issued it a temporary password (PasswordChanged).
    by_account: dict[UUID, set[UUID]] = field(default_factory=dict)
    position: int = 0

    def relocate(self, positions: Sequence[int]) -> None:
        """Rows folded before their save had positions were given the events' indexes in
        the save instead: give them the positions the store assigned."""
        for row in self.invitations.values():
            row.invited_position = positions[row.invited_position]
        for batch in self.batches.values():
            batch.completed_position = positions[batch.completed_position]
        self.position = max(positions, default=0)

    def add_invitation(self, row: InvitationRow) -> None:
        self.invitations[row.invitation_id] = row
        if row.temp_password_id is not None:
            self.by_account.setdefault(row.account_id, set()).add(row.invitation_id)

    def apply(self, position: int, topic: str, fields: Mapping[str, Any], origin: UUID) -> None:
        self.position = max(self.position, position)
        handler = _HANDLERS.get(topic)
        if handler is not None:
            handler(self, position, fields, origin)

    # -- helpers for the handlers --------------------------------------------------------

    def invitation(self, invitation_id: UUID) -> InvitationRow | None:
        row = self.invitations.get(invitation_id)
        if row is not None:
            self.changed_invitations.add(invitation_id)
        return row

    def member(self, membership_id: UUID) -> MemberRow | None:
        row = self.members.get(membership_id)
        if row is not None:
            self.changed_members.add(membership_id)
        return row

    def current_password(self, fields: Mapping[str, Any]) -> InvitationRow | None:
        """The row of the invitation a temporary-password event is about, if that
        password is still the invitation's latest one."""
        row = self.invitation(field_uuid(fields["invitation_id"]))
        if row is None or row.temp_password_id != field_uuid(fields["temp_password_id"]):
            return None
        return row


_Handler = Callable[[Fold, int, Mapping[str, Any], UUID], None]


# -- invitations ---------------------------------------------------------------------------


def _invited(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    fold.add_invitation(
        InvitationRow(
            invitation_id=origin,
            tenant_id=str(e["tenant_id"]),
            email=e["email"],
            role=e["role"],
            status="pending",
            outcome=None,
            temp_password_delivery=None,
            invited_by=e["invited_by"],
            inviter_name=e.get("inviter_name"),
            display_name=e.get("display_name"),
            locale=e.get("locale"),
            invited_at=_at(e),
            invited_position=position,
            invitation_expires_at=field_moment(e["invitation_expires_at"]),
            access_expires_at=_opt_moment(e["access_expires_at"]),
            batch_id=_opt_uuid(e["batch_id"]),
            account_id=field_uuid(e["account_id"]),
            link_generation=int(e["link_generation"]),
        )
    )
    fold.changed_invitations.add(origin)


def _account_linked(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.invitation(origin)
    if row is not None:
        row.outcome = "account_linked"


def _resent(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.invitation(origin)
    if row is not None:
        row.status = "pending"
        row.lapsed_at = None
        row.invitation_expires_at = field_moment(e["invitation_expires_at"])
        row.link_generation = int(e["link_generation"])
        row.invitation_email = "pending"


def _status(status: str, moment: str | None) -> _Handler:
    def handler(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
        row = fold.invitation(origin)
        if row is not None:
            row.status = status
            if moment is not None:
                setattr(row, moment, _at(e))

    return handler


def _access_expiry_changed(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.invitation(origin)
    if row is not None:
        row.access_expires_at = field_moment(e["access_expires_at"])


def _email_sent(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.invitation(origin)
    if row is not None and int(e["link_generation"]) == row.link_generation:
        row.invitation_email = "sent"


# -- temporary passwords -------------------------------------------------------------------


def _issued(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.invitation(field_uuid(e["invitation_id"]))
    if row is None:
        return
    row.outcome = row.outcome or "temp_password_issued"
    row.temp_password_delivery = e["delivery"]
    row.temp_password_id = field_uuid(e["temp_password_id"])
    row.temp_password = (
        "awaiting_delivery" if e["delivery"] == "automatic" else ("awaiting_retrieval")
    )
    row.temp_password_valid_until = field_moment(e["valid_until"])
    fold.by_account.setdefault(row.account_id, set()).add(row.invitation_id)


def _delivered(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.current_password(e)
    if row is None:
        return
    if e["delivery"] == "automatic":
        row.temp_password = "delivered"
        row.invitation_email = "sent"  # the password's email is the invitation email
    else:  # how a retrieval was recorded before TempPasswordRetrieved
        row.temp_password = "retrieved"


def _password_state(state: str) -> _Handler:
    def handler(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
        row = fold.current_password(e)
        if row is not None:
            row.temp_password = state

    return handler


def _password_changed(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    """The invitee set a password of their own: a temporary one still waiting to be
    delivered or retrieved can no longer be (the account withdrew it)."""
    for invitation_id in fold.by_account.get(origin, ()):
        row = fold.invitations.get(invitation_id)
        if row is not None and row.temp_password in AWAITING:
            fold.changed_invitations.add(invitation_id)
            row.temp_password = "withdrawn"


# -- members -------------------------------------------------------------------------------


def _membership_created(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    email = e["email"]
    fold.members[origin] = MemberRow(origin, str(e["tenant_id"]), email, account_uuid(email))
    fold.changed_members.add(origin)


def _offered(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.member(origin)
    if row is not None:
        row.offered_role = e["role"]
        row.offered_access_expires_at = _opt_moment(e["access_expires_at"])
        row.offered_invitation_id = field_uuid(e["invitation_id"])


def _activated(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.member(origin)
    if row is not None:
        row.status = "active"
        row.role = row.offered_role
        row.access_expires_at = row.offered_access_expires_at
        row.invitation_id = field_uuid(e["invitation_id"])
        row.member_since = _at(e)


def _contractor_expiry_changed(
    fold: Fold, position: int, e: Mapping[str, Any], origin: UUID
) -> None:
    row = fold.member(origin)
    if row is not None:
        row.offered_access_expires_at = field_moment(e["access_expires_at"])
        if row.status == "active":
            row.access_expires_at = row.offered_access_expires_at


def _contractor_expired(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.member(origin)
    if row is not None and row.status == "active":
        row.status = "expired"


def _member_removed(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.member(origin)
    if row is not None:
        row.status = "removed"


def _role_changed(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    row = fold.member(origin)
    if row is not None:
        row.role, row.access_expires_at = e["role"], _opt_moment(e["access_expires_at"])


def _notification_failed(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    # Only the invitation's own email: the failure of another email changes no row.
    invitation_id = _opt_uuid(e.get("invitation_id"))
    row = None if invitation_id is None else fold.invitation(invitation_id)
    if row is not None and str(e["kind"]).startswith("invitation_"):
        row.invitation_email = "failed"


# -- mass invites --------------------------------------------------------------------------


def _batch_completed(fold: Fold, position: int, e: Mapping[str, Any], origin: UUID) -> None:
    rows = [(int(r["index"]), _opt_uuid(r.get("invitation_id")), dict(r)) for r in e["rows"]]
    fold.batches[origin] = BatchRow(
        batch_id=origin,
        tenant_id=str(e["tenant_id"]),
        invited=int(e["invited"]),
        refused=int(e["refused"]),
        completed_at=_at(e),
        completed_position=position,
        actor=e["actor"],
        rows=rows,
    )


_HANDLERS: dict[str, _Handler] = {
    _INV + "Invited": _invited,
    _INV + "AccountLinked": _account_linked,
    _INV + "Resent": _resent,
    _INV + "Revoked": _status("revoked", "revoked_at"),
    _INV + "Lapsed": _status("lapsed", "lapsed_at"),
    _INV + "Accepted": _status("accepted", "accepted_at"),
    _INV + "AccessExpiryChanged": _access_expiry_changed,
    _INV + "EmailSent": _email_sent,
    _ACC + "TempPasswordIssued": _issued,
    _ACC + "TempPasswordDelivered": _delivered,
    _ACC + "TempPasswordRetrieved": _password_state("retrieved"),
    _ACC + "TempPasswordExpired": _password_state("expired"),
    _ACC + "TempPasswordRevoked": _password_state("withdrawn"),
    _ACC + "PasswordChanged": _password_changed,
    _MEM + "Created": _membership_created,
    _MEM + "Offered": _offered,
    _MEM + "Activated": _activated,
    _MEM + "ContractorExpiryChanged": _contractor_expiry_changed,
    _MEM + "ContractorExpired": _contractor_expired,
    _MEM + "Removed": _member_removed,
    _MEM + "RoleChanged": _role_changed,
    NOTIFICATION_FAILED: _notification_failed,
    _BATCH + "Completed": _batch_completed,
}

# The stored topics the read model follows; the rest never reaches the fold.
PROJECTED_TOPICS: tuple[str, ...] = tuple(_HANDLERS)
# The topics that create their row, and the prefixes of the others by kind of row.
CREATING = frozenset({_INV + "Invited", _MEM + "Created", _BATCH + "Completed"})
INVITATION, ACCOUNT, MEMBERSHIP = _INV, _ACC, _MEM
PASSWORD_CHANGED = _ACC + "PasswordChanged"
