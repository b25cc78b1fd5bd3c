"""The notifier's lease on PostgreSQL: a session advisory lock on one connection of its own.

One connection, kept: a standby asks for the lock on it at every poll (no connection
per poll or per wake-up), and the leader confirms on it. PostgreSQL frees the lock when
that session ends, so a leader that died or was cut off is replaced. The table
`notifier_leader` holds who led last and until when it may still be sending (the fence,
leadership.py), written with the database's clock; and, once another process took over,
the holder before it and its fence, which the next leader waits out. A deposed leader
that has stopped sending says so (`release`, on a new connection if its own died) by
moving its fence to now, so the next leader need not wait the whole of it. Each holder
also records which process it is (adapters/liveness.py): a leader restarted on the same
host that finds its predecessor dead does not wait out its fence at all.
"""

# The table name is interpolated into SQL: our own constant and a checked schema name.
# ruff: noqa: S608

from __future__ import annotations

import logging
import math
import threading
import uuid
from typing import Any

import psycopg

from services.notifier.adapters.liveness import Holder, ProcView

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
        "fence_until TIMESTAMPTZ NOT NULL, previous_holder TEXT NULL, "
        "previous_fence_until TIMESTAMPTZ NULL)"
    )
    # A table made before the previous holder, or the holders' processes, were kept.
    cur.execute(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS previous_holder TEXT NULL, "
        "ADD COLUMN IF NOT EXISTS previous_fence_until TIMESTAMPTZ NULL, "
        "ADD COLUMN IF NOT EXISTS holder_process TEXT NULL, "
        "ADD COLUMN IF NOT EXISTS previous_holder_process TEXT NULL, "
        "ADD COLUMN IF NOT EXISTS previous_inherited_until TIMESTAMPTZ NULL"
    )


def _seconds_left(row: Any) -> float:
    """The previous holder's fence, from `extract(epoch FROM previous_fence_until - now())`
    (NULL: none to wait for)."""
    if row is None or row[0] is None:
        return 0.0
    return max(0.0, float(row[0]))


