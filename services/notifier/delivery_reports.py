"""Telling the invitation service which invitation emails went out (rules 13 and 10).

Once an automatic password email is `sent`, `record_temp_password_delivered` is published
so the invitation service destroys the sealed copy; once an invitation email without a
password (linked, manual) is `sent`, `record_invitation_email_sent`, so that the
invitation's state and the mass-invite report say it was. The row is then marked
reported. Unreported rows (broker or database away, or a crash in between) are published
again: each command id is derived from what it reports, so repeats are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol
from uuid import UUID

from services.notifier.adapters.ledger import EmailLedger
from services.notifier.metrics import Metrics

log = logging.getLogger(__name__)


class DeliveryRecorder(Protocol):
    async def record_temp_password_delivered(self, email: str, temp_password_id: UUID) -> None: ...

    async def record_invitation_email_sent(
        self, tenant_id: str, invitation_id: UUID, link_generation: int
    ) -> None: ...


class DeliveryReports:
    """Reports sent automatic-password emails to the invitation service (rule 13)."""

    def __init__(
        self,
        ledger: EmailLedger,
        recorder: DeliveryRecorder,
        *,
        metrics: Metrics | None = None,
        poll_interval: float = 5.0,
        batch: int = 500,
    ) -> None:
        self._ledger = ledger
        self._recorder = recorder
        self._metrics = metrics or Metrics()
        self._poll = poll_interval
        self._batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier-delivery-reports")

    async def report_pending(self) -> int:
        """Publish the command for every unreported sent invitation email; how many."""
        total = 0
        while True:
            rows = await asyncio.to_thread(self._ledger.unrecorded_deliveries, self._batch)
            if not rows:
                break
            await asyncio.gather(
                *(self._recorder.record_temp_password_delivered(email, tp) for _, email, tp in rows)
            )
            await asyncio.to_thread(self._ledger.mark_delivery_recorded, [k for k, _, _ in rows])
            self._metrics.deliveries_recorded.inc(len(rows))
            total += len(rows)
        while True:
            sent = await asyncio.to_thread(self._ledger.unreported_invitation_emails, self._batch)
            if not sent:
                return total
            await asyncio.gather(
                *(
                    self._recorder.record_invitation_email_sent(tenant_id, invitation_id, link)
                    for _, tenant_id, invitation_id, link in sent
                )
            )
            await asyncio.to_thread(self._ledger.mark_delivery_recorded, [r[0] for r in sent])
            self._metrics.deliveries_recorded.inc(len(sent))
            total += len(sent)

    async def _run(self) -> None:
        delay = 1.0
        while True:
            self._wake.clear()
            try:
                await self.report_pending()
                delay = 1.0
            except Exception as error:
                # Broker or database away: the rows stay unreported and are tried again.
                log.warning("could not report delivered passwords (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def stop(self, grace: float = 2.0) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.report_pending(), grace)
