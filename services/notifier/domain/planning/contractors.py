"""A contractor's reminders before their access ends and the notice that it ended, with
the administrators' copies (rules 20, 21, 24, 25).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.notifier.domain.emails import Kind, PlannedEmail, normalise_address
from services.notifier.domain.planning.administrators import to_admins
from services.notifier.domain.planning.state import Json, State, iso, member_key
from shared.contract import EventEnvelope
from shared.contract import events as ev


def _seconds(duration: timedelta) -> float:
    return duration.total_seconds()


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


def contractor_expiry_approaching(
    state: State, envelope: EventEnvelope, data: Any
) -> list[PlannedEmail]:
    assert isinstance(data, ev.ContractorExpiryApproaching)
    email = normalise_address(data.email)
    context = {
        "email": email,
        "access_expires_at": iso(data.access_expires_at),
        "offset_seconds": _seconds(data.offset),
    }
    invitee = _to_contractor(state, envelope, email, Kind.CONTRACTOR_EXPIRY_REMINDER, context)
    admin_context = {**context, "display_name": invitee.context.get("display_name")}
    admins = to_admins(
        state, envelope, Kind.ADMIN_CONTRACTOR_EXPIRY_APPROACHING, admin_context, exclude={email}
    )
    return [invitee, *admins]


def contractor_expired(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.ContractorExpired)
    email = normalise_address(data.email)
    context = {
        "email": email,
        "access_expires_at": iso(data.access_expires_at),
        "expired_at": iso(data.expired_at),
    }
    invitee = _to_contractor(state, envelope, email, Kind.CONTRACTOR_ACCESS_ENDED, context)
    admin_context = {**context, "display_name": invitee.context.get("display_name")}
    admins = to_admins(
        state, envelope, Kind.ADMIN_CONTRACTOR_EXPIRED, admin_context, exclude={email}
    )
    return [invitee, *admins]
