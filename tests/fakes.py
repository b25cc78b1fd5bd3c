"""Fakes the tests share: the one clock a test moves, and the instant it starts at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
