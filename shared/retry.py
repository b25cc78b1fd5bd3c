"""The one retry policy of the services: capped exponential back-off with jitter.

Everything that waits on RabbitMQ or PostgreSQL retries through here: the skeleton's
start-up (shared/service.py), the command batcher, the outbox relay, the notifier's
planning and the expiry service's reads of the event store. So they all back off
alike, log alike, and start again from the first delay once a try succeeds.

- `policy.retrying(what, log)` is a tenacity `AsyncRetrying`: `await it.call(fn, *args)`
  (or `it.in_thread(blocking_fn, *args)`) runs `fn` until it returns. Each call counts
  its tries afresh, so the back-off resets after a success by construction.
- `policy.backoff(what, log)` is for a loop that supervises a long-running task:
  `await backoff.failed(error)` after a failure, `backoff.succeeded()` once it made
  progress again.

A failure that is a dependency out of reach (`is_outage`: the broker or the database
refused, dropped or timed out a connection) is capped lower, at `outage_max_delay`
(RETRY_WAIT_MAX_DELAY): the work is not failing, it waits for the dependency, and must
resume within about that long of its return however long the outage was. Any other
failure (a bug, a bad row) backs off to the full cap, so it is not hammered.

The delay after the n-th failed try is drawn uniformly from [d/2, d], where
d = min(cap, initial_delay * 2**(n-1)) ("equal jitter"): never above the cap,
never below half the back-off (a dependency that is down is not hammered), and spread
so that instances failing together do not all retry in step. Each failed try is
logged once at WARNING with that delay (or once every `log_every` seconds, for a
wait that would otherwise log several lines a second).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar, cast

import aiormq.exceptions
import eventsourcing.persistence
import psycopg
from pydantic import Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_base, wait_exponential, wait_random_exponential

from shared.settings import ServiceSettings

__all__ = ["Backoff", "RetryPolicy", "RetrySettings", "Retrying", "StoppedError", "is_outage"]

P = ParamSpec("P")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class StoppedError(Exception):
    """A retry gave up because its owner is stopping (not because the fault persisted)."""


def never() -> bool:
    return False


# What a dependency out of reach raises: refused, reset or timed-out connections (aiormq's
# connection errors are ConnectionErrors), a channel whose connection went, psycopg's
# OperationalError (a lost or refused connection, an administrator's shutdown, a pool that
# found no connection in time), and eventsourcing's wrappers of those.
_OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    aiormq.exceptions.ChannelInvalidStateError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
    eventsourcing.persistence.ConnectionUnavailableError,
)


def is_outage(error: BaseException | None) -> bool:
    """The error, or one it was raised from, says a dependency is out of reach."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, _OUTAGES):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


class Retrying(AsyncRetrying):
    """tenacity's `AsyncRetrying`, with typed ways to call through it."""

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, await self(fn, *args, **kwargs))

    async def in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A blocking call (a database query), each try in a worker thread."""

        async def in_thread() -> T:
            return await asyncio.to_thread(fn, *args, **kwargs)

        return await self.call(in_thread)


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay: float = 0.2
    max_delay: float = 10.0
    # The cap for an outage (is_outage); None: the same as max_delay.
    outage_max_delay: float | None = None

    @property
    def outage_cap(self) -> float:
        if self.outage_max_delay is None:
            return self.max_delay
        return min(self.max_delay, self.outage_max_delay)

    def capped(self, max_delay: float) -> RetryPolicy:
        """The same policy with a lower cap (never a higher one), for outages too."""
        return replace(
            self,
            max_delay=min(self.max_delay, max_delay),
            outage_max_delay=min(self.outage_cap, max_delay),
        )

    def wait(self) -> wait_base:
        """tenacity's strategy: the outage cap for an outage, the full cap otherwise."""
        return _WaitByFailure(self.failing_wait(), self.outage_wait())

    def failing_wait(self) -> wait_base:
        return _jittered(self.initial_delay, self.max_delay)

    def outage_wait(self) -> wait_base:
        return _jittered(self.initial_delay, self.outage_cap)

    def retrying(
        self,
        what: str,
        log: logging.Logger,
        *,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        give_up_after: float | None = None,
        stopping: Callable[[], bool] = never,
        sleep: Sleep = asyncio.sleep,
        log_every: float = 0.0,
        traceback: bool = False,
        clock: Clock = time.monotonic,
    ) -> Retrying:
        """Retries `retry_on` errors until the call succeeds.

        `give_up_after` seconds of waiting re-raise the last error. When `stopping()`
        turns true (checked after each failure and each sleep), StoppedError is raised
        instead of trying again; pass a `sleep` that returns early on a stop, too.
        """
        warn = _Warning(what, log, log_every=log_every, traceback=traceback, clock=clock)

        def give_up(state: RetryCallState) -> bool:
            if stopping():
                return True
            return give_up_after is not None and state.idle_for >= give_up_after

        def raise_last(state: RetryCallState) -> None:
            assert state.outcome is not None
            if stopping():
                raise StoppedError(what) from state.outcome.exception()
            state.outcome.result()  # re-raises the last error

        async def sleep_unless_stopping(seconds: float) -> None:
            await sleep(seconds)
            if stopping():
                raise StoppedError(what)

        return Retrying(
            retry=retry_if_exception_type(retry_on),
            wait=self.wait(),
            stop=give_up,
            sleep=sleep_unless_stopping,
            before_sleep=warn.before_sleep,
            retry_error_callback=raise_last,
        )

    def backoff(
        self,
        what: str,
        log: logging.Logger,
        *,
        sleep: Sleep = asyncio.sleep,
        traceback: bool = False,
        clock: Clock = time.monotonic,
    ) -> Backoff:
        return Backoff(self, what, log, sleep=sleep, traceback=traceback, clock=clock)


