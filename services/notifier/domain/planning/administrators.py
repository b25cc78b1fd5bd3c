"""Notices to a tenant's administrators (rules 8, 14, 25), and who they are.

The administrators are the tenant's active administrators (accepted, or promoted, and
neither removed nor demoted since: members.py) plus its `admin_notification_emails`; an
administrator's own locale wins over English.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.notifier.domain.emails import Kind, PlannedEmail, normalise_address
from services.notifier.domain.planning.state import (
    Json,
    State,
    batch_key,
    invitation_key,
    iso,
    tenant_key,
)
from shared.contract import EventEnvelope
from shared.contract import events as ev


def tenant_of(state: State, tenant_id: str) -> Json:
    return state.get(tenant_key(tenant_id)) or {
        "extra": [],
        "admins": {},
        "one_admin_reminded": False,
    }


def admin_recipients(
    tenant: Json, exclude: set[str] | frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """(email, locale) of every active administrator and extra address, minus `exclude`."""
    recipients = {email: "en" for email in tenant["extra"]}
    recipients.update(tenant["admins"])  # an administrator's own locale wins
    return sorted((e, loc) for e, loc in recipients.items() if e not in exclude)


@dataclass(frozen=True)
class Origin:
    """The event an email comes from: its id keys the email, its position orders it."""

    event_id: UUID
    position: int
    tenant_id: str | None


def to_admins(
    state: State,
    origin: EventEnvelope | Origin,
    kind: Kind,
    context: Json,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[PlannedEmail]:
    if origin.tenant_id is None:
        return []
    tenant = tenant_of(state, origin.tenant_id)
    return [
        PlannedEmail(
            event_id=origin.event_id,
            position=origin.position,
            kind=kind,
            recipient=email,
            locale=locale,
            tenant_id=origin.tenant_id,
            context={"tenant_id": origin.tenant_id, **context},
        )
        for email, locale in admin_recipients(tenant, exclude)
    ]


def tenant_configured(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.TenantConfigured)
    if envelope.tenant_id is None:
        return []
    tenant = tenant_of(state, envelope.tenant_id)
    tenant["extra"] = sorted(
        {normalise_address(e) for e in data.settings.admin_notification_emails}
    )
    state.put(tenant_key(envelope.tenant_id), tenant)
    return []


def invitation_accepted(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.InvitationAccepted)
    if envelope.tenant_id is None:
        return []
    email = normalise_address(data.email)
    invitation = state.get(invitation_key(data.invitation_id)) or {}
    emails = to_admins(
        state,
        envelope,
        Kind.ADMIN_INVITATION_ACCEPTED,
        {
            "email": email,
            "display_name": invitation.get("display_name"),
            "role": data.role,
            "accepted_at": iso(envelope.occurred_at),
        },
        exclude={email},
    )
    if invitation:
        # Its temporary password was used to sign in: no "expired unused" notice later.
        state.put(invitation_key(data.invitation_id), {**invitation, "accepted": True})
    if data.role != "administrator":
        return emails
    tenant = tenant_of(state, envelope.tenant_id)
    before = len(tenant["admins"])
    tenant["admins"] = {**tenant["admins"], email: invitation.get("locale", "en")}
    emails += recommend_if_alone(tenant, before, envelope)
    state.put(tenant_key(envelope.tenant_id), tenant)
    return emails


def recommend_if_alone(tenant: Json, before: int, envelope: EventEnvelope) -> list[PlannedEmail]:
    """Rule 8, looked at again whenever the count of administrators changes (rule 34).

    The recommendation goes to the only administrator when the first one joins (once per
    tenant) and every time the administrators drop to one (a removal, a demotion).
    `tenant` is updated; the caller puts it.
    """
    admins = tenant["admins"]
    if len(admins) != 1 or envelope.tenant_id is None:
        return []
    if before == 0 and tenant["one_admin_reminded"]:
        return []
    if before == 1:
        return []
    tenant["one_admin_reminded"] = True
    [(email, locale)] = admins.items()
    return [
        PlannedEmail(
            event_id=envelope.event_id,
            position=envelope.position,
            kind=Kind.ADMIN_ONE_ADMINISTRATOR,
            recipient=email,
            locale=locale,
            tenant_id=envelope.tenant_id,
            context={"tenant_id": envelope.tenant_id, "email": email},
        )
    ]


def temp_password_expired(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.TempPasswordExpired)
    invitation = state.get(invitation_key(data.invitation_id)) or {}
    if invitation.get("accepted"):
        # Not unused: the invitee signed in with it and never set their own, and the
        # advice (resend the invitation) would be refused for an accepted invitation.
        return []
    return to_admins(
        state,
        envelope,
        Kind.ADMIN_TEMP_PASSWORD_EXPIRED,
        {
            "email": normalise_address(data.email),
            "display_name": invitation.get("display_name"),
            "invitation_id": str(data.invitation_id),
        },
    )


def mass_invite_completed(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.MassInviteCompleted)
    key = batch_key(data.batch_id)
    manual = int((state.get(key) or {}).get("manual", 0))
    state.delete(key)
    context = {
        "batch_id": str(data.batch_id),
        "invited": data.invited,
        "refused": data.refused,
        "manual": manual,
    }
    emails = to_admins(state, envelope, Kind.ADMIN_MASS_INVITE_COMPLETED, context)
    if manual:
        emails += to_admins(
            state,
            envelope,
            Kind.ADMIN_MANUAL_PASSWORDS_PENDING,
            {
                "count": manual,
                "batch_id": str(data.batch_id),
                "email": None,
                "display_name": None,
                "temp_password_id": None,
                "resent": False,
            },
        )
    return emails
