"""What happened to one email, and when a transient failure is tried again.

The life of an email row: `pending` -> `sending` (the intent, recorded before the SMTP
transaction) -> `sent`; or back to `pending` with a later `next_attempt_at` after a
transient failure; or `failed` (permanent, or too many attempts); or `skipped` (nothing
left to send, e.g. the temporary password was already gone); or `replayed` (see below).

Every outcome names the claim it ends (`attempt`: the row's `attempts` once claimed).
The ledger records it only while the row is still in that claim (`sending`, same
attempts), so a late write from a notifier that lost the lead meanwhile (its rows
reclaimed and claimed again by the new leader) changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from uuid import UUID

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
# Implied by history a rebuild re-read, and found without a row: assumed handled then,
# never sent now (`invitations replay notifier`).
REPLAYED = "replayed"
# `last_error` of a row found in `sending` at start-up: the process died mid-send.
INTERRUPTED = "interrupted"
# Jitter only: not security-relevant randomness.
_RANDOM = random.Random()  # noqa: S311


@dataclass(frozen=True)
class Sent:
    key: UUID
    subject: str
    at: float
    # Set for an automatic password email: the invitation service must then shred it.
    temp_password_id: UUID | None = None
    attempt: int = field(kw_only=True)


@dataclass(frozen=True)
class Retry:
    key: UUID
    at: float
    error: str
    attempt: int = field(kw_only=True)


@dataclass(frozen=True)
class Failed:
    key: UUID
    error: str
    attempt: int = field(kw_only=True)


@dataclass(frozen=True)
class Skipped:
    key: UUID
    reason: str
    attempt: int = field(kw_only=True)


@dataclass(frozen=True)
class Released:
    """Claimed but never attempted (shutting down): back to pending, attempt not counted."""

    key: UUID
    attempt: int = field(kw_only=True)


Outcome = Sent | Retry | Failed | Skipped | Released


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 1.0
    max_delay: float = 300.0
    max_attempts: int = 30
    jitter: float = 0.2

    def gives_up_after(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Exponential from `base_delay`, capped, with jitter so retries do not stampede."""
        raw = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        spread = raw * self.jitter
        generator = rng if rng is not None else _RANDOM
        return max(0.0, raw + generator.uniform(-spread, spread))
