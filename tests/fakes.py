"""Fakes the tests share: the clocks a test moves, and an event log in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from shared.contract import EventEnvelope

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


class FakeClock:
    """The clock a test moves: the invitation service calls it for `now`, the expiry
    service reads `seconds()`.

    `advance` takes a timedelta, keyword parts (`days=7`), or both.
    """

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    @classmethod
    def starting_now(cls) -> FakeClock:
        """For tests whose other side reads the real time (the CLI, the notifier)."""
        return cls(datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return self.now.timestamp()

    def advance(self, delta: timedelta = timedelta(0), /, **parts: float) -> datetime:
        self.now += delta + timedelta(**parts)
        return self.now

    def to(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


class Ticks:
    """A monotonic clock (seconds) the test moves: a lease's grace or fence runs out on it
    only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryLog:
    """An event log in memory, read like EventLog (sparse positions, high water)."""

    def __init__(self) -> None:
        self.envelopes: list[EventEnvelope] = []
        self.position = 0

    def read_with_high_water(
        self, after: int = 0, limit: int = 1000
    ) -> tuple[list[EventEnvelope], int]:
        page = [e for e in self.envelopes if e.position > after][:limit]
        return page, (page[-1].position if page else after)

    def user_invited(self, tenant: str, email: str, link_expires_at: datetime) -> str:
        invitation_id = str(uuid4())
        self.add(
            "UserInvited",
            tenant,
            invitation_id=invitation_id,
            email=email,
            role="user",
            access_expires_at=None,
            invitation_expires_at=link_expires_at.isoformat(),
            invited_by="admin@example.com",
            batch_id=None,
            display_name=None,
        )
        return invitation_id

    def add(self, event_type: str, tenant: str, **data: Any) -> None:
        self.position += 2
        self.envelopes.append(
            EventEnvelope(
                event_id=uuid4(),
                event_type=event_type,
                occurred_at=datetime.now(UTC),
                position=self.position,
                tenant_id=tenant,
                aggregate_id=uuid4(),
                aggregate_version=1,
                correlation_id=None,
                actor="admin@example.com",
                data=data,
            )
        )
