"""The one retry policy (shared/retry.py), on a fake clock: no test here really sleeps."""

from __future__ import annotations

import asyncio
import logging

import eventsourcing.persistence
import psycopg
import pytest

from shared.retry import RetryPolicy, RetrySettings, StoppedError, is_outage

log = logging.getLogger("tests.retry")


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Flaky:
    """Fails `failures` times with `error`, then returns "done"."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("refused")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def bounds(policy: RetryPolicy, attempt: int) -> tuple[float, float]:
    """[d/2, d], d = min(cap, initial * 2**(attempt-1)): where the attempt's delay falls."""
    backoff = min(policy.max_delay, policy.initial_delay * 2 ** (attempt - 1))
    return backoff / 2, backoff


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


async def test_each_delay_doubles_up_to_the_cap_and_is_jittered_within_its_upper_half(
    fake: FakeTime,
) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=2.0)
    flaky = Flaky(failures=8)
    assert await policy.retrying("flaky", log, sleep=fake.sleep).call(flaky) == "done"

    assert len(fake.slept) == 8
    for attempt, delay in enumerate(fake.slept, start=1):
        low, high = bounds(policy, attempt)
        assert low <= delay <= high, (attempt, delay)
    assert max(fake.slept) <= policy.max_delay


async def test_the_jitter_spreads_the_delays_over_their_range(fake: FakeTime) -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=1.0)
    backoff = policy.backoff("flaky", log, sleep=fake.sleep)
    delays = [backoff.next_delay() for _ in range(300)]

    assert all(0.5 <= d <= 1.0 for d in delays)
    # Instances failing together do not retry in step: the draws cover the range.
    assert min(delays) < 0.6
    assert max(delays) > 0.9


async def test_an_outage_is_retried_within_the_wait_cap_however_long_it_lasts(
    fake: FakeTime,
) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0, outage_max_delay=1.0)
    flaky = Flaky(failures=20, error=psycopg.OperationalError("server closed the connection"))
    assert await policy.retrying("planning", log, sleep=fake.sleep).call(flaky) == "done"

    assert max(fake.slept) <= 1.0
    assert min(fake.slept[-10:]) >= 0.5  # still backed off: half the cap at least


async def test_a_failure_that_is_not_an_outage_backs_off_to_the_full_cap(
    fake: FakeTime,
) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0, outage_max_delay=1.0)
    flaky = Flaky(failures=10, error=ValueError("a row that does not parse"))
    assert await policy.retrying("planning", log, sleep=fake.sleep).call(flaky) == "done"

    assert max(fake.slept) > 1.0
    assert max(fake.slept) <= 10.0


async def test_a_backoff_caps_an_outage_at_the_wait_cap_and_other_failures_at_the_full_one(
    fake: FakeTime,
) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0, outage_max_delay=1.0)
    backoff = policy.backoff("relay failed", log, sleep=fake.sleep)
    outages = [await backoff.failed(ConnectionRefusedError("refused")) for _ in range(12)]
    assert max(outages) <= 1.0
    assert backoff.next_delay(RuntimeError("a bug")) > 1.0  # same try count, full cap


def test_an_outage_is_recognised_through_the_errors_raised_from_it() -> None:
    cause = psycopg.OperationalError("terminating connection")
    wrapped = eventsourcing.persistence.OperationalError(str(cause))
    wrapped.__cause__ = cause
    assert is_outage(wrapped)
    chained = RuntimeError("publish failed")
    chained.__context__ = ConnectionResetError("reset by peer")
    assert is_outage(chained)
    assert is_outage(TimeoutError())
    assert not is_outage(ValueError("bad"))
    assert not is_outage(None)


async def test_every_failed_try_is_one_warning_naming_the_error_and_the_next_delay(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tests.retry")
    policy = RetryPolicy(initial_delay=0.2, max_delay=1.0)
    await policy.retrying("waiting for the broker", log, sleep=fake.sleep).call(Flaky(3))

    lines = warnings_of(caplog)
    assert len(lines) == 3
    for attempt, (line, delay) in enumerate(zip(lines, fake.slept, strict=True), start=1):
        assert line.startswith("waiting for the broker (ConnectionError: refused)")
        assert f"trying again in {delay:.1f}s" in line
        assert f"(attempt {attempt})" in line


async def test_a_new_call_starts_again_from_the_first_delay_after_a_success(
    fake: FakeTime,
) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0)
    retrying = policy.retrying("flaky", log, sleep=fake.sleep)
    await retrying.call(Flaky(5))
    assert fake.slept[-1] >= bounds(policy, 5)[0]

    fake.slept.clear()
    await retrying.call(Flaky(1))
    assert len(fake.slept) == 1
    low, high = bounds(policy, 1)
    assert low <= fake.slept[0] <= high


