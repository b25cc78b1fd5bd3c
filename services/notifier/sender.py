"""Sending: drain the email rows in batches over a few reused SMTP connections.

- A dispatcher claims due rows for the whole engine in one transaction (`pending` ->
  `sending`, committed first: the intent) and queues them. It claims a batch at a time:
  only once at least `batch` of the `max_in_flight` slots are free (or none is taken).
- One worker per SMTP connection renders and sends; connections are reused, and the
  number of workers bounds concurrency. A transient failure reschedules only that email.
- A flusher records outcomes in one transaction per batch (`sent`, retry later,
  `failed`, `skipped`): once `batch` outcomes are in, once no send is left running, or
  `linger` seconds after the first. A slot is freed only when its outcome is recorded.
- Once an email is `sent` or has `failed` for good, `on_report_due` wakes the reports
  (delivery_reports.py) that tell the invitation service: the sealed copy of an emailed
  password is destroyed, an invitation email without one is recorded as sent, a failed
  email becomes `NotificationFailed`.

So a steady stream of emails costs two notifier transactions per batch, not per email,
and while one batch is recorded and the next claimed, the other half of the window keeps
every connection busy.

The at-least-once edge: if the process dies after the SMTP server accepted an email and
before its `sent` was recorded, the row is still `sending`; at start-up it goes back to
`pending` and is sent again with the same Message-ID (duplicates are recognisable).
Since slots are freed only by recording, at most `max_in_flight` emails are ever in that
window at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag

from services.notifier.adapters.composer import Composer
from services.notifier.adapters.ledger import EmailLedger, OutboxEmail
from services.notifier.adapters.report_csv import Attachment
from services.notifier.domain.delivery import (
    Failed,
    Outcome,
    Released,
    Retry,
    RetryPolicy,
    Sent,
    Skipped,
)
from services.notifier.domain.emails import Kind, UndeliverableAddressError
from services.notifier.errors import PermanentMailError, TransientMailError
from services.notifier.metrics import Metrics
from shared.telemetry import SpanKind, child_span

log = logging.getLogger(__name__)

PASSWORD_GONE = "temporary password no longer available (delivered, expired or replaced)"


class Mailer(Protocol):
    async def send(self, message: bytes, recipient: str) -> None: ...

    async def close(self) -> None: ...


class Passwords(Protocol):
    def open_many(
        self, temp_password_ids: Sequence[UUID]
    ) -> Mapping[UUID, str | InvalidTag | None]: ...


class Reports(Protocol):
    def attachment(self, batch_id: str) -> Attachment | None: ...


@dataclass(frozen=True)
class _Claimed:
    """A claimed row and its opened password (None: gone; an error: could not read),
    with its attachments (the report of a finished mass invite)."""

    row: OutboxEmail
    password: str | BaseException | None = field(repr=False)  # never in a log line
    attachments: tuple[Attachment, ...] = ()


class DeliveryEngine:
    def __init__(
        self,
        ledger: EmailLedger,
        composer: Composer,
        passwords: Passwords,
        mailer_factory: Callable[[], Mailer],
        *,
        connections: int = 8,
        policy: RetryPolicy | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 1.0,
        linger: float = 0.05,
        on_report_due: Callable[[], None] = lambda: None,
        reports: Reports | None = None,
    ) -> None:
        self._ledger = ledger
        self._reports = reports
        self._composer = composer
        self._passwords = passwords
        self._mailers = [mailer_factory() for _ in range(connections)]
        self._policy = policy or RetryPolicy()
        self._metrics = metrics or Metrics()
        self._clock = clock
        self._poll = poll_interval
        self._linger = linger
        self._on_report_due = on_report_due
        # Enough to keep every connection busy, small enough to bound the re-send window.
        self.max_in_flight = connections * 4
        # Half the window: one half is sent while the other is recorded and reclaimed.
        self.batch = max(1, self.max_in_flight // 2)
        self._in_flight = 0  # claimed and not yet recorded: the `sending` rows
        self._unfinished = 0  # claimed and without an outcome yet (queued or sending)
        self._more_due = False  # rows may be due beyond the last claim
        self._queue: asyncio.Queue[_Claimed | None] = asyncio.Queue()
        self._outcomes: list[Outcome] = []
        self._wake = asyncio.Event()
        self._flush = asyncio.Event()
        self._stopping = False
        self._closing = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._flusher: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New rows were planned: claim them now rather than at the next poll."""
        self._more_due = True  # and once slots free up, if none is free now
        self._wake.set()

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="notifier-flusher")
        self._workers = [
            asyncio.create_task(self._work(mailer), name=f"notifier-smtp-{i}")
            for i, mailer in enumerate(self._mailers)
        ]
        self._dispatcher = asyncio.create_task(self._dispatch(), name="notifier-dispatcher")

    # -- claiming ------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self.max_in_flight - self._in_flight
            if free < self.batch and self._in_flight > 0:
                # Not a claim per freed slot: recording frees a batch of them, then wakes us.
                await self._sleep(self._poll)
                continue
            self._more_due = False  # a wake-up from now on says otherwise
            try:
                rows = await asyncio.to_thread(self._claim, free)
            except Exception:
                log.exception("could not claim emails; trying again shortly")
                self._more_due = True
                await self._sleep(self._poll)
                continue
            for row in rows:
                self._in_flight += 1
                self._unfinished += 1
                self._queue.put_nowait(row)
            if len(rows) == free:
                self._more_due = True  # there may be more: claim again once slots free
            else:  # nothing else is due now
                await self._sleep(await self._idle_wait())

    def _claim(self, limit: int) -> list[_Claimed]:
        """Claim rows and open their passwords: two queries for the whole batch."""
        rows = self._ledger.claim(limit, self._clock())
        ids = [row.temp_password_id for row in rows if row.temp_password_id is not None]
        opened: Mapping[UUID, str | BaseException | None] = {}
        if ids:
            try:
                opened = self._passwords.open_many(ids)
            except Exception as error:  # the store is unreachable: each row retries
                opened = dict.fromkeys(ids, error)
        return [
            _Claimed(
                row,
                None if row.temp_password_id is None else opened[row.temp_password_id],
                self._attachments(row),
            )
            for row in rows
        ]

    def _attachments(self, row: OutboxEmail) -> tuple[Attachment, ...]:
        """The report CSV of a finished mass invite, read now (in the claiming thread)."""
        if self._reports is None or row.kind != Kind.ADMIN_MASS_INVITE_COMPLETED:
            return ()
        try:
            found = self._reports.attachment(str(row.context["batch_id"]))
        except Exception:  # the email still says how to read the report: send it anyway
            log.exception("could not attach the report of mass invite %s", row.context)
            return ()
        return () if found is None else (found,)

    async def _idle_wait(self) -> float:
        """Until the next retry is due, a wake-up, or the poll period."""
        try:
            due = await asyncio.to_thread(self._ledger.next_due)
        except Exception:
            return self._poll
        if due is None:
            return self._poll
        return min(self._poll, max(0.01, due - self._clock()))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- sending -------------------------------------------------------------------------

    async def _work(self, mailer: Mailer) -> None:
        while True:
            claimed = await self._queue.get()
            if claimed is None:
                return
            outcome = await self._deliver(claimed, mailer)
            self._count(claimed.row, outcome)
            self._done(outcome)

    def _done(self, outcome: Outcome) -> None:
        self._unfinished -= 1
        self._outcomes.append(outcome)
        self._flush.set()

    async def _deliver(self, claimed: _Claimed, mailer: Mailer) -> Outcome:
        row, opened = claimed.row, claimed.password
        password: str | None = None
        if row.temp_password_id is not None:
            if isinstance(opened, InvalidTag):
                log.error("sealed password of %s does not open with this SECRETS_KEY", row.key)
                return Failed(row.key, "sealed password does not open with this key")
            if isinstance(opened, BaseException):  # the store was unreachable: later
                return self._retry(row, f"reading the sealed password: {opened}")
            if opened is None:
                # Never an email with an empty password: the invitee gets the one that
                # replaced it (resend), or the administrators hear that it expired.
                log.warning(
                    "not sending %s to %s: %s",
                    row.kind,
                    row.recipient,
                    PASSWORD_GONE,
                    extra={"tenant_id": row.tenant_id, "position": row.position},
                )
                return Skipped(row.key, PASSWORD_GONE)
            password = opened
        elif row.kind == Kind.INVITATION_AUTOMATIC:
            return Skipped(row.key, "no temporary password id in the event")
        try:
            subject, message = self._composer.compose(
                row, password, self._clock(), claimed.attachments
            )
        except UndeliverableAddressError as error:
            return Failed(row.key, str(error))
        except Exception as error:
            log.exception("could not render %s for %s", row.kind, row.recipient)
            return Failed(row.key, f"render: {type(error).__name__}: {error}")
        finally:
            del password  # from here on the plaintext lives only in the message
        try:
            with child_span("smtp send", row.traceparent, kind=SpanKind.CLIENT):
                await mailer.send(message, row.recipient)
        except TransientMailError as error:
            return self._retry(row, str(error))
        except PermanentMailError as error:
            log.error(
                "SMTP refused %s to %s for good: %s",
                row.kind,
                row.recipient,
                error,
                extra={"tenant_id": row.tenant_id, "position": row.position},
            )
            return Failed(row.key, str(error))
        return Sent(row.key, subject, self._clock(), row.temp_password_id)

    def _retry(self, row: OutboxEmail, error: str) -> Outcome:
        if self._policy.gives_up_after(row.attempts):
            log.error(
                "giving up %s to %s after %d attempts: %s",
                row.kind,
                row.recipient,
                row.attempts,
                error,
            )
            return Failed(row.key, f"gave up after {row.attempts} attempts: {error}")
        delay = self._policy.delay(row.attempts)
        log.info("retrying %s to %s in %.1fs: %s", row.kind, row.recipient, delay, error)
        return Retry(row.key, self._clock() + delay, error)

    def _count(self, row: OutboxEmail, outcome: Outcome) -> None:
        counter = {
            Sent: self._metrics.sent,
            Retry: self._metrics.retried,
            Failed: self._metrics.failed,
            Skipped: self._metrics.skipped,
        }.get(type(outcome))
        if counter is not None:
            counter.labels(kind=row.kind).inc()
        self._metrics.observe_latency(row.kind, row.event_at, outcome)

    # -- recording -----------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush.wait()
            await self._gather_batch()
            self._flush.clear()
            recorded = await self._record_outcomes()
            if self._closing and recorded and not self._outcomes:
                return
            if not recorded:
                await asyncio.sleep(0.5)
                self._flush.set()

    async def _gather_batch(self) -> None:
        """Until a batch of outcomes is in, no send is left running, or `linger` passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._linger
        while len(self._outcomes) < self.batch and self._unfinished > 0 and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._flush.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush.wait(), remaining)

    async def _record_outcomes(self) -> bool:
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return True
        try:
            await asyncio.to_thread(self._ledger.record, batch)
        except Exception:
            log.exception("could not record %d email outcomes; will try again", len(batch))
            self._outcomes = batch + self._outcomes
            return False
        self._in_flight -= len(batch)
        # Slots are free: claim more if the last claim left some due, or a retry's time
        # may now come before the dispatcher's next look.
        if self._more_due or any(isinstance(o, Retry) for o in batch):
            self._wake.set()
        if any(isinstance(o, Sent | Failed) for o in batch):
            self._on_report_due()
        return True

    # -- stopping ------------------------------------------------------------------------

    async def stop(self, grace: float = 2.0) -> None:
        """Stop claiming, let in-flight sends finish (up to `grace`), record everything."""
        self._stopping = True
        self._wake.set()
        if self._dispatcher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._dispatcher), grace)
            except TimeoutError:  # stuck claiming (database away): nothing was queued
                self._dispatcher.cancel()
                await asyncio.gather(self._dispatcher, return_exceptions=True)
        released = 0
        while not self._queue.empty():
            claimed = self._queue.get_nowait()
            if claimed is not None:
                self._done(Released(claimed.row.key))
                released += 1
        for _ in self._workers:
            self._queue.put_nowait(None)
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=grace)
            for task in late:  # its row stays `sending` and is re-sent at the next start
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        abandoned = sum(1 for task in self._workers if task.cancelled())
        # Never cancel the flusher mid-write: its outcomes are what keeps a finished
        # email from being sent again at the next start.
        self._closing = True
        self._flush.set()
        if self._flusher is not None:
            try:
                await asyncio.wait_for(self._flusher, grace)
            except TimeoutError:
                log.error("could not record every outcome before stopping")
        log.info(
            "sender stopped: %d queued email(s) released, %d in-flight send(s) cut off",
            released,
            abandoned,
        )
        for mailer in self._mailers:
            await mailer.close()
