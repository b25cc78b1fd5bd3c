"""The notifier's lease on a real PostgreSQL: a leader deposed by the loss of its session
says, once it has stopped sending, that the new leader need not wait out its fence; a
leader killed on this host need not be waited out either, one still running must."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from services.notifier.adapters.ledger import PostgresLedger, open_ledger
from services.notifier.adapters.ledger.lease import PostgresLease
from tests.support import POSTGRES, ROOT, temporary_schema

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


LEADER = """
import sys, time
from services.notifier.adapters.ledger import open_ledger
lease = open_ledger(sys.argv[1]).lease(holds_for=float(sys.argv[2]))
while lease.acquire() is None:
    time.sleep(0.05)
print("leading", flush=True)
time.sleep(600)
"""


@contextmanager
def leader_process(url: str) -> Iterator[subprocess.Popen[str]]:
    """Another notifier process of this host that took the lease (waiting out the last
    leader's fence, if any) and keeps running until killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", LEADER, url, str(HOLDS_FOR)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "leading"
        yield child
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def take_over(lease: PostgresLease) -> float:
    """Poll until the lease is ours (the dead session's lock is freed): the wait then."""
    deadline = time.monotonic() + 10
    while (wait := lease.acquire()) is None:
        assert time.monotonic() < deadline, "the lease was never freed"
        time.sleep(0.05)
    return wait


def test_a_leader_killed_on_this_host_is_not_waited_out() -> None:
    with temporary_schema("lease") as url:
        ledger = open_ledger(url)
        assert isinstance(ledger, PostgresLedger)
        try:
            new = ledger.lease(holds_for=HOLDS_FOR)
            with leader_process(url) as old:
                assert new.acquire() is None  # it leads
                os.kill(old.pid, signal.SIGKILL)
                old.wait()
                assert take_over(new) == 0.0  # it is gone: nothing of it is sending
                assert new.fence_left() == 0.0
        finally:
            ledger.close()


def test_a_leader_still_running_on_this_host_is_waited_out() -> None:
    with temporary_schema("lease") as url:
        ledger = open_ledger(url)
        assert isinstance(ledger, PostgresLedger)
        try:
            new = ledger.lease(holds_for=HOLDS_FOR)
            with leader_process(url):
                assert new.acquire() is None
                end_lease_session(ledger.schema)  # alive, but cut off from the database
                assert take_over(new) > 0
        finally:
            ledger.close()


def test_a_dead_leader_that_was_itself_waiting_out_a_fence_leaves_that_fence_owed() -> None:
    with temporary_schema("lease") as url:
        ledger = open_ledger(url)
        assert isinstance(ledger, PostgresLedger)
        try:
            first, new = ledger.lease(holds_for=HOLDS_FOR), ledger.lease(holds_for=HOLDS_FOR)
            assert first.acquire() == 0.0
            end_lease_session(ledger.schema)  # the first leader, alive, is cut off
            with leader_process(url) as second:  # takes over, waiting out the first's fence
                os.kill(second.pid, signal.SIGKILL)
                second.wait()
                # The second is dead, but the first may still be sending.
                assert take_over(new) > 0
                assert new.fence_left() > 0
        finally:
            ledger.close()


def test_a_leader_that_stops_while_waiting_out_a_fence_leaves_that_fence_owed() -> None:
    with temporary_schema("lease") as url:
        ledger = open_ledger(url)
        assert isinstance(ledger, PostgresLedger)
        try:
            first, second, third = (ledger.lease(holds_for=HOLDS_FOR) for _ in range(3))
            assert first.acquire() == 0.0
            end_lease_session(ledger.schema)  # the first leader, alive, is cut off
            assert take_over(second) > 0
            second.release(stopped_sending=True)  # stopped before it ever sent
            # Its own sends are over, but the first leader's fence still holds.
            assert take_over(third) > 0
            assert third.fence_left() > 0
        finally:
            ledger.close()
