"""The read model on SQLite (the embedded store): the same tables, ids and times as text.

UUIDs are stored in their canonical text form and times as ISO 8601 in UTC, so that the
rows read back equal the rows written (tests compare a rebuild with the live tables).
"""

# Table names are interpolated into SQL: fixed at construction, never input.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from services.invitation.eventstore.read_model.projection import (
    BatchRow,
    Fold,
    InvitationRow,
    MemberRow,
)
from services.invitation.eventstore.read_model.tables import (
    BATCH_COLUMNS,
    BATCH_ROW_COLUMNS,
    INVITATION_COLUMNS,
    MEMBER_COLUMNS,
    ReadModelTables,
    batch_tuples,
    invitation_values,
    member_values,
)

_UUIDS = {"invitation_id", "batch_id", "account_id", "temp_password_id", "membership_id",
          "offered_invitation_id"}  # fmt: skip
_TIMES = {"invited_at", "invitation_expires_at", "access_expires_at", "accepted_at",
          "revoked_at", "lapsed_at", "temp_password_valid_until", "offered_access_expires_at",
          "member_since", "completed_at"}  # fmt: skip
_INTEGERS = {"invited_position", "link_generation", "invited", "refused",
             "completed_position", "row_index"}  # fmt: skip


def _to_db(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _decoder(columns: Sequence[str]) -> list[Any]:
    def uuid(v: Any) -> UUID | None:
        return None if v is None else UUID(v)

    def moment(v: Any) -> datetime | None:
        return None if v is None else datetime.fromisoformat(v)

    return [uuid if c in _UUIDS else moment if c in _TIMES else None for c in columns]


_INVITATION_DECODERS = _decoder(INVITATION_COLUMNS)
_MEMBER_DECODERS = _decoder(MEMBER_COLUMNS)


def _decoded(decoders: list[Any], values: Sequence[Any]) -> list[Any]:
    return [v if d is None else d(v) for d, v in zip(decoders, values, strict=True)]


def _column(name: str) -> str:
    kind = "INTEGER" if name in _INTEGERS else "TEXT"
    return f"{name} {kind}"


class SQLiteReadModel(ReadModelTables):
    placeholder = "?"

    def __init__(self, datastore: Any, prefix: str, events_table: str) -> None:
        self._datastore = datastore
        self._events = events_table
        self.names = {
            name: f"{prefix}_rm_{name}"
            for name in ("invitations", "members", "batches", "batch_rows", "position")
        }

    def create_statements(self) -> list[str]:
        n = self.names

        def table(name: str, columns: Sequence[str], key: str) -> str:
            body = ", ".join(_column(c) for c in columns)
            return f"CREATE TABLE IF NOT EXISTS {n[name]} ({body}, PRIMARY KEY ({key}))"

        return [
            table("invitations", INVITATION_COLUMNS, "invitation_id"),
            f"CREATE INDEX IF NOT EXISTS {n['invitations']}_tenant ON {n['invitations']} "
            "(tenant_id, invited_position)",
            f"CREATE INDEX IF NOT EXISTS {n['invitations']}_status ON {n['invitations']} "
            "(tenant_id, status, invited_position)",
            f"CREATE INDEX IF NOT EXISTS {n['invitations']}_email ON {n['invitations']} "
            "(tenant_id, email)",
            f"CREATE INDEX IF NOT EXISTS {n['invitations']}_account ON {n['invitations']} "
            "(account_id)",
            table("members", MEMBER_COLUMNS, "membership_id"),
            f"CREATE INDEX IF NOT EXISTS {n['members']}_tenant ON {n['members']} "
            "(tenant_id, email)",
            table("batches", BATCH_COLUMNS, "batch_id"),
            table("batch_rows", BATCH_ROW_COLUMNS, "batch_id, row_index"),
            f"CREATE TABLE IF NOT EXISTS {n['position']} (name TEXT PRIMARY KEY, "
            "position INTEGER NOT NULL)",
        ]

    # -- dialect hooks -------------------------------------------------------------------

    def _value(self, value: Any) -> Any:
        return _to_db(value)

    def _invitation(self, values: Sequence[Any]) -> InvitationRow:
        return InvitationRow(*_decoded(_INVITATION_DECODERS, values))

    def _member(self, values: Sequence[Any]) -> MemberRow:
        return MemberRow(*_decoded(_MEMBER_DECODERS, values))

    def _fetch(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(query, list(params))
            return [tuple(r) for r in c.fetchall()]

    def _execute(self, cursor: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor.execute(query, list(params))
        return [tuple(r) for r in cursor.fetchall()]

    def _write(self, cursor: Any, fold: Fold) -> None:
        self._upsert(
            cursor,
            "invitations",
            INVITATION_COLUMNS,
            [invitation_values(fold.invitations[i]) for i in fold.changed_invitations],
        )
        self._upsert(
            cursor,
            "members",
            MEMBER_COLUMNS,
            [member_values(fold.members[m]) for m in fold.changed_members],
        )
        self._insert_batches(cursor, fold.batches.values())
        cursor.execute(
            f"INSERT INTO {self.names['position']} (name, position) VALUES ('live', ?) "
            "ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)",
            (fold.position,),
        )

    def _upsert(
        self, cursor: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        marks = ", ".join("?" * len(columns))
        cursor.executemany(
            f"INSERT OR REPLACE INTO {self.names[table]} ({', '.join(columns)}) VALUES ({marks})",
            [[_to_db(v) for v in row] for row in rows],
        )

    def _insert_batches(self, cursor: Any, batches: Any) -> None:
        for batch in batches:
            self._upsert(cursor, "batches", BATCH_COLUMNS, [_batch_values(batch)])
            self._upsert(cursor, "batch_rows", BATCH_ROW_COLUMNS, batch_tuples(batch))

    # -- rebuild -------------------------------------------------------------------------

    def read_events(
        self, after: int, limit: int, topics: Sequence[str], cursor: Any = None
    ) -> list[tuple[int, UUID, str, bytes]]:
        """(position, stream, topic, stored state) of `topics` past `after`, in order."""
        marks = ", ".join("?" * len(topics))
        query = (
            f"SELECT rowid, originator_id, topic, state FROM {self._events} "
            f"WHERE rowid > ? AND topic IN ({marks}) ORDER BY rowid LIMIT ?"
        )
        params = [after, *topics, limit]
        rows = (
            self._execute(cursor, query, params)
            if cursor is not None
            else self._fetch(query, params)
        )
        return [(int(r[0]), UUID(r[1]), r[2], bytes(r[3])) for r in rows]

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """A transaction holding SQLite's write lock from its first statement on."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM {self.names['position']}")  # takes the write lock
            yield cursor

    def replace_all(self, cursor: Any, fold: Fold) -> None:
        for name in ("invitations", "members", "batches", "batch_rows", "position"):
            cursor.execute(f"DELETE FROM {self.names[name]}")
        fold.changed_invitations = set(fold.invitations)
        fold.changed_members = set(fold.members)
        self._write(cursor, fold)


def _batch_values(batch: BatchRow) -> tuple[Any, ...]:
    return tuple(getattr(batch, c) for c in BATCH_COLUMNS)
