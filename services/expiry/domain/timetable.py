"""The timetable: every deadline the event history implies, kept up to date event by event.

It reads contract envelopes in position order and tells its sink (the dispatcher) to set
or cancel deadlines. It depends only on the events, never on the clock nor on what was
sent, so rebuilding it from position 0 and following the log live give the same result.

What it follows, mirroring the invitation service's aggregates:

- contractor end (rule 20): `UserInvited` (role contractor); moved by
  `ContractorExpiryChanged`; cancelled by `ContractorExpired`, and while the invitation is
  pending by `InvitationRevoked`/`InvitationLapsed` (the membership is withdrawn, so
  `expire_contractor` would refuse: it acts on invited and active contractors only). A
  resend of the lapsed invitation offers the membership again, with the same end date.
- reminders (rule 21): at each of the tenant's `expiry_reminders` offsets before the end,
  cancelled by their `ContractorExpiryApproaching` and with the end. Only reminders whose
  moment was still ahead when the end date (or the offsets) were set are scheduled: one
  already past then was never due (a contractor invited for 3 days gets no 7-day
  reminder), while one that passed since, say during downtime, still fires.
- invitation link (rule 16): `UserInvited`, moved by `InvitationResent`, cancelled by
  `InvitationAccepted`/`InvitationRevoked`/`InvitationLapsed`.
- temporary password (rule 14): `TempPasswordIssued` (replacing the account's previous
  one), cancelled by `TempPasswordExpired`/`TempPasswordRevoked` or `PasswordChanged`.
- members (rule 34): `MemberRoleChanged` to contractor starts the contractor end and
  reminders at its `access_expires_at`; away from contractor, or `MemberRemoved`, cancels
  them. (A removed member's unused temporary password is withdrawn by the invitation
  service: its `TempPasswordRevoked` cancels that deadline.)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from pydantic import TypeAdapter

from services.expiry.domain.deadlines import (
    Key,
    contractor_end,
    contractor_reminder,
    invitation_link,
    seconds,
    temp_password,
)
from shared.contract import EventEnvelope

DEFAULT_REMINDERS: tuple[float, ...] = (
    timedelta(days=7).total_seconds(),
    timedelta(days=1).total_seconds(),
)

_duration = TypeAdapter(timedelta)
_durations = TypeAdapter(list[timedelta])

INVITED, ACTIVE, LAPSED = 0, 1, 2

# The contract event types the timetable follows; the others cannot change a deadline,
# so the event log need not even fetch them (services/invitation/eventstore/event_log.py).
EVENT_TYPES: tuple[str, ...] = (
    "UserInvited",
    "InvitationResent",
    "InvitationAccepted",
    "InvitationRevoked",
    "InvitationLapsed",
    "ContractorExpiryChanged",
    "ContractorExpiryApproaching",
    "ContractorExpired",
    "TenantConfigured",
    "TempPasswordIssued",
    "TempPasswordExpired",
    "TempPasswordRevoked",
    "PasswordChanged",
    "MemberRoleChanged",
    "MemberRemoved",
)


class DeadlineSink(Protocol):
    def set(self, key: Key, deadline: float) -> None: ...

    def cancel(self, key: Key) -> None: ...


# A contractor membership that has, or may again have, an end date to enforce, as
# (invitation_id.int, status, end): a plain tuple for the reason given in deadlines.py.
Record = tuple[int, int, float]


def _at(value: str) -> float:
    return seconds(datetime.fromisoformat(value))


def _offsets(values: Iterable[timedelta]) -> tuple[float, ...]:
    return tuple(sorted({v.total_seconds() for v in values}, reverse=True))


class Timetable:
    def __init__(self, sink: DeadlineSink) -> None:
        self.position = 0
        self._sink = sink
        self._reminders: dict[str, tuple[float, ...]] = {}
        self._contractors: dict[str, dict[str, Record]] = {}  # tenant -> email -> record
        self._by_invitation: dict[int, tuple[str, str]] = {}  # -> (tenant, email)
        self._temp_passwords: dict[str, int] = {}  # email -> the live temp_password_id.int
        self._handlers: dict[str, Callable[[EventEnvelope, str], None]] = {
            "UserInvited": self._user_invited,
            "InvitationResent": self._invitation_resent,
            "InvitationAccepted": self._invitation_accepted,
            "InvitationRevoked": self._invitation_revoked,
            "InvitationLapsed": self._invitation_lapsed,
            "ContractorExpiryChanged": self._contractor_expiry_changed,
            "ContractorExpiryApproaching": self._contractor_expiry_approaching,
            "ContractorExpired": self._contractor_expired,
            "TenantConfigured": self._tenant_configured,
            "TempPasswordIssued": self._temp_password_issued,
            "TempPasswordExpired": self._temp_password_ended,
            "TempPasswordRevoked": self._temp_password_ended,
            "PasswordChanged": self._password_changed,
            "MemberRoleChanged": self._member_role_changed,
            "MemberRemoved": self._member_removed,
        }
        assert set(self._handlers) == set(EVENT_TYPES)

    def apply(self, envelope: EventEnvelope) -> bool:
        """Apply one event; an event at or before the current position is a repeat, ignored."""
        if envelope.position <= self.position:
            return False
        self.position = envelope.position
        handler = self._handlers.get(envelope.event_type)
        if handler is None:
            return False
        # Tenant ids recur across many deadlines: share one string object per tenant.
        handler(envelope, sys.intern(envelope.tenant_id or ""))
        return True

    def advance(self, position: int) -> None:
        """The log was read up to `position`, past events that are none of ours."""
        self.position = max(self.position, position)

    def reminders(self, tenant_id: str) -> tuple[float, ...]:
        return self._reminders.get(tenant_id, DEFAULT_REMINDERS)

    def contractors(self) -> int:
        return len(self._by_invitation)

    # -- invitations -----------------------------------------------------------------------

    def _user_invited(self, e: EventEnvelope, tenant_id: str) -> None:
        data = e.data
        invitation_id = UUID(data["invitation_id"])
        self._sink.set(
            invitation_link(tenant_id, invitation_id), _at(data["invitation_expires_at"])
        )
        email: str = data["email"]
        if self._record(tenant_id, email) is not None:
            self._forget(tenant_id, email)  # a new offer replaces what was left of the old one
        if data["role"] != "contractor" or not data.get("access_expires_at"):
            return
        end = _at(data["access_expires_at"])
        self._contractors.setdefault(tenant_id, {})[email] = (invitation_id.int, INVITED, end)
        self._by_invitation[invitation_id.int] = (tenant_id, email)
        self._schedule(tenant_id, email, end, since=seconds(e.occurred_at))

    def _invitation_resent(self, e: EventEnvelope, tenant_id: str) -> None:
        invitation_id = UUID(e.data["invitation_id"])
        self._sink.set(
            invitation_link(tenant_id, invitation_id), _at(e.data["invitation_expires_at"])
        )
        found = self._by_invitation.get(invitation_id.int)
        record = None if found is None else self._record(*found)
        if found is not None and record is not None and record[1] == LAPSED:
            tenant_id, email = found
            self._contractors[tenant_id][email] = (record[0], INVITED, record[2])
            # Offered again, with the same end date.
            self._schedule(tenant_id, email, record[2], since=seconds(e.occurred_at))

    def _invitation_accepted(self, e: EventEnvelope, tenant_id: str) -> None:
        invitation_id = UUID(e.data["invitation_id"])
        self._sink.cancel(invitation_link(tenant_id, invitation_id))
        found = self._by_invitation.get(invitation_id.int)
        record = None if found is None else self._record(*found)
        if found is not None and record is not None and record[1] == INVITED:
            # Keeps its end date and reminders.
            self._contractors[found[0]][found[1]] = (record[0], ACTIVE, record[2])

    def _invitation_revoked(self, e: EventEnvelope, tenant_id: str) -> None:
        invitation_id = UUID(e.data["invitation_id"])
        self._sink.cancel(invitation_link(tenant_id, invitation_id))
        found = self._by_invitation.get(invitation_id.int)
        record = None if found is None else self._record(*found)
        if found is not None and record is not None and record[1] != ACTIVE:
            self._forget(*found)  # a revoked invitation is never offered again

    def _invitation_lapsed(self, e: EventEnvelope, tenant_id: str) -> None:
        invitation_id = UUID(e.data["invitation_id"])
        self._sink.cancel(invitation_link(tenant_id, invitation_id))
        found = self._by_invitation.get(invitation_id.int)
        record = None if found is None else self._record(*found)
        if found is not None and record is not None and record[1] == INVITED:
            self._unschedule(*found)
            # Kept: a resend offers the membership again.
            self._contractors[found[0]][found[1]] = (record[0], LAPSED, record[2])

    # -- contractors -----------------------------------------------------------------------

    def _contractor_expiry_changed(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        record = self._record(tenant_id, email)
        if record is None or record[1] == LAPSED:
            return
        end = _at(e.data["access_expires_at"])
        self._contractors[tenant_id][email] = (record[0], record[1], end)
        self._schedule(tenant_id, email, end, since=seconds(e.occurred_at))

    def _contractor_expiry_approaching(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        record = self._record(tenant_id, email)
        if record is None or record[2] != _at(e.data["access_expires_at"]):
            return  # a reminder for an end date since moved
        offset = _duration.validate_python(e.data["offset"]).total_seconds()
        self._sink.cancel(contractor_reminder(tenant_id, email, offset))

    def _contractor_expired(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        if self._record(tenant_id, email) is not None:
            self._forget(tenant_id, email)

    # -- members --------------------------------------------------------------------------

    def _member_role_changed(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        if self._record(tenant_id, email) is not None:
            self._forget(tenant_id, email)  # no longer a contractor, or a new end date
        if e.data["role"] != "contractor" or not e.data.get("access_expires_at"):
            return
        end = _at(e.data["access_expires_at"])
        raw_invitation = e.data.get("invitation_id")
        invitation = UUID(raw_invitation).int if raw_invitation else 0
        self._contractors.setdefault(tenant_id, {})[email] = (invitation, ACTIVE, end)
        if invitation:
            self._by_invitation[invitation] = (tenant_id, email)
        self._schedule(tenant_id, email, end, since=seconds(e.occurred_at))

    def _member_removed(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        if self._record(tenant_id, email) is not None:
            self._forget(tenant_id, email)

    def _tenant_configured(self, e: EventEnvelope, tenant_id: str) -> None:
        settings: dict[str, Any] = e.data["settings"]
        new = _offsets(_durations.validate_python(settings["expiry_reminders"]))
        old = self.reminders(tenant_id)
        self._reminders[tenant_id] = new
        if new == old:
            return
        since = seconds(e.occurred_at)
        removed = [o for o in old if o not in new]
        added = [o for o in new if o not in old]
        for email, (_, status, end) in self._contractors.get(tenant_id, {}).items():
            if status == LAPSED:
                continue
            for offset in removed:
                self._sink.cancel(contractor_reminder(tenant_id, email, offset))
            for offset in added:
                if end - offset > since:
                    self._sink.set(contractor_reminder(tenant_id, email, offset), end - offset)

    def _record(self, tenant_id: str, email: str) -> Record | None:
        tenant = self._contractors.get(tenant_id)
        return None if tenant is None else tenant.get(email)

    def _schedule(self, tenant_id: str, email: str, end: float, *, since: float) -> None:
        self._sink.set(contractor_end(tenant_id, email), end)
        for offset in self.reminders(tenant_id):
            key = contractor_reminder(tenant_id, email, offset)
            if end - offset > since:
                self._sink.set(key, end - offset)
            else:
                self._sink.cancel(key)

    def _unschedule(self, tenant_id: str, email: str) -> None:
        self._sink.cancel(contractor_end(tenant_id, email))
        for offset in self.reminders(tenant_id):
            self._sink.cancel(contractor_reminder(tenant_id, email, offset))

    def _forget(self, tenant_id: str, email: str) -> None:
        self._unschedule(tenant_id, email)
        tenant = self._contractors[tenant_id]
        invitation_id = tenant.pop(email)[0]
        if not tenant:
            del self._contractors[tenant_id]
        self._by_invitation.pop(invitation_id, None)

    # -- temporary passwords ---------------------------------------------------------------

    def _temp_password_issued(self, e: EventEnvelope, tenant_id: str) -> None:
        raw_id = e.data.get("temp_password_id")
        if raw_id is None:
            return  # not an id we could ever name in expire_temp_password
        email: str = e.data["email"]
        new_id = UUID(raw_id).int
        previous = self._temp_passwords.get(email)
        if previous is not None and previous != new_id:
            self._sink.cancel(temp_password(email, previous))
        self._temp_passwords[email] = new_id
        self._sink.set(temp_password(email, new_id), _at(e.data["valid_until"]))

    def _temp_password_ended(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        ended = UUID(e.data["temp_password_id"]).int
        if self._temp_passwords.get(email) == ended:
            del self._temp_passwords[email]
        self._sink.cancel(temp_password(email, ended))

    def _password_changed(self, e: EventEnvelope, tenant_id: str) -> None:
        email: str = e.data["email"]
        current = self._temp_passwords.pop(email, None)
        if current is not None:
            self._sink.cancel(temp_password(email, current))
