"""Every event records the broker user whose command caused it, beside the actor (rule 29).

Events stored before senders were recorded have no `sender` in their state: they still
decode, replay to the same aggregate and map to envelopes, with `sender` null.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import Mapper, StoredEvent

from services.invitation.domain.cause import Cause
from services.invitation.eventstore import to_envelope
from services.invitation.eventstore.envelopes import STORED_TRANSCODER, stored_envelope
from tests.histories import T0, one_life_of_each_aggregate

SENDER = "backend-billing"


def cause_from(sender: str | None) -> Any:
    def make(
        at: datetime = T0, tenant_id: str | None = "acme", actor: str = "service:expiry"
    ) -> Cause:
        return Cause(
            actor=actor, command_id=str(uuid4()), at=at, tenant_id=tenant_id, sender=sender
        )

    return make


def test_every_event_records_its_sender_beside_the_claimed_actor() -> None:
    aggregates = one_life_of_each_aggregate(cause_from(SENDER))
    events = [e for a in aggregates for e in a.collect_events()]
    assert events
    for event in events:
        assert event.sender == SENDER, type(event).__qualname__
        assert event.actor == "service:expiry"
    envelopes = [to_envelope(e, position) for position, e in enumerate(events, start=1)]
    published = [e for e in envelopes if e is not None]
    assert published
    assert {(e.actor, e.sender) for e in published} == {("service:expiry", SENDER)}
    assert json.loads(published[0].model_dump_json())["sender"] == SENDER


def _as_stored_before_senders(mapper: Mapper[Any], event: Any) -> StoredEvent:
    stored = mapper.to_stored_event(event)
    state = json.loads(stored.state)
    state.pop("sender")
    return replace(stored, state=json.dumps(state).encode())


def test_an_event_stored_before_senders_decodes_replays_and_maps_with_no_sender() -> None:
    mapper: Mapper[Any] = Mapper(transcoder=STORED_TRANSCODER)
    for aggregate in one_life_of_each_aggregate(cause_from(None)):
        old = [_as_stored_before_senders(mapper, e) for e in aggregate.collect_events()]
        assert all(b'"sender"' not in s.state for s in old)

        decoded = [mapper.to_domain_event(s) for s in old]
        replayed = None
        for event in decoded:
            replayed = event.mutate(replayed)
        assert vars(replayed) == vars(aggregate), type(aggregate).__name__

        for stored, event in zip(old, decoded, strict=True):
            from_state = stored_envelope(
                stored.topic, stored.state, stored.originator_id, stored.originator_version, 1
            )
            assert from_state == to_envelope(event, 1), stored.topic
            if from_state is not None:
                assert from_state.sender is None
                assert json.loads(from_state.model_dump_json())["sender"] is None
