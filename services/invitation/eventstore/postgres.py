"""The PostgreSQL invitation store: events, side tables (replies, sealed secrets) and audit
tables written in one transaction, and the relay's tracking table.

The side tables: `side_tables.py`. The audit tables: `chain.py`, `postgres_audit.py`."""

# Table names are interpolated into SQL: fixed at construction, never input.

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composed, Identifier, Literal

from services.invitation.eventstore.chain import (
    PreparedRows,
)
from services.invitation.eventstore.postgres_audit import PostgresAuditTables
from services.invitation.eventstore.read_model import Decode, PostgresReadModel
from services.invitation.eventstore.side_tables import SideWrites, StoredReply


@contextmanager
def serialised_ddl(datastore: PostgresDatastore) -> Iterator[None]:
    """Every service opens the invitation store at start-up. CREATE TABLE IF NOT EXISTS run
    by two at once fails on the second ("duplicate key value violates unique constraint
    pg_type_typname_nsp_index"), and the library decides what to create from what it saw
    before its transaction. So one process at a time creates, under a session advisory
    lock on a connection of its own (autocommit: it must not idle in a transaction)."""
    kwargs = datastore.pool.kwargs
    assert isinstance(kwargs, dict)  # the library passes a dict (dbname, host, user...)
    params = {k: v for k, v in kwargs.items() if k != "row_factory"}
    with psycopg.connect(**params, autocommit=True) as conn:
        key = f"invitations-ddl:{datastore.schema}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


class PostgresTrackingRecorderSerialised(PostgresTrackingRecorder):
    """The relay's tracking table, created like the store's (see `serialised_ddl`)."""

    def create_table(self) -> None:
        with serialised_ddl(self.datastore):
            super().create_table()


class PostgresInvitationRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        schema = Identifier(datastore.schema)
        self._commands = SQL("{}.{}").format(schema, Identifier(f"{prefix}_commands"))
        self._sealed = SQL("{}.{}").format(schema, Identifier(f"{prefix}_sealed_secrets"))
        self._traces = SQL("{}.{}").format(schema, Identifier(f"{prefix}_trace_contexts"))
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, "
                "fingerprint text NOT NULL, reply text NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(self._commands)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (temp_password_id uuid PRIMARY KEY, "
                "sealed bytea NOT NULL, sealed_at timestamptz NOT NULL DEFAULT now())"
            ).format(self._sealed)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (correlation_id text PRIMARY KEY, "
                "traceparent text NOT NULL)"
            ).format(self._traces)
        )
        # Hash chain and stream index, written with the events (eventstore/chain.py).
        self.audit = PostgresAuditTables(datastore, events_table_name)
        self.sql_create_statements.extend(self.audit.create_statements())
        # The read model (queries), kept in the same transaction: read_model/.
        self.read_model = PostgresReadModel(datastore, prefix, events_table_name)
        self.sql_create_statements.extend(
            cast("Composed", SQL(statement)) for statement in self.read_model.create_statements()
        )
        self.decode_state: Decode | None = None  # the store sets it if it encrypts
        events = SQL("{}.{}").format(schema, Identifier(events_table_name))
        self._copy_events = SQL(
            "COPY {} (originator_id, originator_version, topic, state, notification_id) "
            "FROM STDIN (FORMAT BINARY)"
        ).format(events)
        self._copy_replies = SQL(
            "COPY {} (command_id, fingerprint, reply) FROM STDIN (FORMAT BINARY)"
        ).format(self._commands)
        self._copy_sealed = SQL(
            "COPY {} (temp_password_id, sealed) FROM STDIN (FORMAT BINARY)"
        ).format(self._sealed)
        self._sequence: str | None = None

    def create_table(self) -> None:
        with serialised_ddl(self.datastore):
            super().create_table()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """eventsourcing's insert, as COPY, without pipeline mode.

        The library pipelines an `INSERT ... unnest(composite[])`; with a large
        transaction (a 10,000-row mass invite is ~50,000 events) that pipeline stalled for
        good in psycopg 3.3.9, and psycopg dumps the composite array in pure Python (8 s
        of a 10,000-row mass invite). COPY in binary format takes ~0.3 s for the same rows.
        The guarantees are the library's: the same EXCLUSIVE table lock and NOTIFY first,
        then positions from the table's own sequence, taken under that lock so that
        positions follow commit order, in one transaction with the side tables.
        """
        audit_rows = PreparedRows.of(stored_events)  # before the transaction: see its doc
        projected = self.read_model.prepare(stored_events, self.decode_state)  # likewise
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return []
            self._lock_table(curs)
            self._notify_channel(curs)
            ids = self._next_positions(curs, len(stored_events))
            with curs.copy(self._copy_events) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea", "int8"])
                for position, e in zip(ids, stored_events, strict=True):
                    copy.write_row(
                        (e.originator_id, e.originator_version, e.topic, e.state, position)
                    )
            self.audit.append(curs, audit_rows, ids)
            self.read_model.apply(curs, projected, ids)
            return ids

    def _next_positions(self, curs: Any, count: int) -> list[int]:
        """`count` values of the notification_id sequence, ascending (the table is locked)."""
        curs.execute(
            SQL("SELECT nextval({}::regclass) AS id FROM generate_series(1, %s)").format(
                Literal(self._sequence_name(curs))
            ),
            (count,),
        )
        return sorted(row["id"] for row in curs.fetchall())

    def _sequence_name(self, curs: Any) -> str:
        if self._sequence is None:  # the table exists only after create_table()
            curs.execute(
                "SELECT pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), "
                "'notification_id') AS seq",
                (self.datastore.schema, self.events_table_name),
            )
            sequence = curs.fetchone()["seq"]
            if sequence is None:
                raise OperationalError(f"no table {self.events_table_name} with a sequence yet")
            self._sequence = str(sequence)
        return self._sequence

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        side: SideWrites | None = kwargs.get("side")
        if side is None:
            return
        # COPY in binary: a mass invite seals 10,000 passwords, and psycopg's text
        # dumping of a bytea[] parameter escapes every byte in Python (~4 s).
        if side.replies:
            with curs.copy(self._copy_replies) as copy:
                copy.set_types(["text", "text", "text"])
                for r in side.replies:
                    copy.write_row((r.command_id, r.fingerprint, r.reply_json))
        if side.sealed:
            with curs.copy(self._copy_sealed) as copy:
                copy.set_types(["uuid", "bytea"])
                for row in side.sealed:
                    copy.write_row(row)
        if side.shredded:
            curs.execute(
                SQL("DELETE FROM {} WHERE temp_password_id = ANY(%s)").format(self._sealed),
                (side.shredded,),
            )
        if side.trace_contexts:
            curs.execute(
                SQL(
                    "INSERT INTO {} (correlation_id, traceparent) "
                    "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING"
                ).format(self._traces),
                (list(side.trace_contexts), list(side.trace_contexts.values())),
            )

    def select_streams(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every event of many streams in one query, each stream in version order."""
        if not originator_ids:
            return []
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT originator_id, originator_version, topic, state FROM {}.{} "
                    "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
                ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name)),
                (list(originator_ids),),
            )
            rows = curs.fetchall()
        return [
            StoredEvent(
                originator_id=r["originator_id"],
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]

    def lookup_replies(self, command_ids: Sequence[str]) -> dict[str, StoredReply]:
        if not command_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT command_id, fingerprint, reply FROM {} WHERE command_id = ANY(%s)"
                ).format(self._commands),
                (list(command_ids),),
            )
            rows = curs.fetchall()
        return {
            r["command_id"]: StoredReply(r["command_id"], r["fingerprint"], r["reply"])
            for r in rows
        }

    def lookup_trace_contexts(self, correlation_ids: Sequence[str]) -> dict[str, str]:
        if not correlation_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT correlation_id, traceparent FROM {} WHERE correlation_id = ANY(%s)"
                ).format(self._traces),
                (list(correlation_ids),),
            )
            rows = curs.fetchall()
        return {r["correlation_id"]: r["traceparent"] for r in rows}

    def read_sealed(self, temp_password_id: UUID) -> bytes | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT sealed FROM {} WHERE temp_password_id = %s").format(self._sealed),
                (temp_password_id,),
            )
            row = curs.fetchone()
        return None if row is None else bytes(row["sealed"])

    def read_sealed_many(self, temp_password_ids: Sequence[UUID]) -> dict[UUID, bytes]:
        """The sealed copies that still exist, in one query (the notifier's batches)."""
        if not temp_password_ids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT temp_password_id, sealed FROM {} WHERE temp_password_id = ANY(%s)"
                ).format(self._sealed),
                (list(temp_password_ids),),
            )
            rows = curs.fetchall()
        return {r["temp_password_id"]: bytes(r["sealed"]) for r in rows}

    def count_sealed(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT count(*) AS n FROM {}").format(self._sealed))
            row = curs.fetchone()
        return int(row["n"]) if row else 0
