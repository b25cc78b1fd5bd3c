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

The delay after the n-th failed try is drawn uniformly from [d/2, d], where
d = min(max_delay, initial_delay * 2**(n-1)) ("equal jitter"): never above the cap,
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

from pydantic import Field
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_base, wait_exponential, wait_random_exponential

from shared.settings import ServiceSettings

__all__ = ["Backoff", "RetryPolicy", "RetrySettings", "Retrying", "StoppedError"]

P = ParamSpec("P")
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class StoppedError(Exception):
    """A retry gave up because its owner is stopping (not because the fault persisted)."""


def never() -> bool:
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

    def capped(self, max_delay: float) -> RetryPolicy:
        """The same policy with a lower cap (never a higher one)."""
        return replace(self, max_delay=min(self.max_delay, max_delay))

    def wait(self) -> wait_base:
        """tenacity's strategies: half the back-off fixed, plus up to half again at random."""
        half, cap = self.initial_delay / 2, self.max_delay / 2
        return wait_exponential(multiplier=half, max=cap) + wait_random_exponential(
            multiplier=half, max=cap
        )

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


class RetrySettings(ServiceSettings):
    """The settings of a service run by the skeleton: the contract's, and the retry delays."""

    # RETRY_INITIAL_DELAY: the first back-off, doubled each failed try up to a cap.
    retry_initial_delay: float = Field(default=0.2, gt=0)
    # RETRY_MAX_DELAY: the cap in running work (the relay, planning, event-store reads).
    retry_max_delay: float = Field(default=10.0, gt=0)
    # RETRY_WAIT_MAX_DELAY: the cap where work waits on a dependency (start-up, the
    # broker's reconnects, a batch of commands, the database pools' reconnects): work
    # resumes within about this long of the dependency's return.
    retry_wait_max_delay: float = Field(default=1.0, gt=0)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_initial_delay, self.retry_max_delay)

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
        self._wait = policy.wait()
        self._sleep = sleep
        self._warn = _Warning(what, log, traceback=traceback, clock=clock)
        # tenacity's strategies read the try number from a call state; this loop's own.
        self._state = RetryCallState(AsyncRetrying(), fn=None, args=(), kwargs={})
        self.failures = 0

    def succeeded(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        self._state.attempt_number = self.failures + 1
        return float(self._wait(self._state))

    async def failed(self, error: BaseException) -> float:
        """Log the failure once with the delay, sleep that long, and return it."""
        delay = self.next_delay()
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
