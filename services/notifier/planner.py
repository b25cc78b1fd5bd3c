"""Planning: from the event store to the notifier's email rows, exactly once.

The event log is the source of truth: the planner reads it past its own position,
asks the domain which emails each event implies, and commits the new state, the new
email rows and the new position in one transaction. Whatever was down meanwhile, the
next pass picks up where the last commit left off; a replay from position 0 rebuilds
the state and re-plans rows that already exist, which the ledger ignores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from uuid import UUID

from services.notifier.adapters.ledger import EmailLedger, Json, PlanStep, StateLoader
from services.notifier.domain.delivery import PENDING
from services.notifier.domain.emails import PlannedEmail
from services.notifier.domain.planning import (
    INVITATION_KINDS,
    keys_for,
    plan,
    superseded_invitation,
)
from shared.contract import EventEnvelope


class EventSource(Protocol):
    """The invitation event log (services/invitation/eventstore/event_log.py)."""

    def read_with_high_water(
        self, after: int = 0, limit: int = 1000
    ) -> tuple[list[EventEnvelope], int]: ...


class BatchState:
    """Planning state of one transaction: loaded in bulk, written back in bulk."""

    def __init__(self, load: StateLoader, values: dict[str, Json | None] | None = None) -> None:
        self._load = load
        # What is known of the state: loaded, or written by this batch (or by the earlier
        # batches of a rebuild that holds the whole state, see Planner).
        self._values: dict[str, Json | None] = {} if values is None else values
        self.puts: dict[str, Json] = {}
        self.deletes: set[str] = set()

    def preload(self, keys: Iterable[str]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self._values]
        if missing:
            found = self._load(missing)
            for key in missing:
                self._values[key] = found.get(key)

    def get(self, key: str) -> Json | None:
        if key not in self._values:
            self.preload([key])
        value = self._values[key]
        # A copy: a change counts only once it is `put`.
        return None if value is None else _copy(value)

    def put(self, key: str, value: Json) -> None:
        self._values[key] = value
        self.puts[key] = value
        self.deletes.discard(key)

    def delete(self, key: str) -> None:
        self._values[key] = None
        self.puts.pop(key, None)
        self.deletes.add(key)


def _copy(value: Json) -> Json:
    """Deep enough for the state's shapes (objects of scalars, lists and flat objects)."""
    return {
        k: dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
        for k, v in value.items()
    }


@dataclass(frozen=True)
class PlanReport:
    events: int
    emails: int
    position: int


def _nothing_stored(keys: Iterable[str]) -> dict[str, Json]:
    return {}


# {correlation id: W3C traceparent} of the commands behind some events (EventLog's).
TraceContexts = Callable[[Sequence[EventEnvelope]], Mapping[str, str]]


def _stamped(email: PlannedEmail, event: EventEnvelope, traces: Mapping[str, str]) -> PlannedEmail:
    """The email with the time of the event that made it due (for the event -> email
    latency; an invitation email waits for its later half) and that event's command's
    trace context (the parent of its send span)."""
    traceparent = None if event.correlation_id is None else traces.get(event.correlation_id)
    return replace(email, event_at=event.occurred_at.timestamp(), traceparent=traceparent)


class Planner:
    def __init__(
        self,
        events: EventSource,
        ledger: EmailLedger,
        *,
        batch_size: int = 1000,
        resident_state: dict[str, Json | None] | None = None,
        trace_contexts: TraceContexts | None = None,
    ):
        """`resident_state`: for a rebuild from position 0 with an emptied state (replay.py).
        The whole state is then kept in that dict between batches and never read back from
        the ledger (a third of a replay's database time); every batch still writes its
        changes, so the ledger ends with the same rows. Should another planner commit a
        batch meanwhile (the position is not where this one left it), the dict no longer
        holds the whole state: it is dropped and the state read from the ledger again."""
        self._events = events
        self._ledger = ledger
        self._batch_size = batch_size
        self._resident = resident_state
        self._resident_position = 0
        self._trace_contexts = trace_contexts  # None: tracing is off, nothing to copy

    def plan_once(self, *, until: int | None = None, status: str = PENDING) -> PlanStep | None:
        """Plan the next batch of events (up to position `until`), or None when done.

        New email rows get `status`: `pending` to be sent, or `replayed` in a rebuild.
        """

        def step(position: int, load: StateLoader) -> PlanStep | None:
            if until is not None and position >= until:
                return None
            envelopes, last = self._events.read_with_high_water(position, self._batch_size)
            if until is not None and last > until:
                envelopes = [e for e in envelopes if e.position <= until]
                last = until
            if last <= position:
                return None
            if self._resident is not None and position != self._resident_position:
                self._resident = None
            if self._resident is None:
                state = BatchState(load)
            else:
                state = BatchState(_nothing_stored, self._resident)
            state.preload(key for envelope in envelopes for key in keys_for(envelope))
            # A rebuild's rows are history (never sent): nothing to stamp on them.
            live = status == PENDING
            traces: Mapping[str, str] = {}
            if live and self._trace_contexts is not None and envelopes:
                traces = self._trace_contexts(envelopes)
            planned: list[PlannedEmail | None] = []
            # Where each invitation's invitation emails sit in `planned`: dropping them is
            # then linear in the batch, not batch x resends (a replay reads 5,000 a page).
            invitation_emails: dict[UUID, list[int]] = {}
            # Invitation -> position of its last superseding event in this batch.
            superseded: dict[UUID, int] = {}
            for envelope in envelopes:
                stale = superseded_invitation(envelope)
                if stale is not None:
                    # Earlier rows of this batch are dropped here, older ones in the ledger
                    # (those planned before this event only: see EmailLedger.plan).
                    superseded[stale] = envelope.position
                    for index in invitation_emails.pop(stale, ()):
                        planned[index] = None
                for email in plan(state, envelope):
                    if live:
                        email = _stamped(email, envelope, traces)
                    if email.kind in INVITATION_KINDS and email.invitation_id is not None:
                        invitation_emails.setdefault(email.invitation_id, []).append(len(planned))
                    planned.append(email)
            emails = [e for e in planned if e is not None]
            return PlanStep(
                last, len(envelopes), emails, state.puts, state.deletes, status, superseded
            )

        planned = self._ledger.plan(step)
        if planned is not None:
            self._resident_position = planned.position
        return planned

    def plan_available(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        on_emails: Callable[[], None] = lambda: None,
    ) -> PlanReport:
        """Plan until caught up with the event store (or asked to stop between batches).

        `on_emails` is called after each committed batch that planned emails, so sending
        starts with the first batch of a backlog rather than after the last one.
        """
        events = emails = 0
        position = None
        while not should_stop():
            step = self.plan_once()
            if step is None:
                break
            events += step.events
            emails += len(step.emails)
            position = step.position
            if step.emails:
                on_emails()
        return PlanReport(events, emails, position if position is not None else -1)
