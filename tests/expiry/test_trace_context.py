"""A deadline's command carries the trace context of the event that set it (while tracing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.expiry.application import Expiry
from tests.fakes import MemoryLog

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def traced_log() -> MemoryLog:
    log = MemoryLog()
    past = datetime.now(UTC) - timedelta(seconds=5)
    log.user_invited("acme", "traced@example.com", past)
    log.user_invited("acme", "untraced@example.com", past + timedelta(seconds=1))
    traced, untraced = log.envelopes
    log.envelopes = [
        traced.model_copy(update={"correlation_id": "cmd-traced"}),
        untraced.model_copy(update={"correlation_id": "cmd-untraced"}),
    ]
    return log


def test_a_deadline_fires_in_the_trace_of_the_event_that_set_it() -> None:
    log = traced_log()
    expiry = Expiry()
    envelopes, high_water = log.read_with_high_water()
    expiry.apply(envelopes, high_water, {"cmd-traced": TRACEPARENT})

    firings = expiry.due(datetime.now(UTC).timestamp())

    assert [f.traceparent for f in firings] == [TRACEPARENT, None]


def test_without_trace_contexts_no_deadline_keeps_one() -> None:
    log = traced_log()
    expiry = Expiry()
    expiry.apply(*log.read_with_high_water())

    firings = expiry.due(datetime.now(UTC).timestamp())

    assert [f.traceparent for f in firings] == [None, None]
    assert expiry.dispatcher._origins == {}


def test_a_settled_deadline_forgets_its_trace_context() -> None:
    log = traced_log()
    expiry = Expiry()
    envelopes, high_water = log.read_with_high_water()
    expiry.apply(envelopes, high_water, {"cmd-traced": TRACEPARENT})
    for firing in expiry.due(datetime.now(UTC).timestamp()):
        expiry.dispatcher.cancel(firing.key)

    assert expiry.dispatcher._origins == {}
