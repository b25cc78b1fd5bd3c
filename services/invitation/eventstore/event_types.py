"""Which contract event type each stored topic becomes, for readers that follow only some.

The stored topics are explicit (`topic=` in the domain), so stable across refactors; a
consumer names the event types it follows and the event log skips the others in SQL.
`envelopes.py` checks that every topic it maps is listed here.
"""

from __future__ import annotations

from collections.abc import Iterable

# The contract event type each stored topic becomes (when it becomes one), so that a
# consumer can ask the store for only the types it follows.
EVENT_TYPE_OF_TOPIC: dict[str, str] = {
    "invitations:Tenant.Configured": "TenantConfigured",
    "invitations:Account.Created": "AccountRegistered",
    "invitations:Invitation.Invited": "UserInvited",
    "invitations:Invitation.AccountLinked": "AccountLinked",
    "invitations:Account.TempPasswordIssued": "TempPasswordIssued",
    "invitations:Invitation.Resent": "InvitationResent",
    "invitations:Invitation.Revoked": "InvitationRevoked",
    "invitations:Invitation.Lapsed": "InvitationLapsed",
    "invitations:Invitation.Accepted": "InvitationAccepted",
    "invitations:Invitation.AcceptanceRefused": "InvitationAcceptanceRefused",
    "invitations:Membership.ContractorExpiryChanged": "ContractorExpiryChanged",
    "invitations:Membership.ContractorExpiryApproaching": "ContractorExpiryApproaching",
    "invitations:Membership.ContractorExpired": "ContractorExpired",
    "invitations:Account.TempPasswordExpired": "TempPasswordExpired",
    "invitations:Account.PasswordChanged": "PasswordChanged",
    "invitations:MassInvite.Completed": "MassInviteCompleted",
    "invitations:Account.TempPasswordDelivered": "TempPasswordDelivered",
    "invitations:Account.TempPasswordRevoked": "TempPasswordRevoked",
    "invitations:Membership.Removed": "MemberRemoved",
    "invitations:Membership.RoleChanged": "MemberRoleChanged",
    "invitations:NotificationFailure.Recorded": "NotificationFailed",
    "invitations:Account.TempPasswordRetrieved": "TempPasswordRetrieved",
    "invitations:Invitation.EmailSent": "InvitationEmailSent",
}

# Every event type a reader can meet in the contract.
PUBLISHED_EVENT_TYPES: frozenset[str] = frozenset(EVENT_TYPE_OF_TOPIC.values())


def topics_of(event_types: Iterable[str]) -> tuple[str, ...]:
    """The stored topics that can become one of `event_types`."""
    wanted = set(event_types)
    unknown = wanted - set(EVENT_TYPE_OF_TOPIC.values())
    if unknown:
        raise ValueError(f"unknown event types {sorted(unknown)}")
    return tuple(t for t, event_type in EVENT_TYPE_OF_TOPIC.items() if event_type in wanted)
