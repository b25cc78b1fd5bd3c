"""The event log, read as consumers read it: a position that covers what they skip."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from eventsourcing.cryptography import AESCipher

from services.invitation.application import InvitationService
from services.invitation.domain.cause import Cause
from services.invitation.eventstore import EventLog, InvitationStore, store_env, to_envelope
from shared.contract import EVENT_DATA, EventEnvelope
from tests.histories import MakeCause, one_life_of_each_aggregate

from .console import Admin, NewEmail, Store


@pytest.fixture
def cause() -> MakeCause:
    def make(
        at: datetime = datetime(2030, 1, 7, 9, 0, tzinfo=UTC),
        tenant_id: str | None = "acme",
        actor: str = "admin@acme.io",
    ) -> Cause:
        return Cause(actor=actor, command_id=str(uuid4()), at=at, tenant_id=tenant_id)

    return make


def test_a_reader_of_some_types_reaches_the_last_position_even_past_events_it_skips(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    admin.invite(new_email())  # UserInvited, then events of other types after it
    log = EventLog("unused", store=service.store, event_types=["UserInvited"])

    envelopes, high_water = log.read_with_high_water(0, limit=100)

    assert [e.event_type for e in envelopes] == ["UserInvited"]
    assert envelopes[0].position < log.max_position()
    assert high_water == log.max_position()
    assert log.read_with_high_water(high_water, limit=100) == ([], high_water)


def test_a_full_page_stops_at_its_last_row(
    admin: Admin, service: InvitationService, new_email: NewEmail
) -> None:
    for _ in range(3):
        admin.invite(new_email())
    log = EventLog("unused", store=service.store, event_types=["UserInvited"])

    envelopes, high_water = log.read_with_high_water(0, limit=2)

    assert len(envelopes) == 2
    assert high_water == envelopes[-1].position
    rest, _ = log.read_with_high_water(high_water, limit=2)
    assert [e.event_type for e in rest] == ["UserInvited"]


def _library_envelopes(store: InvitationStore) -> list[EventEnvelope]:
    """What the log must give: eventsourcing's mapper, then the one mapping."""
    notifications = store.recorder.select_notifications(start=1, limit=10_000)
    mapped = [to_envelope(store.mapper.to_domain_event(n), n.id) for n in notifications]
    return [e for e in mapped if e is not None]


def _same(found: list[EventEnvelope], expected: list[EventEnvelope]) -> None:
    assert found == expected
    assert [e.model_dump_json() for e in found] == [e.model_dump_json() for e in expected]
    assert [{k: type(v) for k, v in dict(e).items()} for e in found] == [
        {k: type(v) for k, v in dict(e).items()} for e in expected
    ]


def test_the_log_reads_every_event_type_from_the_stored_json_as_the_mapper_would(
    service: InvitationService, cause: MakeCause
) -> None:
    service.store.save(*one_life_of_each_aggregate(cause))
    log = EventLog("unused", store=service.store)
    assert log.reads_stored_form  # the fast path is the one under test

    envelopes = list(log.iterate(batch=7))

    assert {e.event_type for e in envelopes} == set(EVENT_DATA)
    _same(envelopes, _library_envelopes(service.store))


def test_a_store_whose_states_are_encrypted_is_read_through_the_mapper(
    store: Store, cause: MakeCause
) -> None:
    env = {
        **store_env(store.url),
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(16),
    }
    encrypted = InvitationStore(env=env)
    try:
        encrypted.save(*one_life_of_each_aggregate(cause))
        log = EventLog("unused", store=encrypted)
        assert not log.reads_stored_form

        envelopes = list(log.iterate(batch=7))

        assert {e.event_type for e in envelopes} == set(EVENT_DATA)
        _same(envelopes, _library_envelopes(encrypted))
    finally:
        encrypted.close()
