"""Temporary passwords and their slow hashes, made ahead of need on a thread pool."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from shared.secrets import (
    TempPasswordHasher,
    generate_temp_password,
)


class PasswordFactory:
    """Temporary passwords with their slow hashes, computed on a small thread pool.

    argon2 releases the GIL, so a batch's hashes use every core. `prepare` only queues
    them: the caller goes on deciding the batch while they are computed, and `take`
    waits for the next one (a 10,000-row mass invite spends ~11 CPU seconds hashing at
    the default cost, more than everything else together).
    """

    def __init__(self, hasher: TempPasswordHasher, workers: int = 2) -> None:
        self._hasher = hasher
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._ready: deque[Future[tuple[str, str]]] = deque()

    def _make(self) -> tuple[str, str]:
        password = generate_temp_password()
        return password, self._hasher.hash(password)

    def prepare(self, count: int) -> None:
        """Have `count` passwords queued or ready."""
        self.queue(count - len(self._ready))

    def queue(self, count: int = 1) -> None:
        """Start `count` more (a mass invite asks as it learns its needs)."""
        for _ in range(count):
            self._ready.append(self._pool.submit(self._make))

    def take(self) -> tuple[str, str]:
        return self._ready.popleft().result() if self._ready else self._make()

    def discard_prepared(self) -> None:
        for future in self._ready:
            future.cancel()
        self._ready.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
