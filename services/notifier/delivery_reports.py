"""Telling the invitation service what became of the emails it must know about.

- Once an automatic password email is `sent`, `record_temp_password_delivered` is
  published so the invitation service destroys the sealed copy (rule 13); once an
  invitation email without a password (linked, manual) is `sent`,
  `record_invitation_email_sent`, so that the invitation's state and the mass-invite
  report say it was (rule 10).
- Once an email has `failed` (refused for good, or out of attempts),
  `record_notification_failed` is published so it becomes a `NotificationFailed` event
  (rule 35): shown with the invitation, and told to the administrators. Every kind of
  email is reported, the administrators' own notices too; planning decides who hears of
  it, and never answers a failed notice to administrators with another one (no loop).

Each row is then marked reported. Unreported rows (broker or database away, or a crash
in between) are published again: the command ids are derived from what they report, so
repeats are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol
from uuid import UUID

from services.notifier.adapters.ledger import EmailLedger, FailedEmail
from services.notifier.metrics import Metrics
from shared.event_loop import wait_event
from shared.retry import RetryPolicy

log = logging.getLogger(__name__)

# Without a policy from the settings: the delays this loop always had.
_REPORTS_RETRY = RetryPolicy(initial_delay=1.0, max_delay=30.0)


class DeliveryRecorder(Protocol):
    async def record_temp_password_delivered(self, email: str, temp_password_id: UUID) -> None: ...

    async def record_invitation_email_sent(
        self, tenant_id: str, invitation_id: UUID, link_generation: int
    ) -> None: ...

    async def record_notification_failed(self, failure: FailedEmail) -> None: ...


class DeliveryReports:
    """Reports delivered passwords (rule 13) and failed emails (rule 35)."""

    def __init__(
        self,
        ledger: EmailLedger,
        recorder: DeliveryRecorder,
        *,
        metrics: Metrics | None = None,
        poll_interval: float = 5.0,
        batch: int = 500,
        policy: RetryPolicy = _REPORTS_RETRY,
    ) -> None:
        self._ledger = ledger
        self._policy = policy
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
        """Publish the command for every unreported outcome; how many."""
        return await self._report_deliveries() + await self._report_failures()

    async def _report_deliveries(self) -> int:
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

    async def _report_failures(self) -> int:
        total = 0
        while True:
            failures = await asyncio.to_thread(self._ledger.unreported_failures, self._batch)
            if not failures:
                return total
            told = [f for f in failures if f.tenant_id is not None]
            for failure in failures:
                if failure.tenant_id is None:  # no email is planned without one today
                    log.error("failed email %s has no tenant: not reported", failure.key)
            await asyncio.gather(*(self._recorder.record_notification_failed(f) for f in told))
            await asyncio.to_thread(self._ledger.mark_delivery_recorded, [f.key for f in failures])
            total += len(failures)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            # Broker or database away: the rows stay unreported and are tried again with
            # the one retry policy, whose back-off starts afresh at every pass.
            await self._policy.retrying("reporting email outcomes", log).call(self.report_pending)
            await wait_event(self._wake, self._poll)

    async def stop(self, grace: float = 2.0) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.report_pending(), grace)
