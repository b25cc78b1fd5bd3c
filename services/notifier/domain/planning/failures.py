"""An email that could not be delivered (rule 35): the tenant's administrators are told.

One notice per failed invitation: the invitation email failing again (a resend to the
same dead address) is recorded each time, and told once. Another email to a member
(a reminder, a change of role) is told each time it fails. A notice to administrators
that fails is recorded, never answered with another notice: that could only loop.
"""

from __future__ import annotations

from typing import Any

from services.notifier.domain.emails import Kind, PlannedEmail, normalise_address
from services.notifier.domain.planning.administrators import to_admins
from services.notifier.domain.planning.invitations import INVITATION_KINDS
from services.notifier.domain.planning.state import State, invitation_key, member_key
from shared.contract import EventEnvelope
from shared.contract import events as ev

_KINDS = frozenset(kind.value for kind in Kind)
_CONTRACTOR_KINDS = frozenset({Kind.CONTRACTOR_EXPIRY_REMINDER, Kind.CONTRACTOR_ACCESS_ENDED})


def notification_failed(state: State, envelope: EventEnvelope, data: Any) -> list[PlannedEmail]:
    assert isinstance(data, ev.NotificationFailed)
    if envelope.tenant_id is None or data.kind not in _KINDS:
        return []
    kind = Kind(data.kind)
    if kind.to_administrators:
        return []
    recipient = normalise_address(data.recipient)
    about = (
        "invitation"
        if kind in INVITATION_KINDS
        else "contractor"
        if kind in _CONTRACTOR_KINDS
        else "member"
    )
    person = state.get(member_key(envelope.tenant_id, recipient)) or {}
    if data.invitation_id is not None:
        key = invitation_key(data.invitation_id)
        invitation = state.get(key)
        if invitation is not None:
            if invitation.get("failure_told"):
                return []
            state.put(key, {**invitation, "failure_told": True})
            person = invitation
    return to_admins(
        state,
        envelope,
        Kind.ADMIN_NOTIFICATION_FAILED,
        {
            "email": recipient,
            "display_name": person.get("display_name"),
            "role": person.get("role"),
            "reason": data.reason,
            "failed_kind": str(kind),
            "about": about,
            "invitation_id": None if data.invitation_id is None else str(data.invitation_id),
        },
        exclude={recipient},
    )
