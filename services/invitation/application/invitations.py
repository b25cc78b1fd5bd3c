"""Use cases on invitations: invite, mass invite, resend, revoke, accept, lapse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from services.invitation.application.lookups import (
    administrators_of,
    find_invitation,
    membership_of,
    settings_of,
)
from services.invitation.application.temp_passwords import (
    issue_temp_password,
    withdraw_temp_password,
    withdraw_unused_temp_password,
)
from services.invitation.application.tools import Refusal, Tools, iso
from services.invitation.domain.account import Account
from services.invitation.domain.batch import MAX_BATCH, MassInvite
from services.invitation.domain.cause import Cause
from services.invitation.domain.emails import normalise_email
from services.invitation.domain.errors import DomainError
from services.invitation.domain.ids import account_uuid, membership_uuid, tenant_id_to_uuid
from services.invitation.domain.invitation import Invitation
from services.invitation.domain.membership import Membership
from services.invitation.domain.names import check_name
from services.invitation.domain.roles import check_role_and_expiry
from services.invitation.domain.tenant import TenantSettings
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c
from shared.contract.codes import RejectionCode
from shared.secrets import (
    token_hash,
)


@dataclass(frozen=True)
class InvitePlan:
    tenant_id: str
    email: str
    role: str
    access_expires_at: datetime | None
    delivery: str
    settings: TenantSettings
    membership: Membership | None
    account: Account | None
    display_name: str | None
    inviter_name: str | None
    locale: str | None

    @property
    def links_account(self) -> bool:
        """Rule 4: an existing account someone can sign in to is linked, not given a password."""
        return self.account is not None and self.account.can_sign_in


def plan_invite(
    uow: UnitOfWork,
    tenant_id: str,
    row: c.InviteUser | c.MassInvitee,
    delivery: str | None,
    now: datetime,
    email: str | None = None,
    settings: TenantSettings | None = None,
) -> InvitePlan:
    """Every check of rules 1-6 and 31, no change: a refused invitee leaves nothing behind."""
    email = email or normalise_email(row.email)
    check_name("display_name", row.display_name)
    check_name("inviter_name", row.inviter_name)
    settings = settings or settings_of(uow, tenant_id)
    check_role_and_expiry(row.role, row.access_expires_at, settings.contractor_enabled, now)
    membership = uow.get(Membership, membership_uuid(tenant_id, email))
    if membership is not None:
        membership.check_invitable()
    return InvitePlan(
        tenant_id=tenant_id,
        email=email,
        role=row.role,
        access_expires_at=row.access_expires_at,
        delivery=delivery or settings.temp_password_delivery,
        settings=settings,
        membership=membership,
        account=uow.get(Account, account_uuid(email)),
        display_name=row.display_name,
        inviter_name=row.inviter_name,
        locale=row.locale,
    )


def apply_invite(
    tools: Tools, uow: UnitOfWork, plan: InvitePlan, batch_id: UUID | None, cause: Cause
) -> dict[str, Any]:
    invitation_id = uuid4()
    invitation = Invitation.invite(
        invitation_id=invitation_id,
        email=plan.email,
        role=plan.role,
        access_expires_at=plan.access_expires_at,
        ttl=plan.settings.invitation_ttl,
        batch_id=batch_id,
        display_name=plan.display_name,
        inviter_name=plan.inviter_name,
        locale=plan.locale,
        account_id=account_uuid(plan.email),
        token_hash=token_hash(tools.signer.token(invitation_id, 1)),
        cause=cause,
    )
    uow.add(invitation)
    membership = plan.membership or Membership.start(plan.tenant_id, plan.email, cause)
    membership.offer(invitation_id, plan.role, plan.access_expires_at, cause)
    uow.add(membership)
    delivery: str | None = None
    if plan.links_account:
        invitation.record_account_linked(cause)
        outcome = "account_linked"
    else:
        # A new person, or an account an earlier invitation created whose temporary
        # password was withdrawn or expired unused: linking it would leave no way in.
        account = plan.account or Account.create_for_invitation(
            plan.email, plan.display_name, cause
        )
        issue_temp_password(tools, uow, account, invitation_id, plan.delivery, plan.settings, cause)
        outcome, delivery = "temp_password_issued", plan.delivery
    return {
        "invitation_id": str(invitation_id),
        "account_id": str(account_uuid(plan.email)),
        "outcome": outcome,
        "temp_password_delivery": delivery,
        "invitation_expires_at": iso(invitation.expires_at),
    }


def invite_user(tools: Tools, uow: UnitOfWork, cmd: c.InviteUser, cause: Cause) -> dict[str, Any]:
    plan = plan_invite(uow, cmd.tenant_id, cmd, cmd.temp_password_delivery, cause.at)
    return apply_invite(tools, uow, plan, None, cause)


def check_mass_invite_size(cmd: c.MassInvite) -> None:
    if len(cmd.invitees) > MAX_BATCH:
        raise DomainError(
            RejectionCode.BATCH_TOO_LARGE,
            f"at most {MAX_BATCH} invitees per mass invite",
            {"max": MAX_BATCH, "given": len(cmd.invitees)},
        )


def invitee_email(row: c.MassInvitee) -> str | DomainError:
    """A row's normalised email, or why it is not one."""
    try:
        return normalise_email(row.email)
    except DomainError as error:
        return error


