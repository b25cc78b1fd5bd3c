"""The SQLite invitation store (the embedded option): events, side tables and audit tables
in one transaction, with the audit tables' SQLite implementation beside the recorder.

The side tables: `side_tables.py`. The audit tables: `chain.py`."""

# Table names are interpolated into SQL: fixed at construction, never input.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from services.invitation.eventstore.chain import (
    GENESIS,
    Checkpoint,
    EventRow,
    StreamRow,
    link_hash,
    stream_row,
)
from services.invitation.eventstore.read_model import Decode, SQLiteReadModel
from services.invitation.eventstore.side_tables import SideWrites, StoredReply


class SQLiteAuditTables:
    def __init__(self, datastore: Any, events_table_name: str, prefix: str) -> None:
        self._datastore = datastore
        self._events = events_table_name
        self._chain = f"{prefix}_chain"
        self._checkpoints = f"{prefix}_chain_checkpoints"
        self._streams = f"{prefix}_streams"

    def create_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self._chain} (notification_id INTEGER PRIMARY KEY, "
            "hash BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self._checkpoints} (seq INTEGER PRIMARY KEY, "
            "notification_id INTEGER NOT NULL, head BLOB NOT NULL, events INTEGER NOT NULL, "
            "signed_at TEXT NOT NULL, mac BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self._streams} (originator_id TEXT PRIMARY KEY, "
            "kind TEXT NOT NULL, tenant_id TEXT, email TEXT)",
            f"CREATE INDEX IF NOT EXISTS {self._streams}_email_idx ON {self._streams} (email)",
            f"CREATE INDEX IF NOT EXISTS {self._streams}_tenant_idx ON {self._streams} (tenant_id)",
        ]

    def append(
        self, c: Any, stored_events: Sequence[StoredEvent], positions: Sequence[int]
    ) -> None:
        c.execute(f"SELECT hash FROM {self._chain} ORDER BY notification_id DESC LIMIT 1")
        row = c.fetchone()
        previous = GENESIS if row is None else bytes(row[0])
        links = []
        for position, e in sorted(zip(positions, stored_events, strict=True), key=lambda p: p[0]):
            previous = link_hash(
                previous,
                position,
                e.originator_id,  # type: ignore[arg-type]
                e.originator_version,
                e.topic,
                e.state,
            )
            links.append((position, previous))
        c.executemany(f"INSERT INTO {self._chain} (notification_id, hash) VALUES (?, ?)", links)
        streams = [stream_row(e) for e in stored_events if e.originator_version == 1]
        c.executemany(
            f"INSERT INTO {self._streams} (originator_id, kind, tenant_id, email) "
            "VALUES (?, ?, ?, ?)",
            [(i.hex, kind, tenant, email) for i, kind, tenant, email in streams],
        )

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            return list(c.fetchall())

    def read_events(self, after: int, upto: int, limit: int) -> list[EventRow]:
        rows = self._fetch(
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self._events} "
            "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
            (after, upto, limit),
        )
        return [EventRow(r[0], UUID(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def read_links(self, after: int, upto: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._fetch(
            f"SELECT notification_id, hash FROM {self._chain} WHERE notification_id > ? "
            "AND notification_id <= ? ORDER BY notification_id LIMIT ?",
            (after, upto, limit),
        )
        return [(r[0], bytes(r[1])) for r in rows]

    def max_positions(self) -> tuple[int, int]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(f"SELECT max(rowid) FROM {self._events}")
            events = c.fetchone()[0] or 0
            c.execute(f"SELECT max(notification_id) FROM {self._chain}")
            links = c.fetchone()[0] or 0
        return int(events), int(links)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._fetch(
            f"SELECT seq, notification_id, head, events, signed_at, mac FROM {self._checkpoints} "
            "ORDER BY seq",
            (),
        )
        return [Checkpoint(r[0], r[1], bytes(r[2]), r[3], r[4], bytes(r[5])) for r in rows]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {self._checkpoints} (seq, notification_id, head, events, "
                "signed_at, mac) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    checkpoint.seq,
                    checkpoint.position,
                    checkpoint.head,
                    checkpoint.events,
                    checkpoint.signed_at,
                    checkpoint.mac,
                ),
            )

    def streams(self, *, email: str | None = None, tenant_id: str | None = None) -> list[StreamRow]:
        column, value = ("email", email) if email is not None else ("tenant_id", tenant_id)
        rows = self._fetch(
            f"SELECT originator_id, kind, tenant_id, email FROM {self._streams} WHERE {column} = ?",
            (value,),
        )
        return [StreamRow(UUID(r[0]), r[1], r[2], r[3]) for r in rows]

    def notifications_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        ids = [i.hex for i in originator_ids]
        found: list[Notification] = []
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = self._fetch(
                f"SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self._events} WHERE originator_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.extend(
                Notification(
                    id=r[0],
                    originator_id=UUID(r[1]),
                    originator_version=r[2],
                    topic=r[3],
                    state=bytes(r[4]),
                )
                for r in rows
            )
        found.sort(key=lambda n: n.id)
        return found


class SQLiteInvitationRecorder(SQLiteApplicationRecorder):
    _COMMANDS = "invitation_commands"
    _SEALED = "invitation_sealed_secrets"
    _TRACES = "invitation_trace_contexts"

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        # Before super(), which builds the create statements.
        self.audit = SQLiteAuditTables(datastore, events_table_name, "invitation")
        self.read_model = SQLiteReadModel(datastore, "invitation", events_table_name)
        self.decode_state: Decode | None = None  # the store sets it if it encrypts
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self._COMMANDS} (command_id TEXT PRIMARY KEY, "
            "fingerprint TEXT NOT NULL, reply TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self._SEALED} (temp_password_id TEXT PRIMARY KEY, "
            "sealed BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self._TRACES} (correlation_id TEXT PRIMARY KEY, "
            "traceparent TEXT NOT NULL)",
            *self.audit.create_statements(),
            *self.read_model.create_statements(),
        ]

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        side: SideWrites | None = kwargs.get("side")
        if side is not None:
            if side.replies:
                c.executemany(
                    f"INSERT INTO {self._COMMANDS} (command_id, fingerprint, reply) "
                    "VALUES (?, ?, ?)",
                    [(r.command_id, r.fingerprint, r.reply_json) for r in side.replies],
                )
            if side.sealed:
                c.executemany(
                    f"INSERT INTO {self._SEALED} (temp_password_id, sealed) VALUES (?, ?)",
                    [(str(i), s) for i, s in side.sealed],
                )
            for temp_password_id in side.shredded:
                c.execute(
                    f"DELETE FROM {self._SEALED} WHERE temp_password_id = ?",
                    (str(temp_password_id),),
                )
            c.executemany(
                f"INSERT INTO {self._TRACES} (correlation_id, traceparent) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                list(side.trace_contexts.items()),
            )
        ids = super()._insert_events(c, stored_events, **kwargs)
        self.audit.append(c, stored_events, ids or [])
        self.read_model.apply(
            c, self.read_model.prepare(stored_events, self.decode_state), ids or []
        )
        return ids

    def select_streams(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every event of many streams in one query per 500 ids, each in version order."""
        ids = [i.hex for i in originator_ids]
        events: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                c.execute(
                    "SELECT originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE originator_id IN ({marks}) "
                    "ORDER BY originator_id, originator_version",
                    chunk,
                )
                events.extend(
                    StoredEvent(
                        originator_id=UUID(row[0]),
                        originator_version=row[1],
                        topic=row[2],
                        state=bytes(row[3]),
                    )
                    for row in c.fetchall()
                )
        return events

    def lookup_replies(self, command_ids: Sequence[str]) -> dict[str, StoredReply]:
        found: dict[str, StoredReply] = {}
        ids = list(command_ids)
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                c.execute(
                    f"SELECT command_id, fingerprint, reply FROM {self._COMMANDS} "
                    f"WHERE command_id IN ({marks})",
                    chunk,
                )
                for row in c.fetchall():
                    found[row[0]] = StoredReply(row[0], row[1], row[2])
        return found

    def lookup_trace_contexts(self, correlation_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        ids = list(correlation_ids)
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                c.execute(
                    f"SELECT correlation_id, traceparent FROM {self._TRACES} "
                    f"WHERE correlation_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                found.update({row[0]: row[1] for row in c.fetchall()})
        return found

    def read_sealed(self, temp_password_id: UUID) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT sealed FROM {self._SEALED} WHERE temp_password_id = ?",
                (str(temp_password_id),),
            )
            row = c.fetchone()
        return None if row is None else bytes(row[0])

    def read_sealed_many(self, temp_password_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """The sealed copies that still exist, 500 ids per query."""
        ids = [str(i) for i in temp_password_ids]
        found: dict[UUID, bytes] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                c.execute(
                    f"SELECT temp_password_id, sealed FROM {self._SEALED} "
                    f"WHERE temp_password_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                found.update({UUID(row[0]): bytes(row[1]) for row in c.fetchall()})
        return found

    def count_sealed(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {self._SEALED}")
            row = c.fetchone()
        return int(row[0]) if row else 0
