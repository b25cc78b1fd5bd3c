"""Use cases of the expiry service: follow the event log, say what is due, take replies.

Synchronous and clock-free (`now` is passed in), so tests drive it with a fake clock and
the runner (entrypoints/deadline_loop.py) only adds the waiting, the threads and the broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.expiry.domain.deadlines import Key, command_name, describe, instant
from services.expiry.domain.dispatch import ACTOR, Dispatcher, Firing, Timing
from services.expiry.domain.timetable import Timetable
from shared.contract import EventEnvelope, Reply

__all__ = ["CommandSender", "EventSource", "Expiry", "Firing", "ScheduledDeadline", "Timing"]


class EventSource(Protocol):
    """The event store read in position order (`services.invitation.eventstore.EventLog`)."""

    def read_with_high_water(
        self, after: int = 0, limit: int = 1000
    ) -> tuple[list[EventEnvelope], int]: ...


class CommandSender(Protocol):
    """Publishes a firing's command; replies come back through the sender's own callback."""

    async def send(self, firing: Firing) -> None: ...


@dataclass(frozen=True)
class ScheduledDeadline:
    at: str
    command: str
    subject: str


class Expiry:
    def __init__(self, *, timing: Timing | None = None, actor: str = ACTOR) -> None:
        self.dispatcher = Dispatcher(timing=timing, actor=actor)
        self.timetable = Timetable(self.dispatcher)

    @property
    def position(self) -> int:
        """The last event-log position taken into account."""
        return self.timetable.position

    def apply(
        self,
        envelopes: Sequence[EventEnvelope],
        high_water: int | None = None,
        trace_contexts: Mapping[str, str] | None = None,
    ) -> bool:
        """Apply a page of the log; True if any of it concerned a deadline.

        `trace_contexts` ({correlation id: traceparent}, while tracing): each deadline's
        command is then sent in the trace of the event that set it."""
        changed = False
        dispatcher = self.dispatcher
        for envelope in envelopes:
            if trace_contexts:
                dispatcher.origin = trace_contexts.get(envelope.correlation_id or "")
            changed = self.timetable.apply(envelope) or changed
        dispatcher.origin = None
        if high_water is not None:
            self.timetable.advance(high_water)
        return changed

    def read_once(self, events: EventSource, limit: int = 1000) -> bool:
        """Read and apply the next page; False once the log has nothing newer."""
        before = self.position
        envelopes, high_water = events.read_with_high_water(before, limit)
        self.apply(envelopes, high_water)
        return self.position > before

    def rebuild(self, events: EventSource, limit: int = 1000) -> int:
        """Catch up with the whole log (rule 28); returns the position reached."""
        while self.read_once(events, limit):
            pass
        return self.position

    def due(self, now: float, limit: int | None = None) -> list[Firing]:
        return self.dispatcher.due(now, limit)

    def next_at(self) -> float | None:
        return self.dispatcher.next_at()

    def settle(self, reply: Reply, now: float) -> str:
        return self.dispatcher.settle(reply, now)

    def send_failed(self, firing: Firing, now: float) -> None:
        self.dispatcher.send_failed(firing, now)

    def census(self, now: float) -> dict[str, tuple[int, int]]:
        """Per command name: (open deadlines, of which overdue)."""
        return self.dispatcher.census(now)

    def deadlines(self) -> dict[Key, float]:
        """Every open deadline as the events define it (what a rebuild must reproduce)."""
        return self.dispatcher.deadlines()

    def listing(self) -> list[ScheduledDeadline]:
        """The open deadlines in order, readable (for operators)."""
        return [
            ScheduledDeadline(instant(at).isoformat(), command_name(key), describe(key))
            for key, at in sorted(self.deadlines().items(), key=lambda item: (item[1], item[0]))
        ]
