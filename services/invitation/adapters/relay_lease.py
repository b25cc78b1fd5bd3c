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
- whoever takes the lock waits `takeover_grace` (> `valid_for`) before publishing.

A former leader's lock was gone before the new holder got it, so its last confirmation
started before that too, and it stops publishing within `valid_for` of it: before the
new holder's grace runs out. The price is the grace: after a database restart events
wait for it (about 2 s by default) on top of the reconnection.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import psycopg

from shared.database import postgres_conninfo

log = logging.getLogger(__name__)

# libpq: give up a connection attempt, or a connection whose peer stopped answering,
# within seconds rather than TCP's minutes, so a confirmation fails instead of hanging.
CONNECT_TIMEOUT = 2
TCP_USER_TIMEOUT_MS = 3000


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


class RelayLease(Protocol):
    """Blocking calls (the relay runs them in a worker thread)."""

    timings: LeaseTimings

    def try_acquire(self) -> bool:
        """Take the lease (True) or find it held elsewhere (False); raises when the
        database cannot be reached."""
        ...

    def confirm(self) -> bool:
        """Still held (True), or lost with its connection (False)."""
        ...

    def release(self) -> None: ...


class SoleRelay:
    timings = UNFENCED

    def try_acquire(self) -> bool:
        return True

    def confirm(self) -> bool:
        return True

    def release(self) -> None:
        return None


class PostgresRelayLease:
    def __init__(self, database_url: str, timings: LeaseTimings | None = None) -> None:
        self.timings = timings or LeaseTimings()
        self._conninfo = postgres_conninfo(database_url)
        schema = parse_qs(urlsplit(database_url).query).get("schema", ["public"])[0]
        self._key = f"invitation-relay:{schema}"
        # One connection for the standby's tries and then the leader's lock, so a
        # standby costs one session, not one per try.
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False
        # The confirming timer and a release may run in two worker threads at once; a
        # libpq connection must never be used by both.
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._held:
                return True
            conn = self._connection()
            try:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,)
                ).fetchone()
            except psycopg.Error:
                self._close()
                raise
            self._held = bool(row is not None and row[0])
            return self._held

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
            self._close()

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
