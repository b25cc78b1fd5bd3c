"""The notifier's lease on PostgreSQL: a session advisory lock on one connection of its own.

One connection, kept: a standby asks for the lock on it at every poll (no connection
per poll or per wake-up), and the leader confirms on it. PostgreSQL frees the lock when
that session ends, so a leader that died or was cut off is replaced. The table
`notifier_leader` holds who led last and until when it may still be sending (the fence,
leadership.py), written with the database's clock.
"""

# The table name is interpolated into SQL: our own constant and a checked schema name.
# ruff: noqa: S608

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import psycopg

log = logging.getLogger(__name__)

LEADER_TABLE = "notifier_leader"
# A dead peer is noticed within seconds rather than TCP's minutes (libpq options).
_CONNECT: dict[str, Any] = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,  # ms: unacknowledged writes fail after this
}


def create_leader_table(cur: Any, table: str) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, "
        "fence_until TIMESTAMPTZ NOT NULL)"
    )


class PostgresLease:
    def __init__(self, conninfo: str, schema: str, *, holds_for: float) -> None:
        self._conninfo = conninfo
        self._name = f"notifier-leader:{schema}"
        self._table = f'"{schema}"."{LEADER_TABLE}"'
        self._holds_for = holds_for
        # This process: a restarted one is another holder (it cannot know what the
        # dead one had in flight).
        self._holder = uuid.uuid4().hex
        self._conn: psycopg.Connection[Any] | None = None
        self._lock_id: tuple[int, int] | None = None  # pg_locks' (classid, objid)
        self._guard = threading.Lock()  # the confirm and a release may overlap

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            self._conn = psycopg.connect(self._conninfo, autocommit=True, **_CONNECT)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # the session ends: PostgreSQL frees a lock it held

    def acquire(self) -> float | None:
        with self._guard:
            try:
                return self._acquire()
            except psycopg.Error:
                self._drop()
                raise

    def _acquire(self) -> float | None:
        conn = self._connection()
        row = conn.execute(
            "SELECT pg_try_advisory_lock(k), k FROM (SELECT hashtext(%s)::bigint AS k) AS s",
            (self._name,),
        ).fetchone()
        if row is None or not row[0]:
            return None
        key = int(row[1])
        self._lock_id = ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
        with conn.transaction():
            last = conn.execute(
                f"SELECT holder, extract(epoch FROM fence_until - now()) FROM {self._table} "
                "WHERE name = %s FOR UPDATE",
                (self._name,),
            ).fetchone()
            conn.execute(
                f"INSERT INTO {self._table} (name, holder, fence_until) "
                "VALUES (%s, %s, now() + make_interval(secs => %s)) ON CONFLICT (name) "
                "DO UPDATE SET holder = excluded.holder, fence_until = excluded.fence_until",
                (self._name, self._holder, self._holds_for),
            )
        if last is None or last[0] == self._holder:
            return 0.0
        return max(0.0, float(last[1]))

    def confirm(self) -> bool:
        with self._guard:
            if self._conn is None or self._lock_id is None:
                return False
            try:
                cur = self._conn.execute(
                    f"UPDATE {self._table} SET fence_until = now() + make_interval(secs => %s) "
                    "WHERE name = %s AND holder = %s AND EXISTS (SELECT 1 FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
                    "AND classid = %s::bigint::oid AND objid = %s::bigint::oid "
                    "AND objsubid = 1)",
                    (self._holds_for, self._name, self._holder, *self._lock_id),
                )
            except psycopg.Error as error:
                log.warning("could not confirm the notifier lease: %s", error)
                self._drop()
                return False
            return cur.rowcount == 1

    def release(self, *, stopped_sending: bool) -> None:
        with self._guard:
            if self._conn is None or self._lock_id is None:
                return
            self._lock_id = None
            try:
                if stopped_sending:
                    self._conn.execute(
                        f"UPDATE {self._table} SET fence_until = now() "
                        "WHERE name = %s AND holder = %s",
                        (self._name, self._holder),
                    )
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            except psycopg.Error:
                self._drop()

    def close(self) -> None:
        with self._guard:
            self._lock_id = None
            self._drop()