def _jittered(initial_delay: float, cap: float) -> wait_base:
    """Half the back-off fixed, plus up to half again at random."""
    half, half_cap = initial_delay / 2, cap / 2
    return wait_exponential(multiplier=half, max=half_cap) + wait_random_exponential(
        multiplier=half, max=half_cap
    )


class _WaitByFailure(wait_base):
    """Picks the strategy by what the try failed with."""

    def __init__(self, failing: wait_base, outage: wait_base) -> None:
        self._failing = failing
        self._outage = outage

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        chosen = self._outage if is_outage(error) else self._failing
        return float(chosen(retry_state))


class RetrySettings(ServiceSettings):
    """The settings of a service run by the skeleton: the contract's, and the retry delays."""

    # RETRY_INITIAL_DELAY: the first back-off, doubled each failed try up to a cap.
    retry_initial_delay: float = Field(default=0.2, gt=0)
    # RETRY_MAX_DELAY: the cap in running work (the relay, planning, event-store reads)
    # when it fails for another reason than an outage.
    retry_max_delay: float = Field(default=10.0, gt=0)
    # RETRY_WAIT_MAX_DELAY: the cap where work waits on a dependency (start-up, the
    # broker's reconnects, a batch of commands, any work failing with an outage): work
    # resumes within about this long of the dependency's return.
    retry_wait_max_delay: float = Field(default=1.0, gt=0)
    # DATABASE_RECONNECT_MAX_DELAY: the cap between a database pool's tries to replace a
    # lost connection (shared/database.py). Lower than the wait cap: a try costs one
    # refused connection and logs nothing, and every query waits for it.
    database_reconnect_max_delay: float = Field(default=0.25, gt=0)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.retry_initial_delay, self.retry_max_delay, self.retry_wait_max_delay
        )

    @property
    def wait_policy(self) -> RetryPolicy:
        return self.retry_policy.capped(self.retry_wait_max_delay)


class Backoff:
    """The policy's delays for a supervising loop: `failed` waits, `succeeded` resets."""

    def __init__(
        self,
        policy: RetryPolicy,
        what: str,
        log: logging.Logger,
        *,
        sleep: Sleep = asyncio.sleep,
        traceback: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self._failing = policy.failing_wait()
        self._outage = policy.outage_wait()
        self._sleep = sleep
        self._warn = _Warning(what, log, traceback=traceback, clock=clock)
        # tenacity's strategies read the try number from a call state; this loop's own.
        self._state = RetryCallState(AsyncRetrying(), fn=None, args=(), kwargs={})
        self.failures = 0

    def succeeded(self) -> None:
        self.failures = 0

    def next_delay(self, error: BaseException | None = None) -> float:
        """The delay after the next failure, capped by what it failed with (is_outage)."""
        self._state.attempt_number = self.failures + 1
        wait = self._outage if is_outage(error) else self._failing
        return float(wait(self._state))

    async def failed(self, error: BaseException) -> float:
        """Log the failure once with the delay, sleep that long, and return it."""
        delay = self.next_delay(error)
        self.failures += 1
        self._warn(error, delay, self.failures)
        await self._sleep(delay)
        return delay


class _Warning:
    """One WARNING per failed try (or per `log_every` seconds), naming the next delay."""

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        *,
        log_every: float = 0.0,
        traceback: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self._what = what
        self._log = log
        self._log_every = log_every
        self._traceback = traceback
        self._clock = clock
        self._last: float | None = None

    def __call__(self, error: BaseException | None, delay: float, attempt: int) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._log_every:
            return
        self._last = now
        self._log.warning(
            "%s (%s); trying again in %.1fs (attempt %d)",
            self._what,
            describe(error),
            delay,
            attempt,
            exc_info=error if self._traceback else None,
        )

    def before_sleep(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        assert state.next_action is not None
        self(state.outcome.exception(), state.next_action.sleep, state.attempt_number)


def describe(error: BaseException | None) -> str:
    if error is None:
        return "no error"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
