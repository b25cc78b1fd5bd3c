"""The read model: what queries read, kept by the store's recorders (rule 32).

- `projection.py`: the fold from stored events to rows (pure);
- `tables.py`: the tables, keeping them inside a save's transaction, and reading them;
- `postgres.py`, `sqlite.py`: one per database;
- `rebuild.py`: from scratch, for `invitations replay read-model` (rule 28).

Why in the insert transaction rather than followed after it: a query sent after a
command's reply must reflect that command (read-your-writes), and a row committed with
its events can never be behind them, nor ahead. See the README, "The read side".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.invitation.eventstore.envelopes import parse_state
from services.invitation.eventstore.read_model.postgres import PostgresReadModel
from services.invitation.eventstore.read_model.projection import (
    PROJECTED_TOPICS,
    BatchRow,
    Event,
    Fold,
    InvitationRow,
    MemberRow,
)
from services.invitation.eventstore.read_model.sqlite import SQLiteReadModel
from services.invitation.eventstore.read_model.tables import (
    BatchSummary,
    ReadModelTables,
    ReportLine,
)

__all__ = [
    "PROJECTED_TOPICS",
    "BatchRow",
    "BatchSummary",
    "Decode",
    "Event",
    "Fold",
    "InvitationRow",
    "MemberRow",
    "PostgresReadModel",
    "ReadModelTables",
    "ReportLine",
    "SQLiteReadModel",
    "events_of",
    "parse_state",
]

# A stored event's fields: its JSON state as stored, unless the store encrypts or
# compresses (then the store's mapper decodes it; see store.py).
Decode = Callable[[StoredEvent], Mapping[str, Any]]


_TOPICS = frozenset(PROJECTED_TOPICS)


def events_of(stored_events: Sequence[StoredEvent], decode: Decode | None = None) -> list[Event]:
    """The events of a save the read model follows, decoded, with their index in the save.

    `decode` None: the states are the library's plain JSON (no cipher, no compression)."""
    return [
        (
            index,
            e.topic,
            parse_state(e.state) if decode is None else decode(e),
            e.originator_id,  # type: ignore[misc]
        )
        for index, e in enumerate(stored_events)
        if e.topic in _TOPICS
    ]
