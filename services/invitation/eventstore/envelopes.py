"""The one mapping from stored domain events to the contract's event envelopes.

Internal events (a membership offered, an account created by an invitation, ...) map to
None: they stay inside the service. Nothing secret is ever mapped: no password hash, no
token hash, no sealed copy.

Each mapper reads an event's fields from a mapping, in either of two forms: a domain
event's attributes as eventsourcing's mapper rebuilds them (`to_envelope`), or the stored
JSON state as it is, where a UUID or a datetime is still the transcoder's
`{"_type_": ..., "_data_": ...}` (`stored_envelope`, what replays and followers read: it
skips building the domain event, about three quarters of the cost of decoding). The value
helpers below give the same result for both forms; tests/unit/test_envelopes.py and
tests/application/test_event_log.py check it for every published type.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from eventsourcing.utils import get_topic
from pydantic import TypeAdapter

from services.invitation.domain.tenant import TenantSettings
from services.invitation.eventstore.event_types import EVENT_TYPE_OF_TOPIC
from shared.contract import EventEnvelope

_duration = TypeAdapter(timedelta)
_durations = TypeAdapter(list[timedelta])


def settings_json(settings: TenantSettings) -> dict[str, Any]:
    return {
        "contractor_enabled": settings.contractor_enabled,
        "temp_password_delivery": settings.temp_password_delivery,
        "invitation_ttl": _durations.dump_python([settings.invitation_ttl], mode="json")[0],
        "temp_password_ttl": _durations.dump_python([settings.temp_password_ttl], mode="json")[0],
        "expiry_reminders": _durations.dump_python(list(settings.expiry_reminders), mode="json"),
        "admin_notification_emails": list(settings.admin_notification_emails),
    }


_EVENT_ID_NAMESPACE = UUID("0c9e7b52-4a8f-4f0e-9a43-51f2d4b7e0a1")
_EVENT_ID_HASH = sha1(_EVENT_ID_NAMESPACE.bytes, usedforsecurity=False)

# The library's default transcodings (UUID, Decimal, datetime): what the store writes, as
# InvitationStore registers none of its own. `EventLog` reads the stored form only while
# its store's transcoder knows no others.
STORED_TRANSCODER = JSONTranscoder()
for _transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
    STORED_TRANSCODER.register(_transcoding)
_HEX = "0123456789abcdef"


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """Stable across republish and replay: one id per stored event.

    `uuid5(_EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")`, with the namespace's
    share of the SHA-1 computed once (tests/unit/test_envelopes.py compares the two).
    """
    digest = _EVENT_ID_HASH.copy()
    digest.update(f"{aggregate_id}:{version}".encode())
    return UUID(bytes=digest.digest()[:16], version=5)


def _decoded(value: Any) -> Any:
    """A stored `{"_type_": ..., "_data_": ...}` as the transcoder decodes it; else as is."""
    if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
        return STORED_TRANSCODER.names[value["_type_"]].decode(value["_data_"])
    return value


def _text(value: Any) -> str:
    """`str` of a UUID (or of any value), from either form."""
    if type(value) is dict and value.get("_type_") == "uuid_hex":
        hex_ = value["_data_"]
        # What UUIDAsHex writes (`UUID.hex`): the canonical form is then a matter of dashes.
        if type(hex_) is str and len(hex_) == 32 and not hex_.strip(_HEX):
            return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"
    return str(_decoded(value))


def _s(value: Any) -> str | None:
    return None if value is None else _text(value)


def _moment(value: Any) -> datetime:
    if type(value) is dict and value.get("_type_") == "datetime_iso":
        return datetime.fromisoformat(value["_data_"])
    moment: datetime = _decoded(value)
    return moment


def _iso(value: Any) -> str | None:
    return None if value is None else _moment(value).astimezone(UTC).isoformat()


def _dur(seconds: float) -> str:
    return str(_duration.dump_python(timedelta(seconds=seconds), mode="json"))


_Fields = Mapping[str, Any]
_Mapper = Callable[[_Fields], tuple[str, dict[str, Any]] | None]


def _tenant_configured(e: _Fields) -> tuple[str, dict[str, Any]]:
    settings = settings_json(TenantSettings.from_state(e["settings"]))
    return "TenantConfigured", {"settings": settings, "changed": list(e["changed"])}


def _account_created(e: _Fields) -> tuple[str, dict[str, Any]] | None:
    if e["origin"] != "registered":
        return None  # created by an invitation: UserInvited/TempPasswordIssued tell it
    return "AccountRegistered", {"account_id": _text(e["originator_id"]), "email": e["email"]}


def _user_invited(e: _Fields) -> tuple[str, dict[str, Any]]:
    return "UserInvited", {
        "invitation_id": _text(e["invitation_id"]),
        "email": e["email"],
        "role": e["role"],
        "access_expires_at": _iso(e["access_expires_at"]),
        "invitation_expires_at": _iso(e["invitation_expires_at"]),
        "invited_by": e["invited_by"],
        "batch_id": _s(e["batch_id"]),
        "display_name": e["display_name"],
        "locale": e["locale"],
        "account_id": _text(e["account_id"]),
        "link_generation": e["link_generation"],
        # Absent from invitations stored before it existed.
        "inviter_name": e.get("inviter_name"),
    }


def _temp_fields(e: _Fields) -> dict[str, Any]:
    return {
        "invitation_id": _text(e["invitation_id"]),
        "account_id": _text(e["account_id"]),
        "email": e["email"],
        "temp_password_id": _text(e["temp_password_id"]),
    }


def _member_fields(e: _Fields) -> dict[str, Any]:
    return {"account_id": _text(e["account_id"]), "email": e["email"], "role": e["role"]}


def _contractor_fields(e: _Fields, **more: Any) -> dict[str, Any]:
    """What every contractor event says: whose access, until when; plus its own fields."""
    return {
        "account_id": _text(e["account_id"]),
        "email": e["email"],
        "access_expires_at": _iso(e["access_expires_at"]),
        **more,
    }


_MAPPERS: dict[str, _Mapper] = {
    "invitations:Tenant.Configured": _tenant_configured,
    "invitations:Account.Created": _account_created,
    "invitations:Invitation.Invited": _user_invited,
    "invitations:Invitation.AccountLinked": lambda e: (
        "AccountLinked",
        {
            "invitation_id": _text(e["invitation_id"]),
            "account_id": _text(e["account_id"]),
            "email": e["email"],
        },
    ),
    "invitations:Account.TempPasswordIssued": lambda e: (
        "TempPasswordIssued",
        {**_temp_fields(e), "delivery": e["delivery"], "valid_until": _iso(e["valid_until"])},
    ),
    "invitations:Invitation.Resent": lambda e: (
        "InvitationResent",
        {
            "invitation_id": _text(e["invitation_id"]),
            "invitation_expires_at": _iso(e["invitation_expires_at"]),
            "temp_password_reissued": e["temp_password_reissued"],
            "link_generation": e["link_generation"],
        },
    ),
    "invitations:Invitation.Revoked": lambda e: (
        "InvitationRevoked",
        {"invitation_id": _text(e["invitation_id"]), "reason": e["reason"]},
    ),
    "invitations:Invitation.Lapsed": lambda e: (
        "InvitationLapsed",
        {"invitation_id": _text(e["invitation_id"])},
    ),
    "invitations:Invitation.Accepted": lambda e: (
        "InvitationAccepted",
        {
            "invitation_id": _text(e["invitation_id"]),
            "account_id": _text(e["account_id"]),
            "email": e["email"],
            "role": e["role"],
        },
    ),
    "invitations:Invitation.AcceptanceRefused": lambda e: (
        "InvitationAcceptanceRefused",
        {"invitation_id": _text(e["invitation_id"]), "reason": e["reason"]},
    ),
    "invitations:Membership.ContractorExpiryChanged": lambda e: (
        "ContractorExpiryChanged",
        _contractor_fields(e, previous_access_expires_at=_iso(e["previous_access_expires_at"])),
    ),
    "invitations:Membership.ContractorExpiryApproaching": lambda e: (
        "ContractorExpiryApproaching",
        _contractor_fields(e, offset=_dur(e["offset"])),
    ),
    "invitations:Membership.ContractorExpired": lambda e: (
        "ContractorExpired",
        _contractor_fields(e, expired_at=_iso(e["expired_at"])),
    ),
    "invitations:Account.TempPasswordExpired": lambda e: ("TempPasswordExpired", _temp_fields(e)),
    "invitations:Account.PasswordChanged": lambda e: (
        "PasswordChanged",
        {"account_id": _text(e["account_id"]), "email": e["email"]},
    ),
    "invitations:MassInvite.Completed": lambda e: (
        "MassInviteCompleted",
        {"batch_id": _text(e["batch_id"]), "invited": e["invited"], "refused": e["refused"]},
    ),
    "invitations:Account.TempPasswordDelivered": lambda e: (
        "TempPasswordDelivered",
        {**_temp_fields(e), "delivery": e["delivery"]},
    ),
    "invitations:Account.TempPasswordRevoked": lambda e: ("TempPasswordRevoked", _temp_fields(e)),
    "invitations:Membership.Removed": lambda e: (
        "MemberRemoved",
        {**_member_fields(e), "reason": e["reason"]},
    ),
    "invitations:Membership.RoleChanged": lambda e: (
        "MemberRoleChanged",
        {
            **_member_fields(e),
            "previous_role": e["previous_role"],
            "access_expires_at": _iso(e["access_expires_at"]),
            "invitation_id": _s(e["invitation_id"]),
        },
    ),
    "invitations:NotificationFailure.Recorded": lambda e: (
        "NotificationFailed",
        {
            "kind": e["kind"],
            "recipient": e["email"],
            "invitation_id": _s(e["invitation_id"]),
            "reason": e["reason"],
            "message_key": _text(e["message_key"]),
        },
    ),
    "invitations:Account.TempPasswordRetrieved": lambda e: (
        "TempPasswordRetrieved",
        _temp_fields(e),
    ),
    "invitations:Invitation.EmailSent": lambda e: (
        "InvitationEmailSent",
        {"invitation_id": _text(e["invitation_id"]), "link_generation": e["link_generation"]},
    ),
}

# The stored topics (explicit `topic=` in the domain, so stable across refactors) that
# can become contract events; readers filter on them in SQL.
PUBLISHED_TOPICS: tuple[str, ...] = tuple(_MAPPERS)

assert set(EVENT_TYPE_OF_TOPIC) == set(_MAPPERS), "every published topic has its type"


def to_envelope(event: Any, position: int) -> EventEnvelope | None:
    """`event` is a domain event as eventsourcing's mapper rebuilds it from the store."""
    return _envelope(
        get_topic(type(event)),
        vars(event),
        event.originator_id,
        event.originator_version,
        position,
    )