def mass_invite_rows(
    tools: Tools,
    uow: UnitOfWork,
    cmd: c.MassInvite,
    cause: Cause,
    batch_id: UUID,
    emails: list[str | DomainError],
    firsts: dict[str, int],
    rows_range: range,
) -> list[dict[str, Any]]:
    """Rows `rows_range` of a mass invite judged and applied: their rows of the report.
    `emails`: each row's `invitee_email` (at least up to the range's end); `firsts`: each
    email's first row (a later one is a duplicate).

    Each row is judged on its own (rule 9), against the state as it is now: a slice
    decided after other commands sees what they did."""
    valid = [e for e in (emails[i] for i in rows_range) if isinstance(e, str)]
    uow.prefetch(
        [tenant_id_to_uuid(cmd.tenant_id)]
        + [membership_uuid(cmd.tenant_id, e) for e in valid]
        + [account_uuid(e) for e in valid]
    )
    settings = settings_of(uow, cmd.tenant_id)  # one tenant: read its settings once
    planned: list[tuple[int, InvitePlan]] = []
    rows: dict[int, dict[str, Any]] = {}
    for index in rows_range:
        row, email = cmd.invitees[index], emails[index]
        try:
            if isinstance(email, DomainError):
                raise email
            if firsts[email] < index:
                raise DomainError(
                    RejectionCode.DUPLICATE_IN_BATCH, "this email is earlier in the batch"
                )
            plan = plan_invite(
                uow, cmd.tenant_id, row, cmd.temp_password_delivery, cause.at, email, settings
            )
            planned.append((index, plan))
            if not plan.links_account:
                # Start its hash now: the rest of planning runs while it is computed.
                tools.passwords.queue()
        except DomainError as error:
            rows[index] = {
                "index": index,
                "email": email if isinstance(email, str) else row.email,
                "status": "refused",
                "error": {
                    "code": error.code.value,
                    "message": error.message,
                    "details": error.details,
                },
            }
    for index, plan in planned:
        result = apply_invite(tools, uow, plan, batch_id, cause)
        rows[index] = {
            "index": index,
            "email": plan.email,
            "status": "invited",
            "role": plan.role,
            "invitation_id": result["invitation_id"],
            "outcome": result["outcome"],
            "temp_password_delivery": result["temp_password_delivery"],
        }
    return [rows[i] for i in rows_range]


def complete_mass_invite(
    uow: UnitOfWork,
    cmd: c.MassInvite,
    batch_id: UUID,
    rows: list[dict[str, Any]],
    cause: Cause,
) -> dict[str, Any]:
    """The report (rule 10), once every row is decided: the `mass_invite` result."""
    batch = MassInvite.complete(batch_id, rows, cmd.temp_password_delivery, cause)
    uow.add(batch)
    return {
        "batch_id": str(batch_id),
        "invited": batch.invited,
        "refused": batch.refused,
        "rows": rows,
    }


