"""Services starting together on a fresh database each create the store's tables."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.invitation.adapters.relay import tracking_recorder
from services.invitation.eventstore import InvitationStore, store_env
from tests.support import temporary_schema

pytestmark = pytest.mark.integration


def open_at_once(env: dict[str, str], processes: int) -> list[str]:
    """`processes` threads open the store (even) or the relay's tracking (odd) together."""
    start = threading.Barrier(processes)

    def open_one(n: int) -> str:
        start.wait()
        if n % 2:
            tracking_recorder(env)
            return "relay tracking"
        InvitationStore(env=env).close()
        return "store"

    with ThreadPoolExecutor(processes) as pool:
        return list(pool.map(open_one, range(processes)))


def test_services_opening_a_fresh_store_at_once_all_start() -> None:
    for _ in range(3):  # a race: several fresh schemas make a false pass unlikely
        with temporary_schema() as url:
            assert open_at_once(store_env(url), 6) == ["store", "relay tracking"] * 3
