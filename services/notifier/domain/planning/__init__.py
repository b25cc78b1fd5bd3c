"""Which emails an event implies, and to whom (rules 4, 5, 8, 14, 24, 25).

`plan(state, envelope)` is a pure function of the events seen so far (held in `state`,
a key -> JSON-object map the caller loads and saves) and the next event, in event-store
order. Replaying the same history gives the same emails with the same keys, which is
what lets the sent-records dedupe a replay (rule 26).

State keys:
- `tenant:{tenant_id}`: `extra` (admin_notification_emails), `admins` (active
  administrators -> their locale), `one_admin_reminded`;
- `inv:{invitation_id}`: what the emails say about an invitation (email, role, locale...);
- `member:{tenant_id}:{email}`: the invitee's locale and name, for contractor reminders;
- `pending:{invitation_id}:{correlation_id}`: one half of an invitation email. The
  variant (linked / automatic / manual) is decided by two events of one transaction
  (UserInvited or InvitationResent, plus AccountLinked or TempPasswordIssued), in either
  order; the first is kept here until the second arrives;
- `batch:{batch_id}`: manual passwords issued by a mass invite, told once it completes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from services.notifier.domain.emails import (
    Kind,
    PlannedEmail,
    normalise_address,
    normalise_locale,
)
from shared.contract import EVENT_DATA, EventEnvelope
from shared.contract import events as ev

Json = dict[str, Any]


class State(Protocol):
    """The notifier's memory of past events. `put` after every change of a value."""

    def get(self, key: str) -> Json | None: ...

    def put(self, key: str, value: Json) -> None: ...

    def delete(self, key: str) -> None: ...


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _seconds(duration: timedelta) -> float:
    return duration.total_seconds()


