"""A mass invite worked in slices: a bounded number of rows per transaction.

A 10,000-row mass invite decided in one transaction held the batcher (and the events
table's lock) for tens of seconds, and every other tenant's commands waited behind it.
So each transaction decides one slice of its rows, beside whatever other commands the
batch holds, and the report (`MassInviteCompleted`) and the reply are stored with the
last slice.

Rows are judged on their own (rule 9), so a slice's invitations are final once
committed, like any invite. What makes the command as a whole idempotent and
crash-safe is that each slice's rows of the report are stored in the same transaction
as the slice's events, under a key derived from the `command_id`
(`<command_id>:slice:<first row>`) in the stored-replies table. A redelivered or
re-sent command (same `command_id`, same body) therefore resumes after the last stored
slice and never decides a row twice; the final reply is stored under the `command_id`
itself, as for every command, and answers any later repeat. Those keys can never clash
with a client's: a `command_id` is a UUID.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID, uuid4

from services.invitation.application import invitations
from services.invitation.application.tools import Tools
from services.invitation.domain.cause import Cause
from services.invitation.domain.errors import DomainError
from services.invitation.eventstore import SideTables, StoredReply
from services.invitation.unit_of_work import UnitOfWork
from shared import contract as c


def slice_key(command_id: str, start: int) -> str:
    return f"{command_id}:slice:{start}"


@dataclass(frozen=True)
class SliceRecord:
    """The rows `start`..`stop` of a mass invite's report, stored with their events."""

    start: int
    stop: int
    batch_id: UUID
    rows: list[dict[str, Any]]

    def stored(self, command_id: str, fingerprint: str) -> StoredReply:
        body = {"batch_id": str(self.batch_id), "stop": self.stop, "rows": self.rows}
        return StoredReply(slice_key(command_id, self.start), fingerprint, json.dumps(body))

    @classmethod
    def of(cls, start: int, stored: StoredReply) -> SliceRecord:
        body = json.loads(stored.reply_json)
        return cls(start, int(body["stop"]), UUID(body["batch_id"]), body["rows"])


@dataclass
class MassInviteJob:
    """One mass invite being worked. Holds where it is (the next row, its batch id, the
    slices stored so far): only a cache of what is stored, caught up on at each slice
    (an earlier delivery, or another instance, may have stored more).

    Built on the event loop, so it does nothing costly there: its fingerprint (a hash
    of the whole body) and the rows' normalised emails are computed in the batch
    thread, as the slices need them."""

    command: c.MassInvite
    sender: str | None
    fingerprint_of: Callable[[], str]
    batch_id: UUID = field(default_factory=uuid4)
    next_row: int = 0
    starts: list[int] = field(default_factory=list)  # the first row of each stored slice
    _emails: list[str | DomainError] = field(default_factory=list)
    _firsts: dict[str, int] = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        return self.fingerprint_of()

    @property
    def command_id(self) -> str:
        return str(self.command.command_id)

    @property
    def tenant_id(self) -> str:
        return self.command.tenant_id

    @property
    def rows(self) -> int:
        return len(self.command.invitees)

    def next_key(self) -> str:
        return slice_key(self.command_id, self.next_row)

    def adopt(self, record: SliceRecord) -> None:
        """A slice stored (by this job after its commit, or found stored)."""
        self.batch_id = record.batch_id
        self.starts.append(record.start)
        self.next_row = record.stop

    def emails(self, stop: int) -> tuple[list[str | DomainError], dict[str, int]]:
        """The normalised email of every row before `stop`, and each email's first row:
        normalised once each, a slice at a time (validating 10,000 addresses at once
        would hold the batch thread for a second)."""
        invitees = self.command.invitees
        for index in range(len(self._emails), stop):
            email = invitations.invitee_email(invitees[index])
            self._emails.append(email)
            if isinstance(email, str):
                self._firsts.setdefault(email, index)
        return self._emails, self._firsts


def catch_up(
    job: MassInviteJob, earlier: dict[str, StoredReply], tables: SideTables
) -> StoredReply | None:
    """Bring `job` up to what is stored (`earlier`: the stored replies under its
    `command_id` and its next slice's key). The stored reply when it was answered
    already, or a slice stored for another body under its id (to be refused
    `command_id_reused`); else None: go on."""
    first = earlier.get(job.command_id)
    if first is not None:
        return first
    found = earlier.get(job.next_key())
    while found is not None:
        if found.fingerprint != job.fingerprint:
            return found
        job.adopt(SliceRecord.of(job.next_row, found))
        key = job.next_key()
        found = tables.lookup_replies([key]).get(key)
    return None


def decide_slice(
    tools: Tools,
    tables: SideTables,
    uow: UnitOfWork,
    job: MassInviteJob,
    now: datetime,
    slice_rows: int,
) -> c.Reply | SliceRecord:
    """Judge the next `slice_rows` rows of `job` in `uow`: the slice to record (recorded
    in `uow` too; `job` adopts it once committed). Once every row is decided: the report
    completed and the reply, recorded in `uow` as the command's first reply."""
    command, command_id = job.command, job.command_id
    cause = Cause(
        actor=command.actor,
        command_id=command_id,
        at=now,
        tenant_id=command.tenant_id,
        sender=job.sender,
    )
    start = job.next_row
    try:
        if start == 0:
            invitations.check_mass_invite_size(command)
    except DomainError as error:
        reply = c.Reply.rejected(command_id, error.code, error.message, error.details)
    else:
        if start < job.rows:
            stop = min(job.rows, start + max(1, slice_rows))
            emails, firsts = job.emails(stop)
            rows = invitations.mass_invite_rows(
                tools, uow, command, cause, job.batch_id, emails, firsts, range(start, stop)
            )
            record = SliceRecord(start, stop, job.batch_id, rows)
            uow.record_reply(record.stored(command_id, job.fingerprint))
            return record
        # Every row is decided: the report holds them all, read back from their slices.
        # A transaction of its own, so that it is not a slice's time on top of one.
        keys = [slice_key(command_id, s) for s in job.starts]
        stored = tables.lookup_replies(keys)
        every_row = [row for key in keys for row in SliceRecord.of(0, stored[key]).rows]
        result = invitations.complete_mass_invite(uow, command, job.batch_id, every_row, cause)
        reply = c.Reply.accepted(command_id, result)
    uow.record_reply(StoredReply(command_id, job.fingerprint, reply.model_dump_json()))
    return reply
