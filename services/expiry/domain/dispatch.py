"""From deadlines to commands: when each fires, what it sends, and what its reply means.

The timetable says *which* deadlines exist (from the events); the dispatcher decides
*when to send*: at the deadline, again if no reply comes (the command or its reply may
have been lost), later after a `not_due` (the invitation service's clock is behind ours,
or our copy of the deadline is stale). A deadline leaves the dispatcher when its reply
says it is settled, or when the events move or cancel it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.expiry.domain.deadlines import (
    COMMAND_NAMES,
    Key,
    build_command,
    command_id,
    command_name,
    describe,
    seconds,
)
from services.expiry.domain.schedule import Schedule
from shared.contract import Command, RejectionCode, Reply

log = logging.getLogger(__name__)

ACTOR = "service:expiry"


@dataclass(frozen=True, slots=True)
class Firing:
    """One command to send now."""

    key: Key
    deadline: float
    name: str
    command: Command
    lateness: float | None  # seconds after the deadline; None for a re-send or a retry
    traceparent: str | None = None  # the W3C trace context of the deadline's event


@dataclass(slots=True)
class _InFlight:
    """A deadline whose command was sent and not yet settled. Only these cost extra memory."""

    deadline: float
    attempt: int  # how many `not_due` answers so far; part of the command id
    command_id: UUID
    sends: int  # how often this very command id was sent (no reply yet)


@dataclass(frozen=True, slots=True)
class Timing:
    """How long to wait before sending again (all in seconds)."""

    # No reply: send the same command again (doubling). A confirmed publish sits in a
    # durable queue, so this is for the rare loss (a dead-lettered command, a reply lost
    # in a reconnect) and must not flood the queue while the invitation service is down.
    reply_timeout: float = 60.0
    max_reply_timeout: float = 3600.0
    send_retry: float = 1.0  # the broker refused or was unreachable (doubling)
    max_send_retry: float = 30.0
    not_due_retry: float = 0.05  # minimum wait after a `not_due` (doubling), for clock skew
    max_not_due_retry: float = 30.0


def _backoff(base: float, cap: float, count: int) -> float:
    return min(cap, base * 2.0 ** min(count, 30))


class Dispatcher:
    """Deadlines in firing order, with the bookkeeping of commands in flight.

    `set`/`cancel` come from the timetable (the event history); `due`, `settle` and
    `send_failed` from the runner (the clock, the broker).
    """

    def __init__(self, *, timing: Timing | None = None, actor: str = ACTOR) -> None:
        self.timing = timing or Timing()
        self.actor = actor
        self.schedule: Schedule[Key] = Schedule()
        self._in_flight: dict[Key, _InFlight] = {}
        self._by_command: dict[UUID, Key] = {}
        # Only while tracing: the trace context of the event that set each deadline (set
        # `origin` before applying an event). Empty otherwise: no cost per deadline.
        self.origin: str | None = None
        self._origins: dict[Key, str] = {}

    # -- from the event history ----------------------------------------------------------

    def set(self, key: Key, deadline: float) -> None:
        flight = self._in_flight.get(key)
        if flight is not None and flight.deadline == deadline:
            return  # the same deadline again (a repeated event): keep the command in flight
        self._forget(key)
        self.schedule.set(key, deadline)
        if self.origin is not None:
            self._origins[key] = self.origin

    def cancel(self, key: Key) -> None:
        self._forget(key)
        self.schedule.cancel(key)

    def deadlines(self) -> dict[Key, float]:
        """Every open deadline (a copy, for inspection and tests)."""
        found = {key: at for at, key in self.schedule.items()}
        found.update({key: flight.deadline for key, flight in self._in_flight.items()})
        return found

    def __len__(self) -> int:
        return len(self.schedule)

    def census(self, now: float) -> dict[str, tuple[int, int]]:
        """Per command: (open deadlines, of which overdue), for the metrics.

        Overdue: the deadline passed and no reply accepted the command yet, so every
        command in flight, plus what is due and not fired yet. Counting the open ones
        is one pass over the keys; the overdue ones cost only what is due.
        """
        scheduled = Counter(key[0] for key in self.schedule.live_keys())
        overdue = Counter(key[0] for key in self._in_flight)
        overdue.update(key[0] for key in self.schedule.due_keys(now) if key not in self._in_flight)
        return {
            name: (scheduled[kind], overdue[kind])
            for kind, name in enumerate(COMMAND_NAMES)
            if scheduled[kind]
        }

    # -- from the clock ------------------------------------------------------------------

    def next_at(self) -> float | None:
        return self.schedule.next_at()

    def due(self, now: float, limit: int | None = None) -> list[Firing]:
        """The commands to send at `now`, in deadline order.

        Each stays scheduled for a re-send with the same command id, in case neither a
        reply nor an event ever comes (a lost message, a restarted broker).
        """
        firings: list[Firing] = []
        timing = self.timing
        for key, at in self.schedule.pop_due(now, limit):
            flight = self._in_flight.get(key)
            if flight is None:
                flight = _InFlight(at, 0, command_id(key, at, 0), 0)
                self._in_flight[key] = flight
                self._by_command[flight.command_id] = key
                lateness: float | None = max(0.0, now - at)
            else:
                lateness = None  # a re-send, or the retry after `not_due`
            wait = _backoff(timing.reply_timeout, timing.max_reply_timeout, flight.sends)
            flight.sends += 1
            self.schedule.set(key, now + wait)
            firings.append(
                Firing(
                    key=key,
                    deadline=flight.deadline,
                    name=command_name(key),
                    command=build_command(key, flight.command_id, self.actor),
                    lateness=lateness,
                    traceparent=self._origins.get(key),
                )
            )
        return firings

    # -- from the broker -----------------------------------------------------------------

    def send_failed(self, firing: Firing, now: float) -> None:
        """Publishing failed (broker down, no queue bound): send it again soon."""
        key = firing.key
        flight = self._in_flight.get(key)
        if flight is None or flight.command_id != firing.command.command_id:
            return  # moved or settled meanwhile
        timing = self.timing
        self.schedule.set(
            key, now + _backoff(timing.send_retry, timing.max_send_retry, flight.sends - 1)
        )

    def settle(self, reply: Reply, now: float) -> str:
        """Apply the invitation service's reply; returns what it meant (for logs and tests)."""
        try:
            sent_id = UUID(reply.command_id or "")
        except ValueError:
            return "unknown"
        key = self._by_command.get(sent_id)
        flight = None if key is None else self._in_flight.get(key)
        if key is None or flight is None or flight.command_id != sent_id:
            return "stale"  # a reply to an earlier attempt, or to a moved deadline
        if reply.status == "accepted":
            self.cancel(key)  # done; the resulting event (if any) arrives by the event log
            return "accepted"
        error = reply.error
        if error is not None and error.code == RejectionCode.NOT_DUE:
            self._retry_when_due(key, flight, error.details.get("due_at"), now)
            return "not_due"
        # The deadline no longer applies (revoked, replaced, already gone); the events
        # that explain it are on their way. Nothing to retry.
        log.info(
            "%s %s refused: %s",
            command_name(key),
            describe(key),
            error.code if error is not None else "?",
            extra={"command": command_name(key), "code": error.code if error else None},
        )
        self.cancel(key)
        return "refused"

    def _retry_when_due(self, key: Key, flight: _InFlight, due_at: object, now: float) -> None:
        due = flight.deadline
        if isinstance(due_at, str):
            with contextlib.suppress(ValueError):
                due = seconds(datetime.fromisoformat(due_at))
        timing = self.timing
        retry_at = max(
            due, now + _backoff(timing.not_due_retry, timing.max_not_due_retry, flight.attempt)
        )
        attempt = flight.attempt + 1
        new_id = command_id(key, flight.deadline, attempt)
        del self._by_command[flight.command_id]
        self._in_flight[key] = _InFlight(flight.deadline, attempt, new_id, 0)
        self._by_command[new_id] = key
        self.schedule.set(key, retry_at)

    def _forget(self, key: Key) -> None:
        self._origins.pop(key, None)
        flight = self._in_flight.pop(key, None)
        if flight is not None:
            self._by_command.pop(flight.command_id, None)
