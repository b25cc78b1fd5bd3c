"""The one mapping from stored domain events to the contract's event envelopes.

Internal events (a membership offered, an account created by an invitation, ...) map to
None: they stay inside the service. Nothing secret is ever mapped: no password hash, no
token hash, no sealed copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.utils import get_topic
from pydantic import TypeAdapter

from services.invitation.application import settings_json
from services.invitation.domain.tenant import TenantSettings
from shared.contract import EventEnvelope

_duration = TypeAdapter(timedelta)
_EVENT_ID_NAMESPACE = UUID("0c9e7b52-4a8f-4f0e-9a43-51f2d4b7e0a1")


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """Stable across republish and replay: one id per stored event."""
    return uuid5(_EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _dur(seconds: float) -> str:
    return str(_duration.dump_python(timedelta(seconds=seconds), mode="json"))


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


_Mapper = Callable[[Any], tuple[str, dict[str, Any]] | None]


def _tenant_configured(e: Any) -> tuple[str, dict[str, Any]]:
    settings = settings_json(TenantSettings.from_state(e.settings))
    return "TenantConfigured", {"settings": settings, "changed": list(e.changed)}


def _account_created(e: Any) -> tuple[str, dict[str, Any]] | None:
    if e.origin != "registered":
        return None  # created by an invitation: UserInvited/TempPasswordIssued tell it
    return "AccountRegistered", {"account_id": str(e.originator_id), "email": e.email}


def _user_invited(e: Any) -> tuple[str, dict[str, Any]]:
    return "UserInvited", {
        "invitation_id": str(e.invitation_id),
        "email": e.email,
        "role": e.role,
        "access_expires_at": _iso(e.access_expires_at),
        "invitation_expires_at": _iso(e.invitation_expires_at),
        "invited_by": e.invited_by,
        "batch_id": _s(e.batch_id),
        "display_name": e.display_name,
        "locale": e.locale,
        "account_id": str(e.account_id),
        "link_generation": e.link_generation,
    }


def _temp_fields(e: Any) -> dict[str, Any]:
    return {
        "invitation_id": str(e.invitation_id),
        "account_id": str(e.account_id),
        "email": e.email,
        "temp_password_id": str(e.temp_password_id),
    }


_MAPPERS: dict[str, _Mapper] = {
    "invitations:Tenant.Configured": _tenant_configured,
    "invitations:Account.Created": _account_created,
    "invitations:Invitation.Invited": _user_invited,
    "invitations:Invitation.AccountLinked": lambda e: (
        "AccountLinked",
        {"invitation_id": str(e.invitation_id), "account_id": str(e.account_id), "email": e.email},
    ),
    "invitations:Account.TempPasswordIssued": lambda e: (
        "TempPasswordIssued",
        {**_temp_fields(e), "delivery": e.delivery, "valid_until": _iso(e.valid_until)},
    ),
    "invitations:Invitation.Resent": lambda e: (
        "InvitationResent",
        {
            "invitation_id": str(e.invitation_id),
            "invitation_expires_at": _iso(e.invitation_expires_at),
            "temp_password_reissued": e.temp_password_reissued,
            "link_generation": e.link_generation,
        },
    ),
    "invitations:Invitation.Revoked": lambda e: (
        "InvitationRevoked",
        {"invitation_id": str(e.invitation_id), "reason": e.reason},
    ),
    "invitations:Invitation.Lapsed": lambda e: (
        "InvitationLapsed",
        {"invitation_id": str(e.invitation_id)},
    ),
    "invitations:Invitation.Accepted": lambda e: (
        "InvitationAccepted",
        {
            "invitation_id": str(e.invitation_id),
            "account_id": str(e.account_id),
            "email": e.email,
            "role": e.role,
        },
    ),
    "invitations:Invitation.AcceptanceRefused": lambda e: (
        "InvitationAcceptanceRefused",
        {"invitation_id": str(e.invitation_id), "reason": e.reason},
    ),
    "invitations:Membership.ContractorExpiryChanged": lambda e: (
        "ContractorExpiryChanged",
        {
            "account_id": str(e.account_id),
            "email": e.email,
            "access_expires_at": _iso(e.access_expires_at),
            "previous_access_expires_at": _iso(e.previous_access_expires_at),
        },
    ),
    "invitations:Membership.ContractorExpiryApproaching": lambda e: (
        "ContractorExpiryApproaching",
        {
            "account_id": str(e.account_id),
            "email": e.email,
            "access_expires_at": _iso(e.access_expires_at),
            "offset": _dur(e.offset),
        },
    ),
    "invitations:Membership.ContractorExpired": lambda e: (
        "ContractorExpired",
        {
            "account_id": str(e.account_id),
            "email": e.email,
            "access_expires_at": _iso(e.access_expires_at),
            "expired_at": _iso(e.expired_at),
        },
    ),
    "invitations:Account.TempPasswordExpired": lambda e: ("TempPasswordExpired", _temp_fields(e)),
    "invitations:Account.PasswordChanged": lambda e: (
        "PasswordChanged",
        {"account_id": str(e.account_id), "email": e.email},
    ),
    "invitations:MassInvite.Completed": lambda e: (
        "MassInviteCompleted",
        {"batch_id": str(e.batch_id), "invited": e.invited, "refused": e.refused},
    ),
    "invitations:Account.TempPasswordDelivered": lambda e: (
        "TempPasswordDelivered",
        {**_temp_fields(e), "delivery": e.delivery},
    ),
    "invitations:Account.TempPasswordRevoked": lambda e: ("TempPasswordRevoked", _temp_fields(e)),
}

# The stored topics (explicit `topic=` in the domain, so stable across refactors) that
# can become contract events; readers filter on them in SQL.
PUBLISHED_TOPICS: tuple[str, ...] = tuple(_MAPPERS)

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
}
assert set(EVENT_TYPE_OF_TOPIC) == set(_MAPPERS), "every published topic has its type"


def topics_of(event_types: Iterable[str]) -> tuple[str, ...]:
    """The stored topics that can become one of `event_types`."""
    wanted = set(event_types)
    unknown = wanted - set(EVENT_TYPE_OF_TOPIC.values())
    if unknown:
        raise ValueError(f"unknown event types {sorted(unknown)}")
    return tuple(t for t, event_type in EVENT_TYPE_OF_TOPIC.items() if event_type in wanted)


def to_envelope(event: Any, position: int) -> EventEnvelope | None:
    """`event` is a domain event as eventsourcing's mapper rebuilds it from the store."""
    mapper = _MAPPERS.get(get_topic(type(event)))
    mapped = None if mapper is None else mapper(event)
    if mapped is None:
        return None
    event_type, data = mapped
    # Built, not validated: every field above already has its declared type (UUIDs,
    # an aware datetime, ints, strings, JSON data), and validating it again cost a
    # third of a replay (bench/README.md). tests/unit/test_envelopes.py checks that
    # the result equals the validated envelope, field for field and in JSON.
    return EventEnvelope.model_construct(
        event_id=event_id(event.originator_id, event.originator_version),
        event_type=event_type,
        schema_version=1,
        occurred_at=event.timestamp,
        position=position,
        tenant_id=getattr(event, "tenant_id", None),
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        correlation_id=getattr(event, "correlation_id", None),
        actor=getattr(event, "actor", None),
        data=data,
    )
