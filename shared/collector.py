"""Python's cyclic garbage collector, paused while a replay rebuilds a consumer's state.

A replay allocates millions of objects that live on (the expiry schedule's deadlines,
the notifier's planning state) and millions that die young (envelopes, rows). None of
them form reference cycles, so reference counting frees what dies; the cyclic collector
only re-scans the survivors, again and again as they grow: a quarter of the expiry
replay's CPU over a million events (bench/README.md, "Store at scale").
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_collector() -> Iterator[None]:
    """No automatic cyclic collection inside; the collector's previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
