"""What the sender tells operators: one line per email, and a summary while SMTP is away.

- One INFO line per email sent (an ERROR line per email failed for good), with its kind,
  the recipient's domain (never the local part: an address is personal data) and its
  Message-ID, so an operator can follow one email from the log to the mail server's.
  Never a password, a link or a token: the message body is not at hand here.
- While no SMTP session can be opened, every email waits; a line per retry would be a
  flood, silence would hide the outage. So: one WARNING when it starts, then a summary
  every `every` seconds ("SMTP unreachable for 61s; 840 emails waiting"), and one INFO
  line when an email goes through again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.notifier.adapters.ledger import OutboxEmail

log = logging.getLogger("services.notifier.sender")


def domain_of(address: str) -> str:
    """The part after the last `@` (the whole of a malformed address is never shown)."""
    return address.rpartition("@")[2] or "?"


class DeliveryLog:
    def __init__(self, *, every: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._down_since: float | None = None
        self._last_summary = 0.0

    @staticmethod
    def _extra(row: OutboxEmail) -> dict[str, object]:
        return {"tenant_id": row.tenant_id, "position": row.position}

    def sent(self, row: OutboxEmail, message_id: str) -> None:
        log.info(
            "sent %s to a recipient at %s, Message-ID %s",
            row.kind,
            domain_of(row.recipient),
            message_id,
            extra=self._extra(row),
        )

    def failed(self, row: OutboxEmail, message_id: str, reason: str) -> None:
        log.error(
            "failed for good: %s to a recipient at %s, Message-ID %s: %s",
            row.kind,
            domain_of(row.recipient),
            message_id,
            reason,
            extra=self._extra(row),
        )

    def skipped(self, row: OutboxEmail, message_id: str, reason: str) -> None:
        log.warning(
            "not sending %s to a recipient at %s, Message-ID %s: %s",
            row.kind,
            domain_of(row.recipient),
            message_id,
            reason,
            extra=self._extra(row),
        )

    def retrying(self, row: OutboxEmail, delay: float, error: str) -> None:
        """A transient failure of this one email (a deferred recipient, a lost session)."""
        log.info(
            "retrying %s to a recipient at %s in %.1fs: %s",
            row.kind,
            domain_of(row.recipient),
            delay,
            error,
            extra=self._extra(row),
        )

    # -- the server as a whole ---------------------------------------------------------

    @property
    def unreachable(self) -> bool:
        return self._down_since is not None

    def server_unreachable(self, error: str) -> None:
        if self._down_since is None:
            self._down_since = self._last_summary = self._clock()
            log.warning("SMTP unreachable (%s); emails wait and are retried", error)

    def server_reachable(self) -> None:
        if self._down_since is not None:
            log.info("SMTP reachable again after %.0fs", self._clock() - self._down_since)
            self._down_since = None

    async def summarise_while_unreachable(self, waiting: Callable[[], Awaitable[int]]) -> None:
        """Runs until cancelled: the summary, every `every` seconds of an outage."""
        while True:
            await asyncio.sleep(min(1.0, self.every / 2))
            if self.summary_due():
                self.summarise(await waiting())

    def summary_due(self) -> bool:
        return self._down_since is not None and self._clock() - self._last_summary >= self.every

    def summarise(self, waiting: int) -> None:
        if self._down_since is None:
            return
        now = self._clock()
        self._last_summary = now
        log.warning(
            "SMTP unreachable for %.0fs; %d emails waiting", now - self._down_since, waiting
        )