async def test_a_backoff_resets_once_its_loop_succeeded(fake: FakeTime) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=10.0)
    backoff = policy.backoff("relay failed", log, sleep=fake.sleep)
    for _ in range(5):
        await backoff.failed(ConnectionError("refused"))
    assert fake.slept[-1] >= bounds(policy, 5)[0]

    backoff.succeeded()
    delay = await backoff.failed(ConnectionError("refused"))
    low, high = bounds(policy, 1)
    assert low <= delay <= high
    assert backoff.failures == 1


async def test_a_backoff_logs_one_warning_per_failure_with_its_delay(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tests.retry")
    backoff = RetryPolicy().backoff("relay failed", log, sleep=fake.sleep)
    delays = [await backoff.failed(OSError("gone")) for _ in range(3)]

    lines = warnings_of(caplog)
    assert len(lines) == 3
    for line, delay in zip(lines, delays, strict=True):
        assert line.startswith("relay failed (OSError: gone)")
        assert f"trying again in {delay:.1f}s" in line


async def test_log_every_keeps_a_long_wait_to_one_line_every_few_seconds(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tests.retry")
    policy = RetryPolicy(initial_delay=0.2, max_delay=1.0)
    retrying = policy.retrying(
        "waiting on the database", log, sleep=fake.sleep, clock=fake.clock, log_every=3.0
    )
    await retrying.call(Flaky(30))

    lines = warnings_of(caplog)
    assert 1 < len(lines) <= fake.now / 3.0 + 1
    assert len(lines) < len(fake.slept)


async def test_giving_up_after_a_while_raises_the_last_error(fake: FakeTime) -> None:
    policy = RetryPolicy(initial_delay=0.2, max_delay=1.0)
    flaky = Flaky(failures=1000, error=TimeoutError("database unavailable"))
    retrying = policy.retrying("flaky", log, sleep=fake.sleep, give_up_after=5.0)

    with pytest.raises(TimeoutError, match="database unavailable"):
        await retrying.call(flaky)
    assert 5.0 <= sum(fake.slept) < 5.0 + policy.max_delay


async def test_an_error_it_does_not_retry_on_goes_straight_through(
    fake: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    retrying = RetryPolicy().retrying("flaky", log, retry_on=ConnectionError, sleep=fake.sleep)
    flaky = Flaky(failures=1, error=ValueError("a bug, not an outage"))

    with pytest.raises(ValueError, match="a bug"):
        await retrying.call(flaky)
    assert flaky.calls == 1
    assert fake.slept == []
    assert warnings_of(caplog) == []


async def test_a_stop_ends_the_wait_with_stopped_error_and_no_further_try(
    fake: FakeTime,
) -> None:
    stopping = False

    async def sleep_then_stop(seconds: float) -> None:
        nonlocal stopping
        await fake.sleep(seconds)
        stopping = True

    flaky = Flaky(failures=1000)
    retrying = RetryPolicy().retrying(
        "flaky", log, sleep=sleep_then_stop, stopping=lambda: stopping
    )
    with pytest.raises(StoppedError):
        await retrying.call(flaky)
    assert flaky.calls == 1


async def test_a_cancelled_call_is_not_retried(fake: FakeTime) -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await RetryPolicy().retrying("flaky", log, sleep=fake.sleep).call(cancelled)
    assert fake.slept == []


async def test_a_blocking_call_is_retried_in_a_thread(fake: FakeTime) -> None:
    calls: list[int] = []

    def query(value: int) -> int:
        calls.append(value)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return value * 2

    retrying = RetryPolicy().retrying("query", log, sleep=fake.sleep)
    assert await retrying.in_thread(query, 21) == 42
    assert calls == [21, 21, 21]


def test_the_caps_are_settings_and_the_wait_cap_never_exceeds_the_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRY_INITIAL_DELAY", "0.1")
    monkeypatch.setenv("RETRY_MAX_DELAY", "30")
    monkeypatch.setenv("RETRY_WAIT_MAX_DELAY", "2")
    monkeypatch.setenv("DATABASE_RECONNECT_MAX_DELAY", "0.5")
    settings = RetrySettings(development_mode=True)
    assert settings.retry_policy == RetryPolicy(
        initial_delay=0.1, max_delay=30.0, outage_max_delay=2.0
    )
    assert settings.wait_policy.max_delay == 2.0
    assert settings.wait_policy.outage_cap == 2.0
    assert settings.database_reconnect_max_delay == 0.5
    assert RetryPolicy(max_delay=0.5).capped(2.0).max_delay == 0.5


def test_the_defaults_resume_work_within_about_a_second() -> None:
    settings = RetrySettings(development_mode=True)
    assert settings.wait_policy.max_delay <= 1.0
    assert settings.retry_policy.max_delay == 10.0
    assert settings.retry_policy.outage_cap <= 1.0
    assert settings.database_reconnect_max_delay <= 0.25
