"""The one skeleton the three services run in: dependencies, readiness, signals, stop.

    service = Service("notifier", settings, broker, open_runtime, database=..., checks=...)
    serve(service)  # python -m services.notifier: until SIGTERM/SIGINT, then exit 0

In order, `run()`:
1. serves /healthz, /readyz and /metrics (shared/ops_http.py) at once: alive, not ready;
2. connects to RabbitMQ, then waits until PostgreSQL answers, retrying each with the one
   retry policy (shared/retry.py: one WARNING per failed try, capped at
   RETRY_WAIT_MAX_DELAY so work starts within about that long of the dependency's
   return); nothing exits because a dependency is down;
3. opens the service's runtime (in a thread: it opens database pools), starts it, then
   starts the broker's subscribers;
4. on SIGTERM/SIGINT: not ready at once, then stops consuming, stops the runtime (which
   may still publish), closes the broker and the database, within 10 s in all.

One connection per service: the FastStream broker's robust connection. Whatever
consumes or publishes with aio-pika directly opens its channels on it. When RabbitMQ
goes away later, aio-pika reconnects it (every RETRY_WAIT_MAX_DELAY, one WARNING a try)
and restores channels, queues and consumers; the runtime's loops retry through the
policy. (aio-pika 10.2.1 can deadlock that reconnection when RabbitMQ cancels a consumer
just before it closes the connection, as when a vhost is deleted: the service then stays
not ready, truthfully, until restarted.)

Readiness: `broker` opens and closes a channel on that connection (a deleted vhost
closes it); `database` opens a connection of its own (bounded: it fails within 2 s when
PostgreSQL is away, where a pool would wait 30 s), then runs the service's own query;
then the service's other checks. Until the runtime runs, each says what start-up waits
for.

Why not FastStream's app lifecycle (`FastStream(broker).run()`): it raises when
RabbitMQ is down at start (the services exited with 1 within 2 s), has no phase where
the process is alive but waiting, and runs the shutdown hooks concurrently with a
start-up that has not finished. The broker stays FastStream's: the invitation service's
intake and its AsyncAPI document are FastStream subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import psycopg
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.exceptions import AMQPError
from faststream.rabbit import RabbitBroker
from prometheus_client import REGISTRY, CollectorRegistry

from shared.database import cap_pool_reconnect_delay, postgres_conninfo
from shared.event_loop import run
from shared.ops_http import Check, NotReadyError, OpsServer, start_ops_http
from shared.retry import RetrySettings, describe
from shared.telemetry import install_tracing

__all__ = ["Runtime", "Service", "close_channel", "database_answers", "serve", "service_broker"]

log = logging.getLogger(__name__)

# The contract gives a service 10 s from SIGTERM to exit; a little is kept for the exit.
STOP_WITHIN = 9.0
# How long the database may take to answer one try at start-up (libpq's minimum is 2).
DATABASE_CONNECT_TIMEOUT = 2
# How long one connection attempt to RabbitMQ may take: unbounded, an attempt to a host
# that drops packets waits out TCP's own timeout (minutes) before the next one.
AMQP_CONNECT_TIMEOUT = 5.0


def service_broker(settings: RetrySettings, name: str, **options: Any) -> RabbitBroker:
    """The service's broker: its one RabbitMQ connection (no I/O until `connect`).

    `name` names the connection in RabbitMQ's management; `reconnect_interval`: after a
    lost connection aio-pika tries again this often, each try bounded by `timeout`;
    `logger=None`: FastStream's per-message lines are off (the services log their own).
    """
    options.setdefault("logger", None)
    url = urlsplit(settings.amqp_url)
    query = "&".join(part for part in (url.query, urlencode({"name": name})) if part)
    return RabbitBroker(
        url._replace(query=query).geturl(),
        reconnect_interval=settings.wait_policy.max_delay,
        timeout=AMQP_CONNECT_TIMEOUT,
        **options,
    )


async def close_channel(channel: AbstractChannel) -> None:
    """Close a component's channel on the service's connection, whatever its state (on a
    lost connection it is gone already; a stop must go on)."""
    with contextlib.suppress(Exception):
        if not channel.is_closed:
            await channel.close()


def database_answers(database_url: str) -> None:
    """One short-lived connection and `SELECT 1` (PostgreSQL); SQLite has nothing to wait for.

    Run before the runtime opens its pools, whose first connection would wait 30 s.
    """
    if urlsplit(database_url).scheme not in ("postgresql", "postgres"):
        return
    conninfo = postgres_conninfo(database_url)
    with psycopg.connect(
        conninfo, connect_timeout=DATABASE_CONNECT_TIMEOUT, autocommit=True
    ) as connection:
        connection.execute("SELECT 1")


class Runtime(Protocol):
    """What a service runs once RabbitMQ and PostgreSQL answer."""

    async def start(self) -> None:
        """Start the work; safe to call again after it failed part-way."""
        ...

    async def stop(self) -> None:
        """Finish or hand back what is in flight, within a few seconds; the broker is open."""
        ...

    def close(self) -> None:
        """Close the database pools (blocking; called in a thread)."""
        ...


R = TypeVar("R", bound=Runtime)
P = ParamSpec("P")
T = TypeVar("T")
RuntimeCheck = Callable[[R], Awaitable[object]]


class Service(Generic[R]):
    def __init__(
        self,
        name: str,
        settings: RetrySettings,
        broker: RabbitBroker,
        open_runtime: Callable[[AbstractRobustConnection], R],
        *,
        database: RuntimeCheck[R],
        checks: Mapping[str, RuntimeCheck[R]] | None = None,
        before_scrape: Iterable[Callable[[R], Awaitable[None]]] = (),
        registries: Sequence[CollectorRegistry] = (REGISTRY,),
    ) -> None:
        """`open_runtime` is blocking (run in a thread) and gets the broker's connection.

        `database` is the service's own query on its store (readiness's `database` runs it
        once PostgreSQL answers); `checks` are its other readiness checks.
        """
        self.name = name
        self.broker = broker
        self._settings = settings
        self._open_runtime = open_runtime
        self._database = database
        self._runtime_checks = dict(checks or {})
        self._before_scrape = list(before_scrape)
        self._registries = registries
        self._connection: AbstractRobustConnection | None = None
        self._runtime: R | None = None
        self._runtime_started = False
        self._running = False
        self._waiting_for = "starting"
        self._stop_requested = asyncio.Event()
        self.ops: OpsServer | None = None
        self._tracer_provider: Any = None

    @property
    def runtime(self) -> R | None:
        """The runtime once it is open (it may still be starting)."""
        return self._runtime

    def stop(self) -> None:
        """Ask `run()` to stop (what SIGTERM and SIGINT do)."""
        self._stop_requested.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        cap_pool_reconnect_delay(self._settings.database_reconnect_max_delay)
        # Off (nothing installed) unless OTEL_EXPORTER_OTLP_ENDPOINT is set (shared/telemetry.py).
        self._tracer_provider = install_tracing(self.name)
        self.ops = await start_ops_http(
            self._settings.http_port,
            checks=self._checks(),
            before_scrape=[self._when_running(scrape) for scrape in self._before_scrape],
            registries=self._registries,
        )
        starting = asyncio.create_task(self._start(), name=f"{self.name}-start")
        stop_requested = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # not a dependency's fault (those are retried): a bug
                await stop_requested
        finally:
            for task in (starting, stop_requested):
                task.cancel()
            await asyncio.gather(starting, stop_requested, return_exceptions=True)
            await self._shutdown()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    # -- start-up ---------------------------------------------------------------------------

    async def _start(self) -> None:
        wait = self._settings.wait_policy
        connection = await wait.retrying("waiting for the broker", log).call(
            self._attempt, "waiting for the broker", self._connect
        )
        self._connection = connection
        runtime = await wait.retrying("waiting for the database", log).call(
            self._attempt, "waiting for the database", self._open, connection
        )
        self._runtime = runtime
        await wait.retrying("could not start", log).call(
            self._attempt, "starting", self._start_work
        )
        self._running = True
        log.info("%s started", self.name)

    async def _attempt(
        self, waiting_for: str, step: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """One try of a start-up step; what it waits for is readiness's answer meanwhile."""
        self._waiting_for = waiting_for
        try:
            return await step(*args, **kwargs)
        except Exception as error:
            self._waiting_for = f"{waiting_for}: {describe(error)}"[:300]
            raise

    async def _connect(self) -> AbstractRobustConnection:
        return await self.broker.connect()

    async def _open(self, connection: AbstractRobustConnection) -> R:
        def open_runtime() -> R:
            database_answers(self._settings.database_url)
            return self._open_runtime(connection)

        return await asyncio.to_thread(open_runtime)

    async def _start_work(self) -> None:
        assert self._runtime is not None
        self._runtime_started = True
        await self._runtime.start()
        if not self.broker.running:  # a retry after it failed part-way
            await self.broker.start()

    # -- readiness ----------------------------------------------------------------------------

    def _checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {
            "broker": self._broker_answers,
            "database": self._database_answers,
        }
        for name, check in self._runtime_checks.items():
            checks[name] = self._when_running(check, fail=True)
        return checks

    async def _broker_answers(self) -> None:
        """The connection is up and RabbitMQ answers on it (opens and closes a channel)."""
        connection = self._connection
        if connection is None:
            raise NotReadyError(self._waiting_for)
        if connection.is_closed or not connection.connected.is_set():
            raise NotReadyError("connection lost; reconnecting")
        try:
            channel = await connection.channel()
        except RuntimeError:  # closed between the check and the channel ("... closed")
            raise NotReadyError("connection lost; reconnecting") from None
        except AMQPError as error:  # closed by the broker meanwhile (a deleted vhost)
            raise NotReadyError(f"connection lost; reconnecting ({error!r})") from None
        await channel.close()

    async def _database_answers(self) -> object:
        await asyncio.to_thread(database_answers, self._settings.database_url)
        return await self._when_running(self._database, fail=True)()

    def _when_running(
        self, call: Callable[[R], Awaitable[Any]], *, fail: bool = False
    ) -> Callable[[], Awaitable[Any]]:
        async def when_running() -> Any:
            runtime = self._runtime
            if runtime is not None and self._running:
                return await call(runtime)
            if fail:
                raise NotReadyError(self._waiting_for)
            return None

        return when_running

    # -- stop -----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        deadline = asyncio.get_running_loop().time() + STOP_WITHIN
        if self.ops is not None:
            self.ops.stopping = True
        self._running = False
        runtime = self._runtime
        # Consumers first (in-flight messages finish), then the work, which may still
        # publish, then the connection, then the database.
        for subscriber in self.broker.subscribers:
            await self._bounded("stopping a subscriber", subscriber.stop(), deadline)
        if runtime is not None and self._runtime_started:
            await self._bounded("stopping the runtime", runtime.stop(), deadline)
        await self._bounded("closing the broker connection", self.broker.stop(), deadline)
        if runtime is not None:
            await self._bounded("closing the database", asyncio.to_thread(runtime.close), deadline)
        if self.ops is not None:
            await self.ops.stop()
        if self._tracer_provider is not None:  # flushes the last spans (bounded by the SDK)
            await self._bounded(
                "flushing the traces", asyncio.to_thread(self._tracer_provider.shutdown), deadline
            )
        log.info("%s stopped", self.name)

    async def _bounded(self, what: str, step: Awaitable[object], deadline: float) -> None:
        remaining = max(0.1, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(step, remaining)
        except TimeoutError:
            log.warning("%s took too long; going on with the stop", what)
        except Exception as error:
            log.warning("%s failed (%s); going on with the stop", what, describe(error))


def serve(service: Service[Any]) -> None:
    """Run `service` until SIGTERM/SIGINT, then exit with 0: `python -m services.<name>`."""
    run(_run_then_exit(service))


async def _run_then_exit(service: Service[Any]) -> None:
    await service.run()
    # The stop is complete. A blocking call still waiting on a dependency that went away
    # (a pool waits 30 s for a connection) would hold the exit: the interpreter joins the
    # worker threads. Nothing is left for it to do, so it is not waited for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