def resend_invitation(
    tools: Tools, uow: UnitOfWork, cmd: c.ResendInvitation, cause: Cause
) -> dict[str, Any]:
    invitation = find_invitation(uow, cmd.tenant_id, cmd.invitation_id, cmd.email)
    invitation.check_resendable(cause.at)
    membership = membership_of(uow, invitation)
    membership.check_reofferable(invitation.id)
    account = uow.get(Account, invitation.account_id)
    # Rule 17: an account this invitation created and that was never used gets a
    # new temporary password; one that already signed in (or was linked) does not.
    rotate = (
        account is not None
        and account.temp_invitation_id == invitation.id
        and not account.password_set
    )
    generation = invitation.link_generation + 1
    new_hash = token_hash(tools.signer.token(invitation.id, generation))
    settings = settings_of(uow, cmd.tenant_id)
    invitation.resend(settings.invitation_ttl, new_hash, rotate, cause)
    uow.add(invitation)
    membership.reoffer(invitation.id, cause)
    uow.add(membership)
    if rotate:
        assert account is not None
        assert account.temp_delivery is not None
        withdraw_temp_password(uow, account, cause)
        issue_temp_password(
            tools, uow, account, invitation.id, account.temp_delivery, settings, cause
        )
    return {
        "invitation_id": str(invitation.id),
        "invitation_expires_at": iso(invitation.expires_at),
        "temp_password_reissued": rotate,
    }


def revoke_invitation(
    tools: Tools, uow: UnitOfWork, cmd: c.RevokeInvitation, cause: Cause
) -> dict[str, Any]:
    invitation = find_invitation(uow, cmd.tenant_id, cmd.invitation_id, cmd.email)
    invitation.revoke(cmd.reason, cause)
    uow.add(invitation)
    membership = membership_of(uow, invitation)
    membership.withdraw(invitation.id, cause)
    uow.add(membership)
    withdrawn = withdraw_unused_temp_password(uow, invitation.email, invitation.id, cause)
    return {"invitation_id": str(invitation.id), "temp_password_withdrawn": withdrawn}


def accept_invitation(
    tools: Tools, uow: UnitOfWork, cmd: c.AcceptInvitation, cause: Cause
) -> dict[str, Any] | Refusal:
    claim = tools.signer.verify(cmd.token)
    invitation = None if claim is None else uow.get(Invitation, claim.invitation_id)
    if invitation is None or invitation.tenant_id != cmd.tenant_id:
        raise DomainError(RejectionCode.INVALID_TOKEN, "unknown invitation link")
    email = normalise_email(cmd.email)
    refusal = invitation.acceptance_refusal(token_hash(cmd.token), email, cause.at)
    if refusal is not None:
        invitation.refuse_acceptance(refusal.code.value, cause)
        uow.add(invitation)
        refusal.details.setdefault("invitation_id", str(invitation.id))
        return Refusal(refusal)
    invitation.accept(cause)
    uow.add(invitation)
    membership = membership_of(uow, invitation)
    membership.activate(invitation.id, cause)
    uow.add(membership)
    if invitation.role == "administrator":
        roster = administrators_of(uow, invitation.tenant_id, cause)
        roster.join(invitation.email, cause)
        uow.add(roster)
    return {
        "invitation_id": str(invitation.id),
        "account_id": str(invitation.account_id),
        "email": invitation.email,
        "role": invitation.role,
        "access_expires_at": iso(invitation.access_expires_at),
    }


def lapse_invitation(
    tools: Tools, uow: UnitOfWork, cmd: c.LapseInvitation, cause: Cause
) -> dict[str, Any]:
    invitation = find_invitation(uow, cmd.tenant_id, cmd.invitation_id, None)
    changed = invitation.lapse(cause)
    uow.add(invitation)
    if changed:
        membership = membership_of(uow, invitation)
        membership.withdraw(invitation.id, cause)
        uow.add(membership)
    return {"invitation_id": str(invitation.id), "lapsed": changed}


def record_invitation_email_sent(
    tools: Tools, uow: UnitOfWork, cmd: c.RecordInvitationEmailSent, cause: Cause
) -> dict[str, Any]:
    """The notifier's report: the current link's email (without a password) went out."""
    invitation = find_invitation(uow, cmd.tenant_id, cmd.invitation_id, None)
    recorded = invitation.record_email_sent(cmd.link_generation, cause)
    uow.add(invitation)
    return {"invitation_id": str(invitation.id), "recorded": recorded}