def stored_envelope(
    topic: str, state: bytes, aggregate_id: UUID, version: int, position: int
) -> EventEnvelope | None:
    """The envelope of one stored event, read from its JSON state as stored.

    The same envelope as `to_envelope` of the domain event that eventsourcing's mapper
    would rebuild from the row, without rebuilding it. Only for states written by the
    default JSON transcoder, neither compressed nor encrypted (EventLog checks).
    """
    if topic not in _MAPPERS:
        return None
    fields = _parsed(state)
    fields["originator_id"] = aggregate_id
    return _envelope(topic, fields, aggregate_id, version, position)


def field_uuid(value: Any) -> UUID:
    """A UUID field of either form (the read model's fold reads both, like the mappers)."""
    return value if type(value) is UUID else UUID(_text(value))


def field_moment(value: Any) -> datetime:
    """A datetime field of either form."""
    return _moment(value)


def parse_state(state: bytes) -> dict[str, Any]:
    """A stored JSON state as the library's transcoder parses it (values in stored form)."""
    return _parsed(state)


def _parsed(state: bytes) -> dict[str, Any]:
    """The state as the json module (the library's transcoder) parses it."""
    try:
        fields: dict[str, Any] = orjson.loads(state)
    except orjson.JSONDecodeError:  # NaN, infinities: json reads them, orjson refuses
        return dict(json.loads(state))
    # orjson reads an integer past 64 bits as a float, json as an int. No field of ours
    # holds one (counters, batch counts); should one ever, json reads that state.
    for value in fields.values():
        if type(value) is float and abs(value) >= 2.0**63 and value.is_integer():
            return dict(json.loads(state))
    return fields


