"""Which emails an event implies, and to whom (rules 4, 5, 8, 14, 24, 25, 34, 35).

`plan(state, envelope)` is a pure function of the events seen so far (held in `state`,
a key -> JSON-object map the caller loads and saves) and the next event, in event-store
order. Replaying the same history gives the same emails with the same keys, which is
what lets the sent-records dedupe a replay (rule 26).

One module per kind of email, routed here by event type:
- invitations.py: the invitation email to the invitee (and what goes with it);
- administrators.py: the notices to a tenant's administrators;
- contractors.py: a contractor's reminders and end of access;
- members.py: a member removed or given another role, and who administers the tenant;
- failures.py: an email that could not be delivered, told to the administrators;
- state.py: what planning remembers of past events, and under which keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.notifier.domain.emails import PlannedEmail
from services.notifier.domain.planning import (
    administrators,
    contractors,
    failures,
    invitations,
    members,
)
from services.notifier.domain.planning.invitations import (
    INVITATION_KINDS,
    SUPERSEDING,
    superseded_invitation,
)
from services.notifier.domain.planning.state import Json, State, keys_for
from shared.contract import EVENT_DATA, EventEnvelope

__all__ = [
    "EVENT_TYPES",
    "INVITATION_KINDS",
    "Json",
    "State",
    "keys_for",
    "plan",
    "superseded_invitation",
]

_Handler = Callable[[State, EventEnvelope, Any], list[PlannedEmail]]

_HANDLERS: dict[str, _Handler] = {
    "TenantConfigured": administrators.tenant_configured,
    "UserInvited": invitations.user_invited,
    "AccountLinked": invitations.account_linked,
    "TempPasswordIssued": invitations.temp_password_issued,
    "InvitationResent": invitations.invitation_resent,
    "InvitationAccepted": administrators.invitation_accepted,
    "ContractorExpiryApproaching": contractors.contractor_expiry_approaching,
    "ContractorExpired": contractors.contractor_expired,
    "TempPasswordExpired": administrators.temp_password_expired,
    "MassInviteCompleted": administrators.mass_invite_completed,
    "MemberRemoved": members.member_removed,
    "MemberRoleChanged": members.member_role_changed,
    "NotificationFailed": failures.notification_failed,
}

# Every event type planning reads: a replay need not fetch the others from the store.
EVENT_TYPES: frozenset[str] = frozenset(_HANDLERS) | SUPERSEDING


def plan(state: State, envelope: EventEnvelope) -> list[PlannedEmail]:
    """The emails `envelope` implies, updating `state`. Unknown event types imply none."""
    handler = _HANDLERS.get(envelope.event_type)
    if handler is None:
        return []
    data = EVENT_DATA[envelope.event_type].model_validate(envelope.data)
    return handler(state, envelope, data)
