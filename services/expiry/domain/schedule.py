"""The schedule: keys with a fire time, taken in time order at a cost independent of its size.

A binary heap of `(at, key)` entries plus an index `key -> at`. Moving or cancelling a
key only changes the index; the entry it leaves in the heap is stale and is dropped when
it surfaces (lazy invalidation), so no change ever scans the heap. When stale entries
outnumber live ones the heap is rebuilt from the index: memory stays within about twice
the live size, for an amortised O(1) per change. Peeking is O(1), popping O(log n).
"""

from __future__ import annotations

from collections.abc import Hashable, KeysView
from heapq import heapify, heappop, heappush
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Below this many stale entries a rebuild is not worth its O(n).
_COMPACT_SLACK = 1024


class Schedule(Generic[K]):
    """Keys due at POSIX times. Ties are broken by key, so keys must be mutually orderable."""

    __slots__ = ("_at", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, K]] = []
        self._at: dict[K, float] = {}

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, key: K) -> bool:
        return key in self._at

    def get(self, key: K) -> float | None:
        return self._at.get(key)

    def set(self, key: K, at: float) -> None:
        """Schedule `key` at `at`, replacing any earlier time (earlier or later)."""
        if self._at.get(key) == at:
            return  # already there: pushing again would only add a stale twin
        self._at[key] = at
        heappush(self._heap, (at, key))
        self._compact_if_sparse()

    def cancel(self, key: K) -> None:
        if self._at.pop(key, None) is not None:
            self._compact_if_sparse()

    def next_at(self) -> float | None:
        """The earliest live time, dropping the stale entries above it."""
        heap, index = self._heap, self._at
        while heap:
            at, key = heap[0]
            # Identity, not equality: the index holds the very float its live entry holds.
            if index.get(key) is at:
                return at
            heappop(heap)
        return None

    def pop_due(self, now: float, limit: int | None = None) -> list[tuple[K, float]]:
        """Remove and return the keys due at or before `now`, earliest first."""
        heap, index = self._heap, self._at
        due: list[tuple[K, float]] = []
        while heap and heap[0][0] <= now and (limit is None or len(due) < limit):
            at, key = heappop(heap)
            if index.get(key) is at:
                del index[key]
                due.append((key, at))
        return due

    def items(self) -> list[tuple[float, K]]:
        """Every live `(at, key)` in firing order (a copy: for inspection and tests)."""
        return sorted((at, key) for key, at in self._at.items())

    def live_keys(self) -> KeysView[K]:
        """Every live key (a view: do not change the schedule while iterating)."""
        return self._at.keys()

    def due_keys(self, now: float) -> list[K]:
        """The live keys due at or before `now`, without removing them.

        Walks only the part of the heap at or before `now` (a heap's children are never
        earlier than their parent), so it costs what is due, not what is scheduled.
        """
        heap, index = self._heap, self._at
        due: list[K] = []
        pending = [0] if heap else []
        while pending:
            i = pending.pop()
            at, key = heap[i]
            if at > now:
                continue
            if index.get(key) is at:
                due.append(key)
            pending.extend(child for child in (2 * i + 1, 2 * i + 2) if child < len(heap))
        return due

    def heap_size(self) -> int:
        """Live plus stale entries (for tests and metrics)."""
        return len(self._heap)

    def _compact_if_sparse(self) -> None:
        if len(self._heap) > 2 * len(self._at) + _COMPACT_SLACK:
            self._heap = [(at, key) for key, at in self._at.items()]
            heapify(self._heap)
