"""The email ledger in an SQLite file: one process, one connection (tests, a laptop)."""

# Table names are interpolated into SQL: they are our own constants, never input.
# Values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from services.notifier.adapters.ledger.common import SUPERSEDED, EmailLedger
from services.notifier.adapters.ledger.rows import EMAIL_COLUMNS, Cursor, Json
from services.notifier.domain.delivery import PENDING, SENDING, SKIPPED
from services.notifier.domain.planning import INVITATION_KINDS


class SQLiteLedger(EmailLedger):
    """One connection, serialised by a lock; BEGIN IMMEDIATE takes the file's write lock."""

    placeholder = "?"

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(
            path, timeout=15.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        super().__init__()

    def table(self, name: str) -> str:
        return name

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' * len(keys))})", list(keys)

    def _email_columns(self, cur: Cursor) -> set[str]:
        cur.execute(f"PRAGMA table_info({self.emails})")
        return {r[1] for r in cur.fetchall()}

    def _select_state(self, cur: Cursor, keys: list[str]) -> dict[str, Json]:
        found: dict[str, Json] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            clause, params = self._keys_clause("key", chunk)
            cur.execute(f"SELECT key, value FROM {self.state} WHERE {clause}", params)
            found.update({r[0]: json.loads(r[1]) for r in cur.fetchall()})
        return found

    def _insert_emails(self, cur: Cursor, rows: list[tuple[Any, ...]]) -> None:
        cur.executemany(
            f"INSERT INTO {self.emails} (message_key, event_id, position, kind, recipient, "
            "locale, tenant_id, context, invitation_id, link_generation, temp_password_id, "
            "planned_at, status, event_at, traceparent) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (message_key) DO NOTHING",
            rows,
        )

    def _skip_superseded(self, cur: Cursor, superseded: dict[UUID, int]) -> None:
        kinds, kind_params = self._keys_clause("kind", sorted(map(str, INVITATION_KINDS)))
        pairs = [(str(i), p) for i, p in superseded.items()]
        for start in range(0, len(pairs), 500):  # two parameters a pair, under SQLite's cap
            chunk = pairs[start : start + 500]
            values = ", ".join("(?, ?)" for _ in chunk)
            cur.execute(
                f"WITH s (invitation_id, position) AS (VALUES {values}) "
                f"UPDATE {self.emails} SET status = ?, last_error = ? "
                f"WHERE status = ? AND {kinds} AND EXISTS (SELECT 1 FROM s "
                f"WHERE s.invitation_id = {self.emails}.invitation_id "
                f"AND {self.emails}.position < s.position)",
                [*(v for pair in chunk for v in pair), SKIPPED, SUPERSEDED, PENDING, *kind_params],
            )

    def _claim(self, cur: Cursor, limit: int, now: float) -> list[Sequence[Any]]:
        cur.execute(
            f"SELECT {EMAIL_COLUMNS} FROM {self.emails} WHERE status = ? "
            "AND next_attempt_at <= ? ORDER BY position LIMIT ?",
            (PENDING, now, limit),
        )
        rows = cur.fetchall()
        if not rows:
            return []
        clause, params = self._keys_clause("message_key", [r[0] for r in rows])
        cur.execute(
            f"UPDATE {self.emails} SET status = ?, attempts = attempts + 1 WHERE {clause}",
            [SENDING, *params],
        )
        return [(*r[:11], int(r[11]) + 1, *r[12:]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
