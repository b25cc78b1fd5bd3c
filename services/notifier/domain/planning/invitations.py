"""The invitation email to the invitee: two halves, either order (rules 4, 5, 17, 24).

The variant (linked / automatic / manual) is decided by two events of one transaction
(UserInvited or InvitationResent, plus AccountLinked or TempPasswordIssued), in either
order; the first half is kept in the state until the second arrives. With it go the
administrators' notices of a new administrator (rule 8) and of a manual password to
forward (rule 5).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.notifier.domain.emails import (
    Kind,
    PlannedEmail,
    normalise_address,
    normalise_locale,
)
from services.notifier.domain.planning.administrators import Origin, to_admins
from services.notifier.domain.planning.inviter import shown_inviter
from services.notifier.domain.planning.state import (
    Json,
    State,
    batch_key,
    invitation_key,
    iso,
    member_key,
    pending_key,
)
from shared.contract import EventEnvelope
from shared.contract import events as ev

INVITATION_KINDS = frozenset(
    {Kind.INVITATION_LINKED, Kind.INVITATION_AUTOMATIC, Kind.INVITATION_MANUAL}
)
SUPERSEDING = frozenset({"InvitationRevoked", "InvitationLapsed", "InvitationResent"})


def superseded_invitation(envelope: EventEnvelope) -> UUID | None:
    """The invitation whose earlier invitation emails must not go out any more.

    A revoked or lapsed invitation's link no longer works, and a resend invalidates
    every older link: an invitation email of it still waiting to be sent (the notifier
    was behind) is dropped rather than delivered with a dead link.
    """
    if envelope.event_type not in SUPERSEDING:
        return None
    invitation_id = envelope.data.get("invitation_id")
    return None if invitation_id is None else UUID(str(invitation_id))


def user_invited(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.UserInvited)
    tenant_id = envelope.tenant_id or ""
    email = normalise_address(data.email)
    locale = normalise_locale(data.locale)
    state.put(
        invitation_key(data.invitation_id),
        {
            "tenant_id": tenant_id,
            "email": email,
            "role": data.role,
            "locale": locale,
            "display_name": data.display_name,
            "invited_by": data.invited_by,
            "inviter_name": data.inviter_name,
            "access_expires_at": iso(data.access_expires_at),
            "invitation_expires_at": iso(data.invitation_expires_at),
            "batch_id": None if data.batch_id is None else str(data.batch_id),
            "link_generation": data.link_generation,
        },
    )
    state.put(member_key(tenant_id, email), {"locale": locale, "display_name": data.display_name})
    emails: list[PlannedEmail] = []
    if data.role == "administrator":
        # Rule 8: the tenant's other administrators hear of a new administrator.
        emails += to_admins(
            state,
            envelope,
            Kind.ADMIN_ADMINISTRATOR_INVITED,
            {
                "email": email,
                "display_name": data.display_name,
                "inviter": shown_inviter(data.inviter_name, data.invited_by),
                "invitation_expires_at": iso(data.invitation_expires_at),
            },
            exclude={email},
        )
    main = {
        "event_id": str(envelope.event_id),
        "position": envelope.position,
        "resent": False,
        "link_generation": data.link_generation,
        "invitation_expires_at": iso(data.invitation_expires_at),
    }
    return emails + _offer(state, envelope, data.invitation_id, "main", main)


def invitation_resent(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.InvitationResent)
    key = invitation_key(data.invitation_id)
    invitation = state.get(key)
    if invitation is not None:
        invitation["link_generation"] = data.link_generation
        invitation["invitation_expires_at"] = iso(data.invitation_expires_at)
        state.put(key, invitation)
    main = {
        "event_id": str(envelope.event_id),
        "position": envelope.position,
        "resent": True,
        "link_generation": data.link_generation,
        "invitation_expires_at": iso(data.invitation_expires_at),
    }
    if not data.temp_password_reissued:
        # An account that is linked or already has its own password: nothing to wait for.
        return _invitation_email(state, envelope.tenant_id, data.invitation_id, main, None)
    return _offer(state, envelope, data.invitation_id, "main", main)


def account_linked(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.AccountLinked)
    half = {"type": "linked", "event_id": str(envelope.event_id), "position": envelope.position}
    return _offer(state, envelope, data.invitation_id, "half", half)


def temp_password_issued(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.TempPasswordIssued)
    half = {
        "type": data.delivery,
        "event_id": str(envelope.event_id),
        "position": envelope.position,
        "valid_until": iso(data.valid_until),
        "temp_password_id": None if data.temp_password_id is None else str(data.temp_password_id),
    }
    return _offer(state, envelope, data.invitation_id, "half", half)


def _offer(
    state: State, envelope: EventEnvelope, invitation_id: UUID, role: str, part: Json
) -> list[PlannedEmail]:
    """Keep one half; when both are known, the invitation email (and what goes with it)."""
    key = pending_key(invitation_id, envelope.correlation_id)
    pending = state.get(key) or {}
    other = "half" if role == "main" else "main"
    if pending.get(other) is None:
        pending[role] = part
        state.put(key, pending)
        return []
    state.delete(key)
    main, half = (part, pending["half"]) if role == "main" else (pending["main"], part)
    return _invitation_email(state, envelope.tenant_id, invitation_id, main, half)


_VARIANTS = {
    "linked": Kind.INVITATION_LINKED,
    "automatic": Kind.INVITATION_AUTOMATIC,
    "manual": Kind.INVITATION_MANUAL,
}


def _invitation_email(
    state: State, tenant_id: str | None, invitation_id: UUID, main: Json, half: Json | None
) -> list[PlannedEmail]:
    invitation = state.get(invitation_key(invitation_id))
    if invitation is None:  # a resend of an invitation this store never invited
        return []
    variant = "linked" if half is None else str(half["type"])
    kind = _VARIANTS[variant]
    position = max(int(main["position"]), int(half["position"]) if half else 0)
    context = {
        "tenant_id": invitation["tenant_id"],
        "email": invitation["email"],
        "display_name": invitation["display_name"],
        "role": invitation["role"],
        # Stored before inviter_name existed: no such key, and the actor alone decides.
        "inviter": shown_inviter(invitation.get("inviter_name"), invitation["invited_by"]),
        "access_expires_at": invitation["access_expires_at"],
        "invitation_expires_at": main["invitation_expires_at"],
        "resent": bool(main["resent"]),
        "temp_password_valid_until": None if half is None else half.get("valid_until"),
    }
    automatic_id = half.get("temp_password_id") if half and variant == "automatic" else None
    emails = [
        PlannedEmail(
            event_id=UUID(str(main["event_id"])),
            position=position,
            kind=kind,
            recipient=invitation["email"],
            locale=invitation["locale"],
            tenant_id=invitation["tenant_id"],
            context=context,
            invitation_id=invitation_id,
            link_generation=int(main["link_generation"]),
            temp_password_id=None if automatic_id is None else UUID(str(automatic_id)),
        )
    ]
    if variant == "manual" and half is not None:
        emails += _manual_password_notice(state, tenant_id, invitation, main, half)
    return emails


def _manual_password_notice(
    state: State,
    tenant_id: str | None,
    invitation: Json,
    main: Json,
    half: Json,
) -> list[PlannedEmail]:
    """Rule 5 (manual): the administrators must fetch and forward the password.

    A mass invite's passwords are told once for the batch, when it completes (one email
    per batch, not 10,000); a single invite or a resend is told on its own.
    """
    batch_id = invitation["batch_id"]
    if batch_id is not None and not main["resent"]:
        counter = state.get(batch_key(batch_id)) or {"manual": 0}
        counter["manual"] = int(counter["manual"]) + 1
        state.put(batch_key(batch_id), counter)
        return []
    if tenant_id is None:
        return []
    # Keyed by the TempPasswordIssued event: one notice per password issued.
    origin = Origin(UUID(str(half["event_id"])), int(half["position"]), tenant_id)
    return to_admins(
        state,
        origin,
        Kind.ADMIN_MANUAL_PASSWORDS_PENDING,
        {
            "count": 1,
            "batch_id": batch_id,
            "email": invitation["email"],
            "display_name": invitation["display_name"],
            "temp_password_id": half.get("temp_password_id"),
            "resent": bool(main["resent"]),
        },
    )
