"""A unit of work over many commands: load once, decide in memory, save in one transaction.

One eventsourcing save per command tops out near 275 commands/s on PostgreSQL (one table
lock and NOTIFY per transaction). A batch shares one transaction, and loads every stream
it needs with one query, so its cost grows with the work, not with round trips.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.invitation.eventstore import SideTables, SideWrites, StoredReply

if TYPE_CHECKING:
    from eventsourcing.application import Application

A = TypeVar("A", bound=Aggregate)


class CommandLeftChangesError(RuntimeError):
    """A refused command had already changed an aggregate: a bug in a use case."""


class UnitOfWork:
    def __init__(self, app: Application[UUID], side_tables: SideTables) -> None:
        self._app = app
        self._side_tables = side_tables
        self._loaded: dict[UUID, Aggregate | None] = {}
        self._order: dict[UUID, None] = {}  # aggregates in the order their events should be saved
        # Since the last checkpoint: each aggregate handed out or added, with its number of
        # pending events at that moment (see `checkpoint`).
        self._touched: dict[UUID, int] = {}
        self.side = SideWrites()

    def prefetch(self, ids: Iterable[UUID]) -> None:
        """Load many streams with one query; streams that do not exist are remembered as such."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self._loaded]
        if not wanted:
            return
        by_stream: dict[UUID | str, list[Any]] = {}
        for stored in self._side_tables.select_streams(wanted):
            by_stream.setdefault(stored.originator_id, []).append(stored)
        to_domain_event = self._app.mapper.to_domain_event
        for stream_id in wanted:
            aggregate: Any = None
            for stored in by_stream.get(stream_id, ()):
                event: Any = to_domain_event(stored)
                aggregate = event.mutate(aggregate)
            self._loaded[stream_id] = aggregate

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self._loaded:
            self.prefetch([aggregate_id])
        found = self._loaded[aggregate_id]
        if found is not None and not isinstance(found, cls):
            return None  # an id of another kind of stream: as good as unknown
        if found is not None and aggregate_id not in self._touched:
            self._touched[aggregate_id] = len(found.pending_events)
        return found

    def add(self, aggregate: Aggregate) -> None:
        """Register a new or changed aggregate; later adds save later."""
        if aggregate.id not in self._touched:
            known = self._loaded.get(aggregate.id)
            # A new aggregate had nothing pending before this command created it.
            self._touched[aggregate.id] = 0 if known is None else len(known.pending_events)
        self._loaded[aggregate.id] = aggregate
        self._order.pop(aggregate.id, None)
        self._order[aggregate.id] = None

    def seal(self, temp_password_id: UUID, sealed: bytes) -> None:
        self.side.sealed.append((temp_password_id, sealed))

    def sealed_copy(self, temp_password_id: UUID) -> bytes | None:
        """The sealed copy of a live temporary password, unless it was destroyed (by now
        or earlier in this unit of work)."""
        if temp_password_id in self.side.shredded:
            return None
        for sealed_id, sealed in self.side.sealed:
            if sealed_id == temp_password_id:
                return sealed
        return self._side_tables.read_sealed(temp_password_id)

    def shred(self, temp_password_id: UUID) -> None:
        self.side.shredded.append(temp_password_id)

    def record_reply(self, reply: StoredReply) -> None:
        self.side.replies.append(reply)

    def record_trace_context(self, command_id: str, traceparent: str) -> None:
        """The W3C trace context of a command whose events this unit of work stores."""
        self.side.trace_contexts[command_id] = traceparent

    def checkpoint(self) -> tuple[int, int]:
        """Mark the start of a command, to check later that a refusal changed nothing.

        Only what the command is handed (`get`) or registers (`add`) can change, so only
        those are compared afterwards: a cost per command independent of the batch size
        (comparing every loaded aggregate made a batch quadratic in its size).
        """
        self._touched = {}
        return len(self.side.sealed), len(self.side.shredded)

    def check_unchanged_since(self, checkpoint: tuple[int, int]) -> None:
        changed = [
            aggregate_id
            for aggregate_id, before in self._touched.items()
            if self._pending(aggregate_id) != before
        ]
        if changed or (len(self.side.sealed), len(self.side.shredded)) != checkpoint:
            raise CommandLeftChangesError("a refused command left changes behind")

    def _pending(self, aggregate_id: UUID) -> int:
        aggregate = self._loaded.get(aggregate_id)
        return 0 if aggregate is None else len(aggregate.pending_events)

    def to_save(self) -> list[Aggregate]:
        ordered = [self._loaded[i] for i in self._order]
        others = [
            a
            for i, a in self._loaded.items()
            if a is not None and i not in self._order and a.pending_events
        ]
        return [a for a in [*ordered, *others] if a is not None]

    def commit(self) -> None:
        self._app.save(*self.to_save(), side=self.side)
