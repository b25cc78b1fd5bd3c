"""Which invitation instance relays: one at a time, the others standing by, fenced.

Two relays over one store would both publish every event. Consumers dedupe on the
event id, so a duplicate is tolerated, but two leaders at once are not (the
`invitations_relay_leading` gauges would sum to 2, and every event would go out twice).
On PostgreSQL the relay takes a session advisory lock, held by one connection of its own
and freed by PostgreSQL when that connection or the process dies. SQLite is embedded:
one process owns the file, so its relay always leads, unfenced.

A lock alone does not fence: after a database restart the leader's session is gone, a
standby takes the lock at once, and the old leader finds out only when it next looks.
So leadership is also bounded in time (LeaseTimings, enforced by the relay):

- the leader confirms its lock on its own timer (`confirm_every`) and publishes only
  while its last confirmation *started* less than `valid_for` ago;
- a new holder waits `takeover_grace` (> `valid_for`) before publishing, unless the
  holder record below shows that nobody else can still be publishing.

A former leader's lock was gone before the new holder got it, so its last confirmation
started before that too, and it stops publishing within `valid_for` of it: before the
new holder's grace runs out.

The holder record (table `relay_leader` in the store's schema: the last holder's id
and whether it stopped cleanly) spares the grace where it would only wait for nobody:
after a database restart the leader usually takes its own lease back, and a rolling
restart hands it from a leader that has stopped. Each lease object is one holder (a
random id). Taking the lock, it reads the record and writes itself as holder in one
transaction, in the session that holds the lock, before `try_acquire` returns; if that
fails, it lets the lock go and raises. So every holder (of this version) is on the
record before it can publish, and the record changes only under the lock. Then:

- *the last holder was this very lease*: nobody else held the lock since our own last
  take (they would be on the record). The relay calls `try_acquire` only once its own
  publishing has ended (it releases before trying again, and a section's publishes are
  all finished or cancelled by then), so only the holders before that take remain, and
  we still owe them what is left of the grace that take owed (usually nothing: the
  database restart cut a tenure that had relayed for a while). The grace is counted on
  this process's monotonic clock from the moment the lock was taken; a record write
  that failed may have been committed anyway, so it counts as a take owing the grace.
- *the last holder stopped cleanly*: `release` writes `stopped` only in the session
  still holding the lock (a query answered there proves it alive, so the lock is still
  held), after the relay stopped publishing, and only once its own grace had run out
  (no earlier holder can still be publishing either). Nobody publishes: no grace.
- *another holder that did not stop cleanly*, or *no record* (a first start, or only
  instances older than the record held the lock so far): the whole grace.

Its limit: an instance of a version older than the record takes the lock without
writing it. While such instances run beside this version (during a rolling upgrade from
it), a takeover by one of them is invisible: if it then loses the lock to a database
restart, the next holder of this version may trust a record older than that takeover
and publish alongside it for up to `valid_for` (events twice, which consumers dedupe).
Once no older instance runs, the argument above holds.

`try_acquire` answers `None` (held elsewhere) or a `Taken`: the seconds to wait before
the first publish and who held the lease last. A bare `float | None` would do for the
fence; the reason is what lets the relay's log say why it waits or that it relays now.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

from shared.database import postgres_conninfo

log = logging.getLogger(__name__)

# libpq: give up a connection attempt, or a connection whose peer stopped answering,
# within seconds rather than TCP's minutes, so a confirmation fails instead of hanging.
CONNECT_TIMEOUT = 2
TCP_USER_TIMEOUT_MS = 3000
HOLDER_TABLE = "relay_leader"


@dataclass(frozen=True)
class LeaseTimings:
    """Seconds (settings RELAY_STANDBY_POLL, RELAY_LEASE_CONFIRM_EVERY, ...)."""

    standby_poll: float = 1.0
    confirm_every: float = 0.25
    valid_for: float = 0.75
    takeover_grace: float = 1.0
    # False only for the sole relay (SQLite): nobody else can lead, so no grace and a
    # confirmation that never goes stale.
    fenced: bool = True

    def __post_init__(self) -> None:
        if self.fenced and not 0 < self.confirm_every < self.valid_for < self.takeover_grace:
            raise ValueError(
                "relay lease timings need 0 < confirm_every < valid_for < takeover_grace "
                f"(got {self.confirm_every}, {self.valid_for}, {self.takeover_grace})"
            )


UNFENCED = LeaseTimings(confirm_every=3600.0, valid_for=math.inf, takeover_grace=0.0, fenced=False)


class LastHolder(enum.Enum):
    """Who held the lease before this take, as the holder record says (the values are
    for the log)."""

    THIS_INSTANCE = "this instance held it last"
    STOPPED = "its last holder stopped and let it go"
    ANOTHER = "another instance held it and may still be publishing"
    UNKNOWN = "no record of its last holder"
    NOBODY_ELSE = "the only relay"


@dataclass(frozen=True)
class Taken:
    """The lease is ours: publish after `grace` seconds (0: at once)."""

    grace: float
    last_holder: LastHolder


class RelayLease(Protocol):
    """Blocking calls (the relay runs them in a worker thread)."""

    timings: LeaseTimings

    def try_acquire(self) -> Taken | None:
        """Take the lease, or find it held elsewhere (None); raises when the database
        cannot be reached. Called only while this instance does not publish."""
        ...

    def confirm(self) -> bool:
        """Still held (True), or lost with its connection (False)."""
        ...

    def release(self) -> None:
        """Let the lease go; called once this instance has stopped publishing."""
        ...


class SoleRelay:
    timings = UNFENCED

    def try_acquire(self) -> Taken:
        return Taken(0.0, LastHolder.NOBODY_ELSE)

    def confirm(self) -> bool:
        return True

    def release(self) -> None:
        return None


class PostgresRelayLease:
    def __init__(
        self,
        database_url: str,
        timings: LeaseTimings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timings = timings or LeaseTimings()
        self._conninfo = postgres_conninfo(database_url)
        schema = parse_qs(urlsplit(database_url).query).get("schema", ["public"])[0]
        self._key = f"invitation-relay:{schema}"
        self._table = sql.Identifier(schema, HOLDER_TABLE)
        # This lease object: a restarted process is another holder (it cannot know
        # what the one before it had in flight).
        self._holder = uuid.uuid4().hex
        self._clock = clock
        # From when no holder before ours can still be publishing (on `clock`): the end
        # of the grace owed at our last take. Kept across our own tenures.
        self._clear_from = math.inf
        # One connection for the standby's tries and then the leader's lock, so a
        # standby costs one session, not one per try.
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False
        # The confirming timer and a release may run in two worker threads at once; a
        # libpq connection must never be used by both.
        self._lock = threading.Lock()

    def try_acquire(self) -> Taken | None:
        with self._lock:
            if self._held:
                return self._taken(LastHolder.THIS_INSTANCE)
            conn = self._connection()
            try:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,)
                ).fetchone()
                if row is None or not row[0]:
                    return None
                # The whole grace until the record says better. A write that fails may
                # still have been committed (the answer lost): our name on the record
                # then stands for this take, which owes every former holder the grace.
                owed, self._clear_from = (
                    self._clear_from,
                    self._clock() + self.timings.takeover_grace,
                )
                last = self._take_record(conn)
            except Exception:
                self._close()  # frees the lock, if we took it
                raise
            self._held = True
            if last is LastHolder.STOPPED:
                self._clear_from = self._clock()
            elif last is LastHolder.THIS_INSTANCE:
                # Nobody took it since our last take: what that take owed, we still owe.
                self._clear_from = owed
            return self._taken(last)

    def _taken(self, last: LastHolder) -> Taken:
        return Taken(max(0.0, self._clear_from - self._clock()), last)

    def _take_record(self, conn: psycopg.Connection[tuple[object, ...]]) -> LastHolder:
        """Read who held the lease last and put ourselves on the record, under the lock."""
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, "
                    "holder TEXT NOT NULL, stopped BOOLEAN NOT NULL)"
                ).format(self._table)
            )
            row = conn.execute(
                sql.SQL("SELECT holder, stopped FROM {} WHERE name = %s").format(self._table),
                (self._key,),
            ).fetchone()
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, holder, stopped) VALUES (%s, %s, false) "
                    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, stopped = false"
                ).format(self._table),
                (self._key, self._holder),
            )
        if row is None:
            return LastHolder.UNKNOWN
        if row[0] == self._holder:
            return LastHolder.THIS_INSTANCE
        return LastHolder.STOPPED if row[1] else LastHolder.ANOTHER

    def confirm(self) -> bool:
        with self._lock:
            if not self._held or self._conn is None:
                return False
            try:
                # The session is alive, so its session-level lock is still held: only
                # the end of the session (or our own unlock) frees it.
                self._conn.execute("SELECT 1")
            except psycopg.Error as error:
                log.warning("lost the relay lease with its connection (%s)", error)
                self._close()
                return False
            return True

    def release(self) -> None:
        with self._lock:
            if self._held and self._conn is not None and self._clock() >= self._clear_from:
                self._record_stopped(self._conn)
            self._close()

    def _record_stopped(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        """Say, in the session that still holds the lock, that we stopped publishing
        (committed before the session ends and frees it for the next holder)."""
        try:
            conn.execute(
                sql.SQL("UPDATE {} SET stopped = true WHERE name = %s AND holder = %s").format(
                    self._table
                ),
                (self._key, self._holder),
            )
        except psycopg.Error as error:
            # The session died with the lock: the next holder waits the grace.
            log.info("could not record the relay lease as let go (%s)", error)

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                tcp_user_timeout=TCP_USER_TIMEOUT_MS,
                keepalives=1,
                keepalives_idle=2,
                keepalives_interval=1,
                keepalives_count=2,
            )
        return self._conn

    def _close(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            conn.close()


def relay_lease(database_url: str, timings: LeaseTimings | None = None) -> RelayLease:
    if urlsplit(database_url).scheme in ("postgresql", "postgres"):
        return PostgresRelayLease(database_url, timings)
    return SoleRelay()
