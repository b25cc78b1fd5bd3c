"""The notifier's lease on a real PostgreSQL: a leader deposed by the loss of its session
says, once it has stopped sending, that the new leader need not wait out its fence."""

from __future__ import annotations

import psycopg
import pytest

from services.notifier.adapters.ledger import PostgresLedger, open_ledger
from tests.support import POSTGRES, temporary_schema

pytestmark = pytest.mark.integration

HOLDS_FOR = 30.0  # far longer than the test: a wait that ends early was cut short


def end_lease_session(schema: str) -> None:
    """Terminate the session holding the schema's lease, as a database restart would."""
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks, (SELECT hashtext(%s)::bigint AS k) AS s "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid = ((k >> 32) & 4294967295)::oid AND objid = (k & 4294967295)::oid",
            (f"notifier-leader:{schema}",),
        ).fetchone()
        assert row is not None, "nobody holds the lease"
        # Waits (up to 5 s) until the session has ended and its lock is free.
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (row[0],))


def test_a_deposed_leader_that_stopped_sending_ends_the_new_leaders_wait() -> None:
    with temporary_schema("lease") as url:
        ledger = open_ledger(url)
        assert isinstance(ledger, PostgresLedger)
        try:
            old, new = ledger.lease(holds_for=HOLDS_FOR), ledger.lease(holds_for=HOLDS_FOR)
            assert old.acquire() == 0.0  # nobody led before
            assert new.acquire() is None  # standing by

            end_lease_session(ledger.schema)
            wait = new.acquire()
            # The old leader, alive but unaware, may still be sending: its fence holds.
            assert wait is not None and wait > 0
            assert new.fence_left() > 0

            old.release(stopped_sending=True)  # on a new session: its own was ended
            assert new.fence_left() == 0.0
            assert new.confirm()  # the new leader's own lease is untouched
        finally:
            ledger.close()


def test_a_leader_table_made_before_the_previous_holder_was_kept_gets_its_columns() -> None:
    with temporary_schema("lease") as url:
        schema = url.rpartition("schema=")[2]
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(
                f'CREATE TABLE "{schema}"."notifier_leader" (name TEXT PRIMARY KEY, '
                "holder TEXT NOT NULL, fence_until TIMESTAMPTZ NOT NULL)"
            )
        ledger = open_ledger(url)
        assert isinstance(ledger, PostgresLedger)
        try:
            first, second = ledger.lease(holds_for=HOLDS_FOR), ledger.lease(holds_for=HOLDS_FOR)
            assert first.acquire() == 0.0
            first.release(stopped_sending=True)
            assert second.acquire() == 0.0  # the last leader stopped cleanly
            assert second.fence_left() == 0.0
        finally:
            ledger.close()