class PostgresLease:
    def __init__(
        self, conninfo: str, schema: str, *, holds_for: float, proc: ProcView | None = None
    ) -> None:
        self._conninfo = conninfo
        self._name = f"notifier-leader:{schema}"
        self._table = f'"{schema}"."{LEADER_TABLE}"'
        self._holds_for = holds_for
        # This process: a restarted one is another holder (it cannot know what the
        # dead one had in flight).
        self._holder = uuid.uuid4().hex
        self._proc = proc or ProcView()
        me = self._proc.this_process()
        self._process = None if me is None else me.text()  # None: not known (no /proc)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock_id: tuple[int, int] | None = None  # pg_locks' (classid, objid)
        # Led since it last said it stopped sending: a release must say so, even
        # on a new connection (the next leader waits for it until then).
        self._unreported = False
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
        if self._unreported:
            # A release that could not reach the database: we are standing by, so
            # none of our sends is running; say it before anything else.
            self._report_stopped(conn)
        row = conn.execute(
            "SELECT pg_try_advisory_lock(k), k FROM (SELECT hashtext(%s)::bigint AS k) AS s",
            (self._name,),
        ).fetchone()
        if row is None or not row[0]:
            return None
        key = int(row[1])
        self._lock_id = ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
        # Taking over from another process: its (holder, fence) moves to previous_*,
        # which we wait out and where it may still say it stopped sending (release).
        # Taking over from ourselves keeps previous_* as they were: our own sends have
        # ended, but the one before us may still be sending (we lost the lease while
        # waiting for it). previous_inherited_until: the fence the previous holder was
        # itself bound by (its own previous one's), still owed if that holder is dead.
        row = conn.execute(
            f"INSERT INTO {self._table} AS t (name, holder, fence_until, holder_process) "
            "VALUES (%s, %s, now() + make_interval(secs => %s), %s) ON CONFLICT (name) "
            "DO UPDATE SET holder = excluded.holder, fence_until = excluded.fence_until, "
            "holder_process = excluded.holder_process, "
            "previous_holder = CASE WHEN t.holder = excluded.holder "
            "THEN t.previous_holder ELSE t.holder END, "
            "previous_fence_until = CASE WHEN t.holder = excluded.holder "
            "THEN t.previous_fence_until ELSE t.fence_until END, "
            "previous_holder_process = CASE WHEN t.holder = excluded.holder "
            "THEN t.previous_holder_process ELSE t.holder_process END, "
            "previous_inherited_until = CASE WHEN t.holder = excluded.holder "
            "THEN t.previous_inherited_until ELSE t.previous_fence_until END "
            "RETURNING extract(epoch FROM previous_fence_until - now()), "
            "previous_holder_process",
            (self._name, self._holder, self._holds_for, self._process),
        ).fetchone()
        self._unreported = True
        left = _seconds_left(row)
        if left <= 0 or row is None:
            return left
        previous = Holder.parse(row[1])
        if previous is None or not self._proc.is_gone(previous):
            return left
        # Said for it, as it would have said itself had it stopped cleanly: its fence
        # ends now, but not before the one it was bound by.
        row = conn.execute(
            f"UPDATE {self._table} SET previous_fence_until = LEAST(previous_fence_until, "
            "GREATEST(now(), previous_inherited_until)) WHERE name = %s AND holder = %s "
            "RETURNING extract(epoch FROM previous_fence_until - now())",
            (self._name, self._holder),
        ).fetchone()
        left = _seconds_left(row)
        log.info(
            "the last notifier leader (pid %d) is no longer running on this host: not "
            "waiting out its fence (%.1fs left of the one it was bound by)",
            previous.pid,
            left,
        )
        return left

    def fence_left(self) -> float:
        with self._guard:
            if self._conn is None or self._lock_id is None:
                raise psycopg.OperationalError("the notifier lease is not held")
            try:
                row = self._conn.execute(
                    "SELECT extract(epoch FROM previous_fence_until - now()) "
                    f"FROM {self._table} WHERE name = %s AND holder = %s",
                    (self._name, self._holder),
                ).fetchone()
            except psycopg.Error:
                self._drop()
                raise
        if row is None:  # another process holds it now: ours is lost, keep waiting
            return math.inf
        return _seconds_left(row)

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
        """Unlock if held; with `stopped_sending`, also say so, on a new connection if
        ours died (a leader deposed by a database restart): our fence ends now, whether
        we are still the holder or already the previous one."""
        with self._guard:
            locked = self._conn if self._lock_id is not None else None
            self._lock_id = None
            if locked is None and not (stopped_sending and self._unreported):
                return
            try:
                if stopped_sending and self._unreported:
                    try:
                        self._report_stopped(self._connection())
                    except psycopg.OperationalError:
                        # Our session may have ended under us (psycopg learns it only
                        # now): once more, on a new one.
                        self._drop()
                        self._report_stopped(self._connection())
                if locked is not None and locked is self._conn:  # not a new session
                    locked.execute("SELECT pg_advisory_unlock_all()")
            except psycopg.Error as error:
                log.warning("could not release the notifier lease: %s", error)
                self._drop()

    def _report_stopped(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute(
                # Never before the fence we were bound by ourselves: the leader
                # before us may still be sending, whatever we did.
                f"UPDATE {self._table} SET fence_until = LEAST(fence_until, "
                "GREATEST(now(), previous_fence_until)) WHERE name = %s AND holder = %s",
                (self._name, self._holder),
            )
            conn.execute(
                f"UPDATE {self._table} "
                "SET previous_fence_until = LEAST(previous_fence_until, "
                "GREATEST(now(), previous_inherited_until)) "
                "WHERE name = %s AND previous_holder = %s",
                (self._name, self._holder),
            )
        self._unreported = False

    def close(self) -> None:
        with self._guard:
            self._lock_id = None
            self._drop()