def _envelope(
    topic: str, fields: _Fields, aggregate_id: UUID, version: int, position: int
) -> EventEnvelope | None:
    mapper = _MAPPERS.get(topic)
    mapped = None if mapper is None else mapper(fields)
    if mapped is None:
        return None
    event_type, data = mapped
    # Built, not validated: every field above already has its declared type (UUIDs,
    # an aware datetime, ints, strings, JSON data), and validating it again cost a
    # third of a replay (bench/README.md). tests/unit/test_envelopes.py checks that
    # the result equals the validated envelope, field for field and in JSON.
    return _built(
        {
            "event_id": event_id(aggregate_id, version),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": _moment(fields["timestamp"]),
            "position": position,
            "tenant_id": fields.get("tenant_id"),
            "aggregate_id": aggregate_id,
            "aggregate_version": version,
            "correlation_id": fields.get("correlation_id"),
            "actor": fields.get("actor"),
            # Absent from events stored before senders were recorded: null.
            "sender": fields.get("sender"),
            "data": data,
        }
    )


# What `EventEnvelope.model_construct(**values)` does when every field is given, for a
# model without aliases, extra fields, private attributes or post-init (checked here),
# without its per-field loop over aliases and defaults: a tenth of a replay's CPU.
_ENVELOPE_FIELDS = tuple(EventEnvelope.model_fields)
assert not any(f.alias or f.validation_alias for f in EventEnvelope.model_fields.values())
assert EventEnvelope.model_config.get("extra") in (None, "ignore", "forbid")
assert not EventEnvelope.__private_attributes__
assert not EventEnvelope.__pydantic_post_init__
_set_attribute = object.__setattr__


def _built(values: dict[str, Any]) -> EventEnvelope:
    envelope = EventEnvelope.__new__(EventEnvelope)
    _set_attribute(envelope, "__dict__", values)
    _set_attribute(envelope, "__pydantic_fields_set__", set(_ENVELOPE_FIELDS))
    _set_attribute(envelope, "__pydantic_extra__", None)
    _set_attribute(envelope, "__pydantic_private__", None)
    return envelope
