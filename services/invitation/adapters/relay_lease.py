"""Which invitation instance relays: one at a time, the others standing by.

Two relays over one store would both publish every event. That is safe (consumers
dedupe on the event id) but doubles the broker's work, so on PostgreSQL the relay first
takes a session advisory lock, held by a connection of its own for as long as it relays
and freed by PostgreSQL when that connection or the process dies. SQLite is embedded:
one process owns the file, so its relay always leads.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import psycopg

from shared.database import postgres_conninfo

log = logging.getLogger(__name__)


class RelayLease(Protocol):
    def acquire(self) -> bool:
        """Lead (True) or stand by (False); True again while the lease is still held."""
        ...

    def release(self) -> None: ...


class SoleRelay:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


class PostgresRelayLease:
    def __init__(self, database_url: str, *, recheck_every: float = 1.0) -> None:
        self._conninfo = postgres_conninfo(database_url)
        schema = parse_qs(urlsplit(database_url).query).get("schema", ["public"])[0]
        self._key = f"invitation-relay:{schema}"
        self._recheck_every = recheck_every
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._checked = 0.0

    def acquire(self) -> bool:
        if self._conn is not None:
            # A connection PostgreSQL dropped (a restart) took the lock with it: look,
            # at most once a second, since this runs before every relayed section.
            if time.monotonic() - self._checked < self._recheck_every:
                return True
            try:
                self._conn.execute("SELECT 1")
                self._checked = time.monotonic()
                return True
            except psycopg.Error:
                log.warning("lost the relay lease's connection; taking the lease again")
                self.release()
        conn = psycopg.connect(self._conninfo, autocommit=True)
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,)).fetchone()
        if row is None or not row[0]:
            conn.close()
            return False
        self._conn, self._checked = conn, time.monotonic()
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def relay_lease(database_url: str) -> RelayLease:
    if urlsplit(database_url).scheme in ("postgresql", "postgres"):
        return PostgresRelayLease(database_url)
    return SoleRelay()
