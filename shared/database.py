"""PostgreSQL helpers every service and the CLI share: the libpq form of DATABASE_URL, schemas."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import psycopg_pool.pool
from psycopg import sql
from psycopg_pool.base import AttemptWithBackoff


def postgres_conninfo(database_url: str) -> str:
    """The libpq form of a postgresql:// DATABASE_URL, without our `schema` parameter."""
    parts = urlsplit(database_url)
    return parts._replace(query="").geturl()


def ensure_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(postgres_conninfo(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def cap_pool_reconnect_delay(max_delay: float) -> None:
    """Cap the delay between a psycopg pool's tries to replace a lost connection.

    psycopg_pool doubles that delay without a cap (1, 2, 4, 8, 16 s...) until its
    `reconnect_timeout` (5 min), and neither it nor eventsourcing's datastore, which
    builds the pool, takes another policy. So after a PostgreSQL restart of a few
    seconds, the pools' next try came up to 15 s after the database was back, and the
    relay and the notifier waited that long. Capped (DATABASE_RECONNECT_MAX_DELAY, a
    quarter of a second by default: a try is one refused connection, and logs nothing),
    every query waiting on the pool resumes within about that long of the return.

    The same class paces a pool handing out a connection that fails its check: after a
    restart every idle connection is dead, found one at a time, with the first delay
    (1 s) after the second one. A standby that had not used its pools for a while took
    a second or more to get one. The first delay is therefore an eighth of the cap,
    doubling from there: a few more refused connections in the first moments of an
    outage, and dead idle connections cleared in a fraction of a second.

    Process-wide: the pool module builds its tries from this one class. The services'
    skeleton calls it once at start; nothing does at import.
    """

    class CappedAttempt(AttemptWithBackoff):
        INITIAL_DELAY = min(AttemptWithBackoff.INITIAL_DELAY, max_delay / 8)

        def update_delay(self, now: float) -> None:
            super().update_delay(now)
            self.delay = min(self.delay, max_delay)

    psycopg_pool.pool.AttemptWithBackoff = CappedAttempt  # type: ignore[attr-defined]
