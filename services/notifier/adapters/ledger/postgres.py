"""The email ledger on PostgreSQL: a connection pool, COPY for bulk writes, the lease."""

# Table names are interpolated into SQL: they are our own constants and a schema name
# checked against _IDENTIFIER, never input. Values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from services.notifier.adapters.ledger.common import SUPERSEDED, EmailLedger
from services.notifier.adapters.ledger.lease import (
    LEADER_TABLE,
    PostgresLease,
    create_leader_table,
)
from services.notifier.adapters.ledger.rows import EMAIL_COLUMNS, PLANNED_COLUMNS, Cursor, Json
from services.notifier.domain.delivery import PENDING, SENDING, SENT, SKIPPED
from services.notifier.domain.planning import INVITATION_KINDS
from shared.database import ensure_schema, postgres_conninfo

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresLedger(EmailLedger):
    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.schema = parse_qs(parts.query).get("schema", ["public"])[0]
        if not _IDENTIFIER.match(self.schema):
            raise ValueError(f"unsupported schema name {self.schema!r}")
        if self.schema != "public":
            ensure_schema(database_url, self.schema)
        self._conninfo = postgres_conninfo(database_url)
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True},
            # A connection the database dropped (a restart) is replaced as it is taken,
            # not handed out to fail a planning pass and wait for its retry.
            check=ConnectionPool.check_connection,
            name="notifier",
        )
        self._pool.open(wait=True, timeout=30)
        self._leases: list[PostgresLease] = []
        super().__init__()

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _for_update(self) -> str:
        return " FOR UPDATE"

    def _prefer_latency(self, cur: Cursor) -> None:
        # Outcomes are committed one email at a time (sender.py): without waiting for
        # the WAL flush, a commit is a round trip. Committed is committed for every
        # session, so a notifier that dies right after loses nothing; only a crash of
        # PostgreSQL itself may lose the last fraction of a second of outcomes, whose
        # emails are then sent again with the same Message-ID.
        cur.execute("SET LOCAL synchronous_commit = off")

    def _ddl_lock(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"notifier-ddl:{self.schema}",))

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(keys)]

    def _email_columns(self, cur: Cursor) -> set[str]:
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'notifier_emails'",
            (self.schema,),
        )
        return {r[0] for r in cur.fetchall()}

    def _select_state(self, cur: Cursor, keys: list[str]) -> dict[str, Json]:
        if not keys:
            return {}
        cur.execute(f"SELECT key, value FROM {self.state} WHERE key = ANY(%s)", (keys,))
        return {r[0]: json.loads(r[1]) for r in cur.fetchall()}

    # Planning's bulk writes (a replay writes ~10,000 email rows and state rows a page, a
    # 10,000-row mass invite as many emails) go through COPY into a temporary table of the
    # session, then one INSERT ... SELECT with the same ON CONFLICT clause as row by row:
    # psycopg builds COPY rows in C, while 13 array parameters of 10,000 values cost ~20x
    # more to dump and unnest (bench/README.md, "Store at scale"). ON COMMIT DELETE ROWS
    # empties the temporary table with each planning transaction.

    def _insert_emails(self, cur: Cursor, rows: list[tuple[Any, ...]]) -> None:
        assert isinstance(cur, psycopg.Cursor)
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS notifier_emails_incoming ("
            "message_key TEXT, event_id TEXT, position BIGINT, kind TEXT, recipient TEXT, "
            "locale TEXT, tenant_id TEXT, context TEXT, invitation_id TEXT, "
            "link_generation INTEGER, temp_password_id TEXT, planned_at DOUBLE PRECISION, "
            "status TEXT, event_at DOUBLE PRECISION, traceparent TEXT) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY notifier_emails_incoming ({PLANNED_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {self.emails} ({PLANNED_COLUMNS}) SELECT {PLANNED_COLUMNS} "
            "FROM notifier_emails_incoming ON CONFLICT (message_key) DO NOTHING"
        )

    def _put_state(self, cur: Cursor, rows: list[tuple[str, str]]) -> None:
        assert isinstance(cur, psycopg.Cursor)
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS notifier_state_incoming "
            "(key TEXT, value TEXT) ON COMMIT DELETE ROWS"
        )
        with cur.copy("COPY notifier_state_incoming (key, value) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {self.state} (key, value) SELECT key, value "
            "FROM notifier_state_incoming ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

    def _record_sent(self, cur: Cursor, sent: list[tuple[str, float, str, int]]) -> None:
        # One statement, not one per email (a group commit holds several).
        subjects, moments, keys, attempts = (list(c) for c in zip(*sent, strict=True))
        cur.execute(
            f"UPDATE {self.emails} AS e SET status = '{SENT}', subject = v.subject, "
            "sent_at = v.at, last_error = NULL FROM unnest(%s::text[], %s::float8[], "
            "%s::text[], %s::int[]) AS v(subject, at, key, attempt) "
            f"WHERE e.message_key = v.key AND e.status = '{SENDING}' "
            "AND e.attempts = v.attempt",
            (subjects, moments, keys, attempts),
        )

    def _skip_superseded(self, cur: Cursor, superseded: dict[UUID, int]) -> None:
        cur.execute(
            f"UPDATE {self.emails} AS e SET status = %s, last_error = %s "
            "FROM unnest(%s::text[], %s::bigint[]) AS s(invitation_id, position) "
            "WHERE e.invitation_id = s.invitation_id AND e.position < s.position "
            "AND e.status = %s AND e.kind = ANY(%s)",
            (
                SKIPPED,
                SUPERSEDED,
                [str(i) for i in superseded],
                list(superseded.values()),
                PENDING,
                sorted(map(str, INVITATION_KINDS)),
            ),
        )

    def _claim(self, cur: Cursor, limit: int, now: float) -> list[Sequence[Any]]:
        cur.execute(
            f"UPDATE {self.emails} SET status = %s, attempts = attempts + 1 "
            f"WHERE message_key IN (SELECT message_key FROM {self.emails} "
            "WHERE status = %s AND next_attempt_at <= %s ORDER BY position LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) RETURNING {EMAIL_COLUMNS}",
            (SENDING, PENDING, now, limit),
        )
        return list(cur.fetchall())

    def create_tables(self) -> None:
        super().create_tables()
        with self.transaction() as cur:
            self._ddl_lock(cur)
            create_leader_table(cur, self.table(LEADER_TABLE))

    def lease(self, *, holds_for: float) -> PostgresLease:
        """A lease on a connection of its own, closed with the ledger."""
        lease = PostgresLease(self._conninfo, self.schema, holds_for=holds_for)
        self._leases.append(lease)
        return lease

    def close(self) -> None:
        for lease in self._leases:
            lease.close()
        self._pool.close()
