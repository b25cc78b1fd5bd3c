"""Which notifier plans and sends: one leader, fenced by time, the others standing by.

The lease is a PostgreSQL session lock (adapters/ledger/lease.py): PostgreSQL frees it
when the leader's session ends, and a standby may then take it. But a leader does not
learn at once that its session ended (a database restart, a cut connection), so the
lease alone would let two notifiers send for a while. The fence closes that gap:

- the leader confirms its lease on its own timer (every third of `ttl`), and may start
  a transfer (DATA, the only step that delivers; or plan) only while its last
  confirmation began less than `ttl` ago; so `ttl` after the last confirmation it
  cannot have started one, and a transfer lasts at most the transfer timeout (the
  envelopes prepared meanwhile deliver nothing: smtp.py);
- each confirmation writes, in the database, until when this leader may still be
  sending (`fence_holds_for`: `ttl` + the transfer timeout + 1 s, from the database's
  clock);
- a standby that takes the lease waits until that moment has passed before it
  reclaims the rows left `sending` and starts; no wait after a leader that stepped down
  cleanly, nor for this very process's own earlier leadership (its sends have ended),
  nor after a leader that it finds dead on this very host (adapters/liveness.py: a
  process that no longer exists sends nothing more than the one email it may have
  been handing over, which is re-sent anyway);
- a deposed leader that is still alive stops sending, records its outcomes, then says
  so in the database (`release`, reconnecting if it must): the new leader, polling
  `fence_left` while it waits, starts then. Only a leader that died or stays cut off
  is waited out in full.

A leader that cannot confirm stops sending and planning at once, records the outcomes
it already has (recording is fenced by claim, so a late write is harmless: ledger
`record`), and stands by again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Fence", "Lease", "SoleLease", "fence_holds_for"]


def fence_holds_for(ttl: float, transfer_timeout: float) -> float:
    """How long after its last confirmation began a leader may still be sending: it
    starts no transfer past `ttl`, and one lasts at most `transfer_timeout`; 1 s for
    the clocks' and the scheduler's slack."""
    return ttl + transfer_timeout + 1.0


class Lease(Protocol):
    """The lock one notifier holds to lead; blocking calls (run them in a thread)."""

    def acquire(self) -> float | None:
        """Take the lease: None while another notifier holds it; else how many seconds to
        wait before sending (until the previous leader's sends are surely over)."""
        ...

    def confirm(self) -> bool:
        """Still held (and this holder's fence pushed on); False once lost."""
        ...

    def fence_left(self) -> float:
        """While held: seconds until the previous holder's fence has passed (0 once it
        said it stopped sending). May raise when the database cannot answer."""
        ...

    def release(self, *, stopped_sending: bool) -> None:
        """Give the lease up. `stopped_sending`: every send of ours has ended, so the
        next leader need not wait for them; said even when the lease was already lost
        (a new leader may be waiting for it)."""
        ...


class SoleLease:
    """An embedded database (SQLite): one process owns the file, so it always leads."""

    def acquire(self) -> float | None:
        return 0.0

    def confirm(self) -> bool:
        return True

    def fence_left(self) -> float:
        return 0.0

    def release(self, *, stopped_sending: bool) -> None:
        return None


class Fence:
    """The leader's own view of its lease: valid for `ttl` after a confirmation began.

    Measured from when the confirmation *began* (the database saw the lock after that),
    on the leader's monotonic clock, so it never outlives what the database granted.
    """

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._confirmed: float | None = None

    def confirmed(self, began: float) -> None:
        if self._confirmed is None or began > self._confirmed:
            self._confirmed = began

    def lift(self) -> None:
        """No longer leading: nothing may be sent."""
        self._confirmed = None

    def remaining(self) -> float:
        """Seconds until this leader must stop starting sends (0: it must stop now)."""
        if self._confirmed is None:
            return 0.0
        return max(0.0, self._confirmed + self.ttl - self._clock())

    def valid(self) -> bool:
        return self.remaining() > 0
