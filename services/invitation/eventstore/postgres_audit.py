"""The audit tables of the PostgreSQL store: hash chain, signed checkpoints, stream index.

What they hold and why: `chain.py`. Written in the insert transaction of
`PostgresInvitationRecorder` (postgres.py)."""

# Table names are interpolated into SQL: fixed at construction, never input.

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from psycopg.sql import SQL, Composed, Identifier

from services.invitation.eventstore.chain import (
    GENESIS,
    Checkpoint,
    EventRow,
    PreparedRows,
    StreamRow,
)


class PostgresAuditTables:
    def __init__(self, datastore: Any, events_table_name: str) -> None:
        self._datastore = datastore
        schema = Identifier(datastore.schema)
        prefix = events_table_name.removesuffix("_events")
        self._events = SQL("{}.{}").format(schema, Identifier(events_table_name))
        self._chain = SQL("{}.{}").format(schema, Identifier(f"{prefix}_chain"))
        self._checkpoints = SQL("{}.{}").format(schema, Identifier(f"{prefix}_chain_checkpoints"))
        self._streams = SQL("{}.{}").format(schema, Identifier(f"{prefix}_streams"))
        self._streams_email = Identifier(f"{prefix}_streams_email_idx")
        self._streams_tenant = Identifier(f"{prefix}_streams_tenant_idx")

    def create_statements(self) -> list[Composed]:
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (notification_id bigint PRIMARY KEY, "
                "hash bytea NOT NULL)"
            ).format(self._chain),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint PRIMARY KEY, notification_id bigint "
                "NOT NULL, head bytea NOT NULL, events bigint NOT NULL, signed_at text NOT NULL, "
                "mac bytea NOT NULL)"
            ).format(self._checkpoints),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (originator_id uuid PRIMARY KEY, "
                "kind text NOT NULL, tenant_id text, email text)"
            ).format(self._streams),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (email)").format(
                self._streams_email, self._streams
            ),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tenant_id)").format(
                self._streams_tenant, self._streams
            ),
        ]

    def append(self, curs: Any, rows: PreparedRows, positions: Sequence[int]) -> None:
        """Inside the insert transaction, after the events (and their table lock)."""
        curs.execute(
            SQL("SELECT hash FROM {} ORDER BY notification_id DESC LIMIT 1").format(self._chain)
        )
        row = curs.fetchone()
        previous = GENESIS if row is None else bytes(row["hash"])
        # COPY in binary: psycopg dumps a bytea[] parameter in Python, byte by byte.
        with curs.copy(
            SQL("COPY {} (notification_id, hash) FROM STDIN (FORMAT BINARY)").format(self._chain)
        ) as copy:
            copy.set_types(["int8", "bytea"])
            for position, tail in sorted(zip(positions, rows.tails, strict=True)):
                previous = hashlib.sha256(previous + position.to_bytes(8, "big") + tail).digest()
                copy.write_row((position, previous))
        if rows.streams:
            with curs.copy(
                SQL(
                    "COPY {} (originator_id, kind, tenant_id, email) FROM STDIN (FORMAT BINARY)"
                ).format(self._streams)
            ) as copy:
                copy.set_types(["uuid", "text", "text", "text"])
                for stream in rows.streams:
                    copy.write_row(stream)

    def _fetch(self, statement: Composed, params: Sequence[Any]) -> list[Any]:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(statement, params)
            return list(curs.fetchall())

    def read_events(self, after: int, upto: int, limit: int) -> list[EventRow]:
        rows = self._fetch(
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                "WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(self._events),
            (after, upto, limit),
        )
        return [
            EventRow(
                r["notification_id"],
                r["originator_id"],
                r["originator_version"],
                r["topic"],
                bytes(r["state"]),
            )
            for r in rows
        ]

    def read_links(self, after: int, upto: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._fetch(
            SQL(
                "SELECT notification_id, hash FROM {} WHERE notification_id > %s AND "
                "notification_id <= %s ORDER BY notification_id LIMIT %s"
            ).format(self._chain),
            (after, upto, limit),
        )
        return [(r["notification_id"], bytes(r["hash"])) for r in rows]

    def max_positions(self) -> tuple[int, int]:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT max(notification_id) AS m FROM {}").format(self._events))
            events = curs.fetchone()["m"] or 0
            curs.execute(SQL("SELECT max(notification_id) AS m FROM {}").format(self._chain))
            links = curs.fetchone()["m"] or 0
        return int(events), int(links)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._fetch(
            SQL(
                "SELECT seq, notification_id, head, events, signed_at, mac FROM {} ORDER BY seq"
            ).format(self._checkpoints),
            (),
        )
        return [
            Checkpoint(
                r["seq"],
                r["notification_id"],
                bytes(r["head"]),
                r["events"],
                r["signed_at"],
                bytes(r["mac"]),
            )
            for r in rows
        ]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "INSERT INTO {} (seq, notification_id, head, events, signed_at, mac) "
                    "VALUES (%s, %s, %s, %s, %s, %s)"
                ).format(self._checkpoints),
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
            SQL("SELECT originator_id, kind, tenant_id, email FROM {} WHERE {} = %s").format(
                self._streams, Identifier(column)
            ),
            (value,),
        )
        return [StreamRow(r["originator_id"], r["kind"], r["tenant_id"], r["email"]) for r in rows]

    def notifications_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        """Every event of these streams with its position, in position order (by primary key)."""
        if not originator_ids:
            return []
        rows = self._fetch(
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                "WHERE originator_id = ANY(%s) ORDER BY notification_id"
            ).format(self._events),
            (list(originator_ids),),
        )
        return [
            Notification(
                id=r["notification_id"],
                originator_id=r["originator_id"],
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]


# -- SQLite --------------------------------------------------------------------------------
