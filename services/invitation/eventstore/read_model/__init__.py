"""The read model: what queries read, kept by the store's recorders (rule 32).

- `projection.py`: the fold from stored events to rows (pure);
- `saves.py`: a live save's fold, as much of it as possible before its transaction;
- `tables.py`: the tables, keeping them inside a save's transaction, and reading them;
- `postgres.py`, `sqlite.py`: one per database;
- `rebuild.py`: from scratch, for `invitations replay read-model` (rule 28).

Why in the insert transaction rather than followed after it: a query sent after a
command's reply must reflect that command (read-your-writes), and a row committed with
its events can never be behind them, nor ahead. See the README, "The read side".
"""

from __future__ import annotations

from services.invitation.eventstore.read_model.postgres import PostgresReadModel
from services.invitation.eventstore.read_model.projection import (
    PROJECTED_TOPICS,
    BatchRow,
    Fold,
    InvitationRow,
    MemberRow,
)
from services.invitation.eventstore.read_model.saves import Event, PreparedSave
from services.invitation.eventstore.read_model.sqlite import SQLiteReadModel
from services.invitation.eventstore.read_model.tables import (
    BatchSummary,
    Decode,
    ReadModelTables,
    ReportLine,
    events_of,
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
    "PreparedSave",
    "ReadModelTables",
    "ReportLine",
    "SQLiteReadModel",
    "events_of",
]
