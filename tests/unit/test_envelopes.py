"""The mapping from domain events to contract envelopes publishes no secret (rule 12)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from services.invitation.domain.invitation import Invitation
from services.invitation.eventstore import PUBLISHED_TOPICS, event_id, to_envelope
from services.invitation.eventstore.envelopes import _EVENT_ID_NAMESPACE as EVENT_ID_NAMESPACE
from services.invitation.eventstore.envelopes import stored_envelope
from services.invitation.eventstore.event_types import topics_of
from shared.contract import EVENT_DATA, EventEnvelope
from tests.histories import (
    PARIS_END,
    PASSWORD_HASH,
    T0,
    TOKEN_HASHES,
    MakeCause,
    one_life_of_each_aggregate,
)

SECRET_KEYS = {"password_hash", "token_hash", "sealed", "password", "token"}


@pytest.fixture
def every_kind_of_event(cause: MakeCause) -> list[Any]:
    """One life of each aggregate, through every event the service can record."""
    return [e for a in one_life_of_each_aggregate(cause) for e in a.collect_events()]


def _envelopes(events: list[Any]) -> list[EventEnvelope]:
    mapped = [to_envelope(e, position) for position, e in enumerate(events, start=1)]
    return [m for m in mapped if m is not None]


def test_every_published_topic_is_exercised(every_kind_of_event: list[Any]) -> None:
    topics = {get_topic(type(e)) for e in every_kind_of_event}
    assert set(PUBLISHED_TOPICS) <= topics


def test_every_envelope_matches_the_contract_data_model(every_kind_of_event: list[Any]) -> None:
    envelopes = _envelopes(every_kind_of_event)
    assert {e.event_type for e in envelopes} == set(EVENT_DATA)
    for envelope in envelopes:
        EVENT_DATA[envelope.event_type].model_validate(envelope.data)


def test_no_envelope_carries_a_hash_or_sealed_data(every_kind_of_event: list[Any]) -> None:
    for envelope in _envelopes(every_kind_of_event):
        assert not SECRET_KEYS & set(envelope.data), envelope.event_type
        text = envelope.model_dump_json()
        assert PASSWORD_HASH not in text
        assert not any(h in text for h in TOKEN_HASHES)


def test_no_event_holds_a_password_token_or_sealed_copy(every_kind_of_event: list[Any]) -> None:
    # The sealed copy lives beside the events (and is shredded); the plaintext nowhere.
    for event in every_kind_of_event:
        assert not {"sealed", "password", "token"} & set(vars(event)), type(event).__qualname__


def test_internal_events_stay_inside_the_service(every_kind_of_event: list[Any]) -> None:
    internal = [e for e in every_kind_of_event if to_envelope(e, 1) is None]
    assert {type(e).__qualname__ for e in internal} == {
        "Tenant.Created",
        "Account.Created",  # created by an invitation: UserInvited tells it
        "Membership.Created",
        "Membership.Offered",
        "Membership.Activated",
        "Invitation.AccessExpiryChanged",
        "Administrators.Created",  # the roster behind the last-administrator guard
        "Administrators.Joined",
        "Administrators.Left",
    }


def test_envelope_names_its_stream_cause_and_position(every_kind_of_event: list[Any]) -> None:
    invited = next(e for e in every_kind_of_event if isinstance(e, Invitation.Invited))
    envelope = to_envelope(invited, 42)
    assert envelope is not None
    assert envelope.event_id == event_id(invited.originator_id, invited.originator_version)
    assert (envelope.position, envelope.tenant_id, envelope.actor) == (42, "acme", "admin@acme.io")
    assert envelope.correlation_id == invited.correlation_id
    assert envelope.occurred_at == T0
    assert envelope.data["link_generation"] == 1


def test_event_ids_are_stable_and_distinct() -> None:
    stream = uuid4()
    assert event_id(stream, 1) == event_id(stream, 1)
    assert event_id(stream, 1) != event_id(stream, 2)


def test_built_envelopes_equal_validated_ones(every_kind_of_event: list[Any]) -> None:
    # to_envelope builds without validating: each field must already have its type.
    for envelope in _envelopes(every_kind_of_event):
        validated = EventEnvelope.model_validate(dict(envelope))
        assert validated == envelope
        assert validated.model_fields_set == envelope.model_fields_set
        assert list(dict(validated)) == list(dict(envelope))
        assert envelope.model_copy(update={"position": 7}).position == 7
        assert validated.model_dump_json() == envelope.model_dump_json()
        assert {k: type(v) for k, v in dict(validated).items()} == {
            k: type(v) for k, v in dict(envelope).items()
        }


def test_a_consumer_can_ask_for_the_topics_of_its_event_types() -> None:
    assert topics_of(["UserInvited", "PasswordChanged"]) == (
        "invitations:Invitation.Invited",
        "invitations:Account.PasswordChanged",
    )
    assert set(topics_of(EVENT_DATA)) == set(PUBLISHED_TOPICS)
    with pytest.raises(ValueError, match="NoSuchEvent"):
        topics_of(["NoSuchEvent"])


def test_event_ids_are_the_uuid5_of_stream_and_version() -> None:
    stream = uuid4()
    for version in (1, 2, 1234):
        assert event_id(stream, version) == uuid5(EVENT_ID_NAMESPACE, f"{stream}:{version}")
    assert event_id(stream, 1) != uuid5(NAMESPACE_URL, f"{stream}:1")


def test_an_envelope_read_from_the_stored_state_equals_the_domain_events(
    every_kind_of_event: list[Any],
) -> None:
    # What the event log reads (stored_envelope) against the library's way (the mapper
    # rebuilds the domain event, to_envelope maps it), for every event type, as stored by
    # an application's own mapper (its JSON transcoder and default transcodings).
    mapper = Application[Any](env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    compared = set()
    for position, event in enumerate(every_kind_of_event, start=1):
        stored = mapper.to_stored_event(event)
        expected = to_envelope(mapper.to_domain_event(stored), position)
        envelope = stored_envelope(
            stored.topic, stored.state, stored.originator_id, stored.originator_version, position
        )
        assert envelope == expected, stored.topic
        if expected is None:
            continue
        assert envelope is not None
        assert envelope.model_dump_json() == expected.model_dump_json()
        assert {k: type(v) for k, v in dict(envelope).items()} == {
            k: type(v) for k, v in dict(expected).items()
        }
        assert envelope.model_fields_set == expected.model_fields_set
        compared.add(envelope.event_type)
    assert compared == set(EVENT_DATA)


def test_a_moment_with_another_offset_is_published_in_utc(
    every_kind_of_event: list[Any],
) -> None:
    invited = next(
        e
        for e in every_kind_of_event
        if isinstance(e, Invitation.Invited) and e.role == "contractor"
    )
    mapper = Application[Any](env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    stored = mapper.to_stored_event(invited)
    envelope = stored_envelope(stored.topic, stored.state, invited.originator_id, 1, 1)
    assert envelope is not None
    assert envelope.data["access_expires_at"] == "2030-02-06T17:30:00+00:00"
    assert envelope.data["access_expires_at"] == PARIS_END.astimezone(UTC).isoformat()


def test_a_state_orjson_refuses_is_read_as_the_json_module_reads_it(
    every_kind_of_event: list[Any],
) -> None:
    invited = next(e for e in every_kind_of_event if isinstance(e, Invitation.Invited))
    mapper = Application[Any](env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    stored = mapper.to_stored_event(invited)
    for field, text in [
        (b'"link_generation":%d' % (2**70 + 1), 2**70 + 1),  # orjson: a float
        (b'"link_generation":%d' % -(2**64 + 3), -(2**64 + 3)),
        (b'"link_generation":NaN', None),  # orjson: refused
    ]:
        state = stored.state.replace(b'"link_generation":1', field)
        assert state != stored.state
        expected = to_envelope(mapper.to_domain_event(replace(stored, state=state)), 5)

        envelope = stored_envelope(stored.topic, state, invited.originator_id, 1, 5)

        assert envelope is not None and expected is not None
        assert envelope.model_dump_json() == expected.model_dump_json()
        if text is not None:
            assert envelope == expected
            assert envelope.data["link_generation"] == text
