"""A member removed or given another role (rule 34): the member is told, and the tenant's
administrators are who they now are.

A removed or demoted administrator receives no more administrator notices; a promoted
member starts receiving them. When the administrators drop to one, that one is told
again that another administrator is strongly recommended (rule 8).
"""

from __future__ import annotations

from typing import Any

from services.notifier.domain.emails import Kind, PlannedEmail, normalise_address
from services.notifier.domain.planning.administrators import recommend_if_alone, tenant_of
from services.notifier.domain.planning.state import Json, State, iso, member_key, tenant_key
from shared.contract import EventEnvelope
from shared.contract import events as ev

ADMINISTRATOR = "administrator"


def member_removed(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.MemberRemoved)
    if envelope.tenant_id is None:
        return []
    email = normalise_address(data.email)
    emails = [
        _to_member(
            state,
            envelope,
            email,
            Kind.MEMBER_REMOVED,
            {"role": data.role, "removed_at": iso(envelope.occurred_at)},
        )
    ]
    return emails + _administrators_without(state, envelope, email)


def member_role_changed(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.MemberRoleChanged)
    if envelope.tenant_id is None:
        return []
    email = normalise_address(data.email)
    member = _to_member(
        state,
        envelope,
        email,
        Kind.MEMBER_ROLE_CHANGED,
        {
            "role": data.role,
            "previous_role": data.previous_role,
            "access_expires_at": iso(data.access_expires_at),
        },
    )
    if data.role == ADMINISTRATOR:
        tenant = tenant_of(state, envelope.tenant_id)
        before = len(tenant["admins"])
        tenant["admins"] = {**tenant["admins"], email: member.locale}
        alone = recommend_if_alone(tenant, before, envelope)  # promoted as the first one
        state.put(tenant_key(envelope.tenant_id), tenant)
        return [member, *alone]
    return [member, *_administrators_without(state, envelope, email)]


def _administrators_without(
    state: State, envelope: EventEnvelope, email: str
) -> list[PlannedEmail]:
    assert envelope.tenant_id is not None
    tenant = tenant_of(state, envelope.tenant_id)
    if email not in tenant["admins"]:
        return []
    before = len(tenant["admins"])
    tenant["admins"] = {e: loc for e, loc in tenant["admins"].items() if e != email}
    emails = recommend_if_alone(tenant, before, envelope)
    state.put(tenant_key(envelope.tenant_id), tenant)
    return emails


def _to_member(
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
        context={
            "tenant_id": tenant_id,
            "email": email,
            "display_name": member.get("display_name"),
            **context,
        },
    )
