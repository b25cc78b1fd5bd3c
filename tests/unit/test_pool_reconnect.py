"""A psycopg pool tries to replace a lost connection at least every
DATABASE_RECONNECT_MAX_DELAY, not ever more rarely (its own back-off doubles without a
cap: 1, 2, 4, 8, 16 s...)."""

from __future__ import annotations

import psycopg_pool.base
import psycopg_pool.pool
import pytest

from shared.database import cap_pool_reconnect_delay


@pytest.fixture(autouse=True)
def restore_the_pool_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cap is process-wide: put the library's own class back after each test.
    monkeypatch.setattr(
        psycopg_pool.pool, "AttemptWithBackoff", psycopg_pool.pool.AttemptWithBackoff
    )


def delays(tries: int, attempts: type[psycopg_pool.base.AttemptWithBackoff]) -> list[float]:
    attempt = attempts(timeout=300)
    seen = []
    for second in range(tries):
        attempt.update_delay(now=float(second))
        seen.append(attempt.delay)
    return seen


def test_the_library_alone_waits_longer_after_each_failed_try() -> None:
    # The library's own class (a service run in-process by an earlier test may have
    # capped the pool module's already).
    assert delays(6, psycopg_pool.base.AttemptWithBackoff)[-1] > 16


def test_capped_the_pool_tries_again_at_least_every_cap() -> None:
    cap_pool_reconnect_delay(1.5)
    seen = delays(12, psycopg_pool.pool.AttemptWithBackoff)  # what the pools build
    assert max(seen) == pytest.approx(1.5)
    assert seen == sorted(seen)  # still a back-off


def test_capped_the_first_tries_come_soon_so_dead_idle_connections_clear_fast() -> None:
    cap_pool_reconnect_delay(0.25)
    seen = delays(6, psycopg_pool.pool.AttemptWithBackoff)
    # Four dead idle connections found in a row wait the first three delays in all.
    assert sum(seen[:3]) < 0.25
    assert seen[0] > 0  # never a busy loop
