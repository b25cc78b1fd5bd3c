"""The event log, read as consumers read it: a position that covers what they skip."""

from __future__ import annotations

from services.invitation.application import InvitationService
from services.invitation.event_log import EventLog

from .console import Admin, NewEmail


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
