"""Sending: drain the email rows over a few reused SMTP connections.

- A dispatcher claims due rows for the whole engine in one transaction (`pending` ->
  `sending`, committed first: the intent) and queues them, a batch at a time: once at
  least `batch` of the `max_in_flight` slots are free (or none is taken).
- One worker per SMTP connection renders an email and prepares its envelope (MAIL,
  RCPT); then it transfers it (DATA) and records its outcome, and at most
  `max_unrecorded` workers (default 1) are in that last step at once. Every other
  outcome (retry later, `failed`, `skipped`) is recorded as soon as it is known, too.
  Recording is a small group commit (recording.py), never a wait for a batch; a slot is
  freed when its outcome is recorded.
- Once an email is `sent` or has `failed` for good, `on_report_due` wakes the reports
  (delivery_reports.py) that tell the invitation service.
- Only a leader sends (leadership.py): `may_send` is checked before each claim, before
  each email and again just before its transfer; an email not sent is released.
- One log line per email, and a summary while SMTP is unreachable (delivery_log.py).

The at-least-once edge: if the process dies after the SMTP server accepted an email and
before its `sent` was committed, the row is still `sending`; the next leader sends it
again with the same Message-ID (duplicates are recognisable). Only transferred emails
whose outcome is not yet committed are in that window: at most `max_unrecorded`, so a
crash sends at most one email twice by default. Claimed rows not yet transferred are
sent by the next leader too, but for the first time. A transfer cut off at its timeout
has the same unknown outcome: never recorded `sent` (nor `failed` for it), it is retried
like any transient failure, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag

from services.notifier.adapters.composer import Composer
from services.notifier.adapters.ledger import EmailLedger, OutboxEmail
from services.notifier.adapters.rendering import message_id
from services.notifier.adapters.report_csv import Attachment
from services.notifier.delivery_log import DeliveryLog
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
from services.notifier.errors import (
    PermanentMailError,
    ServerUnreachableError,
    TransientMailError,
)
from services.notifier.metrics import Metrics
from services.notifier.recording import GroupCommit
from shared.event_loop import wait_event
from shared.telemetry import SpanKind, child_span

log = logging.getLogger(__name__)

PASSWORD_GONE = "temporary password no longer available (delivered, expired or replaced)"


class Mailer(Protocol):
    """One SMTP connection (adapters/smtp.py): an email is prepared, then transferred."""

    async def prepare(self, message: bytes, recipient: str) -> None: ...

    async def transfer(self) -> None: ...

    async def abandon(self) -> None: ...

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
        on_report_due: Callable[[], None] = lambda: None,
        reports: Reports | None = None,
        may_send: Callable[[], bool] = lambda: True,
        delivery_log: DeliveryLog | None = None,
        max_unrecorded: int = 1,
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
        self._on_report_due = on_report_due
        self.may_send = may_send
        self.delivery_log = delivery_log or DeliveryLog()
        # Claimed and not yet recorded (queued, or being sent): enough to keep every
        # connection busy while the next claim runs. Only the one email a worker has
        # sent and not yet recorded could go out twice, not the queued ones.
        self.max_in_flight = connections * 4
        self.batch = max(1, self.max_in_flight // 2)
        self.max_unrecorded = max_unrecorded
        self._reset()

    def _reset(self) -> None:
        self._in_flight = 0  # claimed and not yet recorded: the `sending` rows
        self._more_due = False  # rows may be due beyond the last claim
        self._queue: asyncio.Queue[_Claimed | None] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._stopping = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._summary: asyncio.Task[None] | None = None
        # Emails transferred (DATA) and not yet recorded, at most: what a crash can make
        # the next leader send twice. The envelopes are prepared concurrently meanwhile.
        self._handover = asyncio.Semaphore(self.max_unrecorded)
        self.recorder = GroupCommit(self._ledger.record, on_recorded=self._recorded)

    def wake(self) -> None:
        """New rows were planned: claim them now rather than at the next poll."""
        self._more_due = True  # and once slots free up, if none is free now
        self._wake.set()

    def start(self) -> None:
        """Start sending (again, after a `stop`: a notifier that leads once more)."""
        self._reset()
        self.recorder.start()
        self._workers = [
            asyncio.create_task(self._work(mailer), name=f"notifier-smtp-{i}")
            for i, mailer in enumerate(self._mailers)
        ]
        self._dispatcher = asyncio.create_task(self._dispatch(), name="notifier-dispatcher")
        self._summary = asyncio.create_task(
            self.delivery_log.summarise_while_unreachable(self._waiting),
            name="notifier-smtp-summary",
        )

    # -- claiming ------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self.max_in_flight - self._in_flight
            if free < self.batch and self._in_flight > 0:
                # Not a claim per freed slot: wait until a batch of them is free.
                await self._sleep(self._poll)
                continue
            if not self.may_send():  # not leading (any more): claim nothing
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
        await wait_event(self._wake, seconds)

    # -- sending -------------------------------------------------------------------------

    async def _work(self, mailer: Mailer) -> None:
        while True:
            claimed = await self._queue.get()
            if claimed is None:
                return
            row = claimed.row
            if not self.may_send():  # the fence: nothing is sent once the lead may be gone
                await self.recorder.record(Released(row.key, attempt=row.attempts))
                continue
            with child_span("smtp send", row.traceparent, kind=SpanKind.CLIENT):
                prepared = await self._prepare(claimed, mailer)
                if isinstance(prepared, str):
                    async with self._handover:
                        outcome = await self._transfer(row, prepared, mailer)
                        self._metrics.tally(row.kind, row.event_at, outcome)
                        await self.recorder.record(outcome)
                    continue
            self._metrics.tally(row.kind, row.event_at, prepared)
            # The next email waits for this commit, too: outcomes never pile up.
            await self.recorder.record(prepared)

    def _recorded(self, outcomes: list[Outcome]) -> None:
        self._in_flight -= len(outcomes)
        # Slots are free: claim more if the last claim left some due, or a retry's time
        # may now come before the dispatcher's next look.
        if self._more_due or any(isinstance(o, Retry) for o in outcomes):
            self._wake.set()
        if any(isinstance(o, Sent | Failed) for o in outcomes):
            self._on_report_due()

    async def _prepare(self, claimed: _Claimed, mailer: Mailer) -> Outcome | str:
        """Render and prepare the envelope: the subject once ready to transfer, or the
        outcome of an email that cannot go (yet)."""
        row, opened = claimed.row, claimed.password
        said = self.delivery_log
        password: str | None = None
        if row.temp_password_id is not None:
            if isinstance(opened, InvalidTag):
                return self._failed(row, "sealed password does not open with this key")
            if isinstance(opened, BaseException):  # the store was unreachable: later
                return self._retry(row, f"reading the sealed password: {opened}")
            if opened is None:
                # Never an email with an empty password: the invitee gets the one that
                # replaced it (resend), or the administrators hear that it expired.
                said.skipped(row, self._message_id(row), PASSWORD_GONE)
                return Skipped(row.key, PASSWORD_GONE, attempt=row.attempts)
            password = opened
        elif row.kind == Kind.INVITATION_AUTOMATIC:
            reason = "no temporary password id in the event"
            said.skipped(row, self._message_id(row), reason)
            return Skipped(row.key, reason, attempt=row.attempts)
        try:
            subject, message = self._composer.compose(
                row, password, self._clock(), claimed.attachments
            )
        except UndeliverableAddressError as error:
            return self._failed(row, str(error))
        except Exception as error:
            log.exception("could not render %s (Message-ID %s)", row.kind, self._message_id(row))
            return self._failed(row, f"render: {type(error).__name__}: {error}")
        finally:
            del password  # from here on the plaintext lives only in the message
        try:
            await mailer.prepare(message, row.recipient)
        except Exception as error:
            return self._mail_error(row, error)
        return subject

    async def _transfer(self, row: OutboxEmail, subject: str, mailer: Mailer) -> Outcome:
        if not self.may_send():  # the lead went while this envelope waited its turn
            await mailer.abandon()
            return Released(row.key, attempt=row.attempts)
        try:
            await mailer.transfer()
        except Exception as error:
            return self._mail_error(row, error)
        self.delivery_log.server_reachable()
        self.delivery_log.sent(row, self._message_id(row))
        return Sent(row.key, subject, self._clock(), row.temp_password_id, attempt=row.attempts)

    def _mail_error(self, row: OutboxEmail, error: Exception) -> Outcome:
        if isinstance(error, ServerUnreachableError):
            self.delivery_log.server_unreachable(str(error))  # a summary speaks for all
            return self._retry(row, str(error), quiet=True)
        self.delivery_log.server_reachable()
        if isinstance(error, TransientMailError):
            return self._retry(row, str(error))
        if isinstance(error, PermanentMailError):
            return self._failed(row, str(error))
        log.exception("unexpected error sending %s; trying again later", row.kind)
        return self._retry(row, f"{type(error).__name__}: {error}")

    def _message_id(self, row: OutboxEmail) -> str:
        return message_id(row.key, self._composer.sender)

    def _failed(self, row: OutboxEmail, reason: str) -> Outcome:
        self.delivery_log.failed(row, self._message_id(row), reason)
        return Failed(row.key, reason, attempt=row.attempts)

    def _retry(self, row: OutboxEmail, error: str, *, quiet: bool = False) -> Outcome:
        if self._policy.gives_up_after(row.attempts):
            return self._failed(row, f"gave up after {row.attempts} attempts: {error}")
        delay = self._policy.delay(row.attempts)
        if not quiet:
            self.delivery_log.retrying(row, delay, error)
        return Retry(row.key, self._clock() + delay, error, attempt=row.attempts)

    async def _waiting(self) -> int:
        try:
            return await asyncio.to_thread(self._ledger.waiting) + self._in_flight
        except Exception:
            return self._in_flight  # the database is away too: what is known here

    # -- stopping ------------------------------------------------------------------------

    async def stop(self, grace: float = 2.0, *, record_within: float | None = None) -> None:
        """Stop claiming, let in-flight sends finish (up to `grace`), record everything
        (trying for up to `record_within` seconds, `grace` by default)."""
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
                self.recorder.hand_in(Released(claimed.row.key, attempt=claimed.row.attempts))
                released += 1
        for _ in self._workers:
            self._queue.put_nowait(None)
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=grace)
            for task in late:  # its row stays `sending` and is re-sent at the next start
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        abandoned = sum(1 for task in self._workers if task.cancelled())
        if self._summary is not None:
            self._summary.cancel()
            await asyncio.gather(self._summary, return_exceptions=True)
        # Never cut the recorder short of its time: its outcomes are what keeps a
        # finished email from being sent again by the next leader.
        if not await self.recorder.stop(grace if record_within is None else record_within):
            log.error("could not record every outcome before stopping")
        log.info(
            "sender stopped: %d queued email(s) released, %d in-flight send(s) cut off",
            released,
            abandoned,
        )
        for mailer in self._mailers:
            await mailer.close()
