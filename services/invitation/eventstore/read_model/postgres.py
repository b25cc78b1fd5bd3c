"""The read model on PostgreSQL: tables beside the store's, COPY for bulk writes.

A live save's changed rows are copied (binary) into session temporary tables and merged
with one `INSERT ... SELECT ... ON CONFLICT DO UPDATE` per table; a rebuild truncates and
copies straight into the tables, under the events table's lock.
"""

# Table names are interpolated into SQL: fixed at construction, never input.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from psycopg.rows import tuple_row

from services.invitation.eventstore.read_model.projection import Fold
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

_UUID, _TEXT, _TIME, _INT8, _INT4 = "uuid", "text", "timestamptz", "int8", "int4"
_TYPES = {
    "invitations": [
        _UUID, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT, _TEXT,
        _TIME, _INT8, _TIME, _TIME, _UUID, _UUID, _INT4, _TIME, _TIME, _TIME,
        _TEXT, _UUID, _TEXT, _TIME,
    ],
    "members": [
        _UUID, _TEXT, _TEXT, _UUID, _TEXT, _TIME, _UUID, _TEXT, _TEXT, _TIME, _TIME, _UUID,
    ],
    "batches": [_UUID, _TEXT, _INT4, _INT4, _TIME, _INT8, _TEXT],
    "batch_rows": [_UUID, _INT4, _UUID, _TEXT],
}  # fmt: skip
_COLUMNS = {
    "invitations": INVITATION_COLUMNS,
    "members": MEMBER_COLUMNS,
    "batches": BATCH_COLUMNS,
    "batch_rows": BATCH_ROW_COLUMNS,
}
assert all(len(_TYPES[t]) == len(_COLUMNS[t]) for t in _TYPES)
_KEYS = {"invitations": "invitation_id", "members": "membership_id"}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresReadModel(ReadModelTables):
    def __init__(self, datastore: Any, prefix: str, events_table: str) -> None:
        self._datastore = datastore
        schema = _quoted(datastore.schema)
        self.prefix = prefix
        self._events = f"{schema}.{_quoted(events_table)}"
        self.names = {
            name: f"{schema}.{_quoted(f'{prefix}_rm_{name}')}"
            for name in ("invitations", "members", "batches", "batch_rows", "position")
        }
        self._incoming = {name: f"{prefix}_rm_incoming_{name}" for name in _KEYS}

    def create_statements(self) -> list[str]:
        n, p = self.names, self.prefix

        def columns(table: str) -> str:
            return ", ".join(f"{c} {_TYPES[table][i]}" for i, c in enumerate(_COLUMNS[table]))

        def index(name: str, table: str, on: str) -> str:
            return f"CREATE INDEX IF NOT EXISTS {_quoted(f'{p}_rm_{name}')} ON {n[table]} {on}"

        return [
            f"CREATE TABLE IF NOT EXISTS {n['invitations']} ({columns('invitations')}, "
            "PRIMARY KEY (invitation_id))",
            index("invitations_tenant", "invitations", "(tenant_id, invited_position DESC)"),
            index(
                "invitations_status",
                "invitations",
                "(tenant_id, status, invited_position DESC)",
            ),
            index("invitations_email", "invitations", "(tenant_id, email)"),
            index("invitations_batch", "invitations", "(batch_id) WHERE batch_id IS NOT NULL"),
            index("invitations_account", "invitations", "(account_id)"),
            f"CREATE TABLE IF NOT EXISTS {n['members']} ({columns('members')}, "
            "PRIMARY KEY (membership_id))",
            index("members_tenant", "members", "(tenant_id, email) WHERE status IS NOT NULL"),
            f"CREATE TABLE IF NOT EXISTS {n['batches']} ({columns('batches')}, "
            "PRIMARY KEY (batch_id))",
            f"CREATE TABLE IF NOT EXISTS {n['batch_rows']} ({columns('batch_rows')}, "
            "PRIMARY KEY (batch_id, row_index))",
            f"CREATE TABLE IF NOT EXISTS {n['position']} (name text PRIMARY KEY, "
            "position bigint NOT NULL)",
        ]

    # -- dialect hooks -------------------------------------------------------------------

    def _fetch(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        # Binary: UUIDs and times arrive as they are stored, not parsed from text.
        with (
            self._datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as cursor,
        ):
            cursor.execute(query, list(params))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows

    def _execute(self, cursor: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with cursor.connection.cursor(row_factory=tuple_row) as tuples:
            tuples.execute(query, list(params))
            rows: list[tuple[Any, ...]] = tuples.fetchall()
            return rows

    def _write(self, cursor: Any, fold: Fold) -> None:
        changed = {
            "invitations": [
                invitation_values(fold.invitations[i]) for i in fold.changed_invitations
            ],
            "members": [member_values(fold.members[m]) for m in fold.changed_members],
        }
        for table, rows in changed.items():
            if rows:
                self._merge(cursor, table, rows)
        for batch in fold.batches.values():
            self._copy(cursor, self.names["batches"], "batches", [_batch_values(batch)])
            self._copy(cursor, self.names["batch_rows"], "batch_rows", batch_tuples(batch))
        self._set_position(cursor, fold.position)

    def _merge(self, cursor: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
        incoming = self._incoming[table]
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {incoming} "
            f"(LIKE {self.names[table]}) ON COMMIT DELETE ROWS"
        )
        self._copy(cursor, incoming, table, rows)
        columns = _COLUMNS[table]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != _KEYS[table])
        cursor.execute(
            f"INSERT INTO {self.names[table]} ({', '.join(columns)}) "
            f"SELECT {', '.join(columns)} FROM {incoming} "
            f"ON CONFLICT ({_KEYS[table]}) DO UPDATE SET {updates}"
        )

    def _copy(self, cursor: Any, target: str, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        statement = f"COPY {target} ({', '.join(_COLUMNS[table])}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(_TYPES[table])
            for row in rows:
                copy.write_row(row)

    def _set_position(self, cursor: Any, position: int) -> None:
        cursor.execute(
            f"INSERT INTO {self.names['position']} (name, position) VALUES ('live', %s) "
            "ON CONFLICT (name) DO UPDATE SET position = GREATEST("
            f"{self.names['position']}.position, excluded.position)",
            (position,),
        )

    # -- rebuild -------------------------------------------------------------------------

    def read_events(
        self, after: int, limit: int, topics: Sequence[str], cursor: Any = None
    ) -> list[tuple[int, UUID, str, bytes]]:
        """(position, stream, topic, stored state) of `topics` past `after`, in order."""
        query = (
            f"SELECT notification_id, originator_id, topic, state FROM {self._events} "
            "WHERE notification_id > %s AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
        )
        params = [after, list(topics), limit]
        if cursor is not None:
            return self._execute(cursor, query, params)
        with (
            self._datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as rows,
        ):
            rows.execute(query, params)
            found: list[tuple[int, UUID, str, bytes]] = rows.fetchall()
            return found

    @contextmanager
    def exclusive(self) -> Iterator[Any]:
        """A transaction in which no save can commit: the events table is locked."""
        with (
            self._datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            cursor.execute(f"LOCK TABLE {self._events} IN EXCLUSIVE MODE")
            yield cursor

    def replace_all(self, cursor: Any, fold: Fold) -> None:
        """Every table emptied and refilled from `fold`, in the caller's transaction."""
        cursor.execute(
            "TRUNCATE "
            + ", ".join(self.names[t] for t in ("invitations", "members", "batches", "batch_rows"))
        )
        self._copy(
            cursor,
            self.names["invitations"],
            "invitations",
            [invitation_values(r) for r in fold.invitations.values()],
        )
        self._copy(
            cursor,
            self.names["members"],
            "members",
            [member_values(r) for r in fold.members.values()],
        )
        self._copy(
            cursor,
            self.names["batches"],
            "batches",
            [_batch_values(b) for b in fold.batches.values()],
        )
        self._copy(
            cursor,
            self.names["batch_rows"],
            "batch_rows",
            [row for b in fold.batches.values() for row in batch_tuples(b)],
        )
        cursor.execute(f"DELETE FROM {self.names['position']}")
        self._set_position(cursor, fold.position)


def _batch_values(batch: Any) -> tuple[Any, ...]:
    return tuple(getattr(batch, c) for c in BATCH_COLUMNS)