def tenant_key(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def invitation_key(invitation_id: UUID) -> str:
    return f"inv:{invitation_id}"


def member_key(tenant_id: str, email: str) -> str:
    return f"member:{tenant_id}:{normalise_address(email)}"


def pending_key(invitation_id: UUID, correlation_id: str | None) -> str:
    return f"pending:{invitation_id}:{correlation_id or ''}"


def batch_key(batch_id: UUID | str) -> str:
    return f"batch:{batch_id}"


def keys_for(envelope: EventEnvelope) -> list[str]:
    """The state an event will read, so a batch can load it in one query (a hint only)."""
    data, tenant = envelope.data, envelope.tenant_id
    keys = [tenant_key(tenant)] if tenant else []
    invitation_id = data.get("invitation_id")
    if invitation_id:
        keys.append(f"inv:{invitation_id}")
        keys.append(f"pending:{invitation_id}:{envelope.correlation_id or ''}")
    email = data.get("email")
    if tenant and isinstance(email, str):
        keys.append(member_key(tenant, email))
    if data.get("batch_id"):
        keys.append(batch_key(data["batch_id"]))
    return keys


INVITATION_KINDS = frozenset(
    {Kind.INVITATION_LINKED, Kind.INVITATION_AUTOMATIC, Kind.INVITATION_MANUAL}
)
_SUPERSEDING = frozenset({"InvitationRevoked", "InvitationLapsed", "InvitationResent"})


def superseded_invitation(envelope: EventEnvelope) -> UUID | None:
    """The invitation whose earlier invitation emails must not go out any more.

    A revoked or lapsed invitation's link no longer works, and a resend invalidates
    every older link: an invitation email of it still waiting to be sent (the notifier
    was behind) is dropped rather than delivered with a dead link.
    """
    if envelope.event_type not in _SUPERSEDING:
        return None
    invitation_id = envelope.data.get("invitation_id")
    return None if invitation_id is None else UUID(str(invitation_id))


def plan(state: State, envelope: EventEnvelope) -> list[PlannedEmail]:
    """The emails `envelope` implies, updating `state`. Unknown event types imply none."""
    handler = _HANDLERS.get(envelope.event_type)
    if handler is None:
        return []
    data = EVENT_DATA[envelope.event_type].model_validate(envelope.data)
    return handler(state, envelope, data)


# -- tenants and their administrators ----------------------------------------------------


def _tenant(state: State, tenant_id: str) -> Json:
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
class _Origin:
    """The event an email comes from: its id keys the email, its position orders it."""

    event_id: UUID
    position: int
    tenant_id: str | None


def _to_admins(
    state: State,
    origin: EventEnvelope | _Origin,
    kind: Kind,
    context: Json,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[PlannedEmail]:
    if origin.tenant_id is None:
        return []
    tenant = _tenant(state, origin.tenant_id)
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


def _tenant_configured(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.TenantConfigured)
    if envelope.tenant_id is None:
        return []
    tenant = _tenant(state, envelope.tenant_id)
    tenant["extra"] = sorted(
        {normalise_address(e) for e in data.settings.admin_notification_emails}
    )
    state.put(tenant_key(envelope.tenant_id), tenant)
    return []


# -- the invitation email: two halves, either order ---------------------------------------


def _user_invited(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
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
            "access_expires_at": _iso(data.access_expires_at),
            "invitation_expires_at": _iso(data.invitation_expires_at),
            "batch_id": None if data.batch_id is None else str(data.batch_id),
            "link_generation": data.link_generation,
        },
    )
    state.put(member_key(tenant_id, email), {"locale": locale, "display_name": data.display_name})
    emails: list[PlannedEmail] = []
    if data.role == "administrator":
        # Rule 8: the tenant's other administrators hear of a new administrator.
        emails += _to_admins(
            state,
            envelope,
            Kind.ADMIN_ADMINISTRATOR_INVITED,
            {
                "email": email,
                "display_name": data.display_name,
                "invited_by": data.invited_by,
                "invitation_expires_at": _iso(data.invitation_expires_at),
            },
            exclude={email},
        )
    main = {
        "event_id": str(envelope.event_id),
        "position": envelope.position,
        "resent": False,
        "link_generation": data.link_generation,
        "invitation_expires_at": _iso(data.invitation_expires_at),
    }
    return emails + _offer(state, envelope, data.invitation_id, "main", main)


def _invitation_resent(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.InvitationResent)
    key = invitation_key(data.invitation_id)
    invitation = state.get(key)
    if invitation is not None:
        invitation["link_generation"] = data.link_generation
        invitation["invitation_expires_at"] = _iso(data.invitation_expires_at)
        state.put(key, invitation)
    main = {
        "event_id": str(envelope.event_id),
        "position": envelope.position,
        "resent": True,
        "link_generation": data.link_generation,
        "invitation_expires_at": _iso(data.invitation_expires_at),
    }
    if not data.temp_password_reissued:
        # An account that is linked or already has its own password: nothing to wait for.
        return _invitation_email(state, envelope.tenant_id, data.invitation_id, main, None)
    return _offer(state, envelope, data.invitation_id, "main", main)


def _account_linked(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.AccountLinked)
    half = {"type": "linked", "event_id": str(envelope.event_id), "position": envelope.position}
    return _offer(state, envelope, data.invitation_id, "half", half)


def _temp_password_issued(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.TempPasswordIssued)
    half = {
        "type": data.delivery,
        "event_id": str(envelope.event_id),
        "position": envelope.position,
        "valid_until": _iso(data.valid_until),
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
        "invited_by": invitation["invited_by"],
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
    origin = _Origin(UUID(str(half["event_id"])), int(half["position"]), tenant_id)
    return _to_admins(
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


# -- acceptance, administrators and rule 8 ------------------------------------------------


def _invitation_accepted(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.InvitationAccepted)
    if envelope.tenant_id is None:
        return []
    email = normalise_address(data.email)
    invitation = state.get(invitation_key(data.invitation_id)) or {}
    emails = _to_admins(
        state,
        envelope,
        Kind.ADMIN_INVITATION_ACCEPTED,
        {
            "email": email,
            "display_name": invitation.get("display_name"),
            "role": data.role,
            "accepted_at": _iso(envelope.occurred_at),
        },
        exclude={email},
    )
    if data.role != "administrator":
        return emails
    tenant = _tenant(state, envelope.tenant_id)
    tenant["admins"] = {**tenant["admins"], email: invitation.get("locale", "en")}
    if len(tenant["admins"]) == 1 and not tenant["one_admin_reminded"]:
        # Rule 8, sent once: the tenant's first administrator is its only one.
        tenant["one_admin_reminded"] = True
        emails.append(
            PlannedEmail(
                event_id=envelope.event_id,
                position=envelope.position,
                kind=Kind.ADMIN_ONE_ADMINISTRATOR,
                recipient=email,
                locale=tenant["admins"][email],
                tenant_id=envelope.tenant_id,
                context={"tenant_id": envelope.tenant_id, "email": email},
            )
        )
    state.put(tenant_key(envelope.tenant_id), tenant)
    return emails


# -- contractors, passwords, mass invites -------------------------------------------------


def _to_contractor(
    state: State, envelope: EventEnvelope, email: str, kind: Kind, context: Json
) -> PlannedEmail:
    tenant_id = envelope.tenant_id or ""
    member = state.get(member_key(tenant_id, email)) or {}
    return PlannedEmail(
        event_id=envelope.event_id,
        position=envelope.position,
        kind=kind,
        recipient=email,
        locale=member.get("locale", "en"),
        tenant_id=envelope.tenant_id,
        context={"tenant_id": tenant_id, "display_name": member.get("display_name"), **context},
    )


def _contractor_expiry_approaching(
    state: State, envelope: EventEnvelope, data: Any
) -> list[PlannedEmail]:
    assert isinstance(data, ev.ContractorExpiryApproaching)
    email = normalise_address(data.email)
    context = {
        "email": email,
        "access_expires_at": _iso(data.access_expires_at),
        "offset_seconds": _seconds(data.offset),
    }
    invitee = _to_contractor(state, envelope, email, Kind.CONTRACTOR_EXPIRY_REMINDER, context)
    admin_context = {**context, "display_name": invitee.context.get("display_name")}
    admins = _to_admins(
        state, envelope, Kind.ADMIN_CONTRACTOR_EXPIRY_APPROACHING, admin_context, exclude={email}
    )
    return [invitee, *admins]


def _contractor_expired(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.ContractorExpired)
    email = normalise_address(data.email)
    context = {
        "email": email,
        "access_expires_at": _iso(data.access_expires_at),
        "expired_at": _iso(data.expired_at),
    }
    invitee = _to_contractor(state, envelope, email, Kind.CONTRACTOR_ACCESS_ENDED, context)
    admin_context = {**context, "display_name": invitee.context.get("display_name")}
    admins = _to_admins(
        state, envelope, Kind.ADMIN_CONTRACTOR_EXPIRED, admin_context, exclude={email}
    )
    return [invitee, *admins]


def _temp_password_expired(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.TempPasswordExpired)
    invitation = state.get(invitation_key(data.invitation_id)) or {}
    return _to_admins(
        state,
        envelope,
        Kind.ADMIN_TEMP_PASSWORD_EXPIRED,
        {
            "email": normalise_address(data.email),
            "display_name": invitation.get("display_name"),
            "invitation_id": str(data.invitation_id),
        },
    )


def _mass_invite_completed(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
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
    emails = _to_admins(state, envelope, Kind.ADMIN_MASS_INVITE_COMPLETED, context)
    if manual:
        emails += _to_admins(
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


_Handler = Callable[[State, EventEnvelope, Any], list[PlannedEmail]]

_HANDLERS: dict[str, _Handler] = {
    "TenantConfigured": _tenant_configured,
    "UserInvited": _user_invited,
    "AccountLinked": _account_linked,
    "TempPasswordIssued": _temp_password_issued,
    "InvitationResent": _invitation_resent,
    "InvitationAccepted": _invitation_accepted,
    "ContractorExpiryApproaching": _contractor_expiry_approaching,
    "ContractorExpired": _contractor_expired,
    "TempPasswordExpired": _temp_password_expired,
    "MassInviteCompleted": _mass_invite_completed,
}

# Every event type planning reads: a replay need not fetch the others from the store.
EVENT_TYPES: frozenset[str] = frozenset(_HANDLERS) | _SUPERSEDING
