"""What was true at an instant, per tenant: a fold of the contract events up to that instant.

Pure: no store, no clock. Members come from accepted invitations; a contractor's access
ends at its end date (rule 20) even if the expiry service recorded `ContractorExpired`
late, and a pending invitation whose link had expired says so. A removed member stays
listed as `removed` (rule 34), and each member's roles are listed in order, with the
instant each began: an audit asks "who had which role when".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.contract import EventEnvelope


@dataclass
class RoleHeld:
    role: str
    since: datetime
    access_expires_at: datetime | None = None


@dataclass
class Member:
    email: str
    role: str
    status: str  # active | expired | removed
    account_id: str
    member_since: datetime
    invitation_id: str
    access_expires_at: datetime | None = None
    expired_at: datetime | None = None
    removed_at: datetime | None = None
    roles: list[RoleHeld] = field(default_factory=list)


@dataclass
class PendingInvitation:
    invitation_id: str
    email: str
    role: str
    invited_by: str
    invited_at: datetime
    link_expires_at: datetime
    access_expires_at: datetime | None
    link_valid: bool = True


@dataclass
class TenantState:
    tenant_id: str
    members: dict[str, Member] = field(default_factory=dict)
    pending: dict[str, PendingInvitation] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "members": [
                _member_json(m) for m in sorted(self.members.values(), key=lambda m: m.email)
            ],
            "pending_invitations": [
                _jsonable(p.__dict__)
                for p in sorted(self.pending.values(), key=lambda p: (p.email, p.invited_at))
            ],
        }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _member_json(member: Member) -> dict[str, Any]:
    return {
        **_jsonable(member.__dict__),
        "roles": [_jsonable(held.__dict__) for held in member.roles],
    }


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass
class _Invitation:
    tenant_id: str
    email: str
    role: str
    invited_by: str
    invited_at: datetime
    link_expires_at: datetime
    access_expires_at: datetime | None


def state_at(
    envelopes: Iterable[EventEnvelope], as_of: datetime, tenant_id: str | None = None
) -> dict[str, TenantState]:
    """Fold `envelopes` (position order) that occurred at or before `as_of`."""
    tenants: dict[str, TenantState] = {}
    invitations: dict[str, _Invitation] = {}
    by_person: dict[tuple[str, str], list[str]] = {}  # (tenant, email) -> invitation ids

    def tenant(envelope: EventEnvelope) -> TenantState:
        assert envelope.tenant_id is not None
        return tenants.setdefault(envelope.tenant_id, TenantState(envelope.tenant_id))

    for e in envelopes:
        if e.occurred_at > as_of or e.tenant_id is None:
            continue
        if tenant_id is not None and e.tenant_id != tenant_id:
            continue
        d = e.data
        t = tenant(e)
        invitation_id = str(d.get("invitation_id"))
        if e.event_type == "UserInvited":
            info = _Invitation(
                tenant_id=e.tenant_id,
                email=d["email"],
                role=d["role"],
                invited_by=d["invited_by"],
                invited_at=e.occurred_at,
                link_expires_at=datetime.fromisoformat(d["invitation_expires_at"]),
                access_expires_at=_when(d.get("access_expires_at")),
            )
            invitations[invitation_id] = info
            by_person.setdefault((e.tenant_id, info.email), []).append(invitation_id)
            t.pending[invitation_id] = _pending(invitation_id, info)
        elif e.event_type == "InvitationResent" and invitation_id in invitations:
            info = invitations[invitation_id]
            info.link_expires_at = datetime.fromisoformat(d["invitation_expires_at"])
            t.pending[invitation_id] = _pending(invitation_id, info)
        elif e.event_type in ("InvitationRevoked", "InvitationLapsed"):
            t.pending.pop(invitation_id, None)
        elif e.event_type == "InvitationAccepted":
            t.pending.pop(invitation_id, None)
            known = invitations.get(invitation_id)
            end = known.access_expires_at if known else None
            earlier = t.members.get(d["email"])  # removed or expired, now back
            t.members[d["email"]] = Member(
                email=d["email"],
                role=d["role"],
                status="active",
                account_id=d["account_id"],
                member_since=e.occurred_at,
                invitation_id=invitation_id,
                access_expires_at=end,
                roles=[
                    *(earlier.roles if earlier else []),
                    RoleHeld(d["role"], e.occurred_at, end),
                ],
            )
        elif e.event_type == "MemberRoleChanged":
            member = t.members.get(d["email"])
            if member is not None:
                member.role = d["role"]
                member.access_expires_at = _when(d.get("access_expires_at"))
                member.roles.append(RoleHeld(d["role"], e.occurred_at, member.access_expires_at))
        elif e.event_type == "MemberRemoved":
            member = t.members.get(d["email"])
            if member is not None:
                member.status, member.removed_at = "removed", e.occurred_at
        elif e.event_type == "ContractorExpiryChanged":
            end = datetime.fromisoformat(d["access_expires_at"])
            member = t.members.get(d["email"])
            if member is not None and member.status == "active":
                member.access_expires_at = end
            for key in by_person.get((e.tenant_id, d["email"]), ()):
                invitations[key].access_expires_at = end
                if key in t.pending:
                    t.pending[key].access_expires_at = end
        elif e.event_type == "ContractorExpired":
            member = t.members.get(d["email"])
            if member is not None:
                member.status = "expired"
                member.expired_at = datetime.fromisoformat(d["expired_at"])
    for t in tenants.values():
        for member in t.members.values():
            access_end = member.access_expires_at
            if member.status == "active" and access_end is not None and access_end <= as_of:
                member.status, member.expired_at = "expired", access_end
        for pending in t.pending.values():
            pending.link_valid = pending.link_expires_at > as_of
    return tenants


def _pending(invitation_id: str, info: _Invitation) -> PendingInvitation:
    return PendingInvitation(
        invitation_id=invitation_id,
        email=info.email,
        role=info.role,
        invited_by=info.invited_by,
        invited_at=info.invited_at,
        link_expires_at=info.link_expires_at,
        access_expires_at=info.access_expires_at,
    )
