"""The one place that reads settings and wires the invitation service together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

from aio_pika.abc import AbstractRobustConnection
from faststream import FastStream
from faststream.rabbit import RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.specification import AsyncAPI
from prometheus_client import REGISTRY

from services.invitation import metrics
from services.invitation.adapters.relay import OutboxRelay, tracking_recorder
from services.invitation.adapters.relay_lease import relay_lease
from services.invitation.adapters.sender_policy import load_sender_policy
from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.application.senders import SenderGate
from services.invitation.batcher import Batcher
from services.invitation.entrypoints.commands import register_intake
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from services.invitation.settings import InvitationSettings
from shared.contract import QUERIES, Reply
from shared.ops_http import subscribers_consuming
from shared.secrets import HashCost, TempPasswordHasher
from shared.service import Service, service_broker
from shared.telemetry import tracing_enabled
from shared.topology import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EVENTS_EXCHANGE


@dataclass
class Runtime:
    service: InvitationService
    batcher: Batcher
    relay: OutboxRelay | None
    broker: RabbitBroker
    gate: SenderGate

    async def start(self) -> None:
        await self.broker.declare_exchange(EVENTS_EXCHANGE)
        dead_exchange = await self.broker.declare_exchange(DEAD_LETTER_EXCHANGE)
        dead_queue = await self.broker.declare_queue(DEAD_LETTER_QUEUE)
        await dead_queue.bind(dead_exchange)
        self.batcher.start()
        if self.relay is not None:
            self.relay.start()

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        await self.batcher.stop()

    def close(self) -> None:
        self.service.close()

    def stored_position(self) -> int:
        """Also the readiness check of the database."""
        return int(self.service.store.recorder.max_notification_id() or 0)


def build_broker(settings: InvitationSettings) -> RabbitBroker:
    # graceful_timeout < 10 s: the contract gives a stop 10 s in all.
    # apply_types=False: no dependency injection per message. The intake takes the whole
    # message and parses it itself; FastDepends validating that one argument cost as
    # much CPU as the rest of FastStream's consume path (bench/README.md).
    # Tracing (off unless an OTLP endpoint is configured): FastStream's own middleware
    # makes the intake's consume span from the command's `traceparent` header, and the
    # reply's publish span (shared/telemetry.py).
    middlewares = (RabbitTelemetryMiddleware(),) if tracing_enabled() else ()
    return service_broker(
        settings,
        "invitation",
        graceful_timeout=7.0,
        apply_types=False,
        middlewares=middlewares,
    )


def open_runtime(
    settings: InvitationSettings, broker: RabbitBroker, connection: AbstractRobustConnection
) -> Runtime:
    """Opens the store (blocking: the skeleton calls it in a thread once PostgreSQL answers)."""
    path = settings.sender_policy  # checked when the settings were read; read again here
    gate = SenderGate(
        settings.internal_sender_names, None if path is None else load_sender_policy(path)
    )
    env = store_env(settings.database_url)
    store = InvitationStore(env=env)
    try:
        service = InvitationService(
            store,
            secrets_key=settings.secrets_key_bytes,
            hasher=TempPasswordHasher(
                HashCost(
                    time_cost=settings.temp_password_hash_time_cost,
                    memory_kib=settings.temp_password_hash_memory_kib,
                )
            ),
            mass_invite_slice=settings.mass_invite_slice,
        )
        relay = None
        if settings.relay_enabled:
            relay = OutboxRelay(
                EventLog(settings.database_url, store=store),
                tracking_recorder(env),
                connection,
                section=settings.relay_section,
                lease=relay_lease(settings.database_url, settings.relay_lease_timings),
                policy=settings.retry_policy,
                wait_policy=settings.wait_policy,
            )
        batcher = Batcher(
            service,
            max_batch=settings.batch_max,
            on_commit=relay.wake if relay is not None else lambda: None,
            policy=settings.wait_policy,
            slice_rows=settings.mass_invite_slice,
            slice_seconds=settings.mass_invite_slice_seconds,
        )
    except BaseException:
        store.close()
        raise
    return Runtime(service, batcher, relay, broker, gate)


def build_service(settings: InvitationSettings) -> Service[Runtime]:
    """Nothing connects until `run()` (no I/O here: AsyncAPI generation builds it too)."""
    broker = build_broker(settings)
    consuming = subscribers_consuming(broker)

    async def sample_relay_lag(runtime: Runtime) -> None:
        if runtime.relay is not None:
            # First, before any query: with the database away the queries below fail,
            # and a stale 1 would read as a second leader beside the one taking over.
            metrics.RELAY_LEADING.labels(relay="outbox").set(int(runtime.relay.leading))
        stored = await asyncio.to_thread(runtime.stored_position)
        metrics.EVENT_STORE_POSITION.labels(store="invitations").set(stored)
        if runtime.relay is not None:
            relay = runtime.relay
            # A standby reports the lag of the instance that relays, from what it recorded.
            published = (
                relay.published_position
                if relay.leading
                else await asyncio.to_thread(relay.recorded_position)
            )
            metrics.RELAY_LAG.labels(relay="outbox").set(max(0, stored - published))

    service = Service(
        "invitation",
        settings,
        broker,
        partial(open_runtime, settings, broker),
        database=lambda runtime: asyncio.to_thread(runtime.stored_position),
        checks={"consuming": lambda _: consuming()},
        before_scrape=[sample_relay_lag],
        # prometheus_client's default registry holds only its process collectors.
        registries=(REGISTRY, metrics.REGISTRY),
    )

    async def submit(item: IncomingCommand) -> Reply:
        runtime = service.runtime
        assert runtime is not None, "commands are consumed only once the runtime is open"
        if item.name in QUERIES:
            # Past the sender gate, straight to the read model in a worker thread: no
            # batch, no transaction of the batcher's. A command already answered was
            # committed with its read-model rows, so the query sees it (read-your-writes).
            return await asyncio.to_thread(runtime.service.ask, item)
        return await runtime.batcher.submit(item)

    def authorize(item: IncomingCommand) -> Reply | None:
        runtime = service.runtime
        assert runtime is not None, "commands are consumed only once the runtime is open"
        return runtime.gate.refusal(item)

    register_intake(
        broker,
        submit,
        authorize,
        prefetch=settings.command_prefetch,
        max_bytes=settings.command_max_bytes,
    )
    return service


def build_app(settings: InvitationSettings) -> FastStream:
    """The service's broker as a FastStream app: what its AsyncAPI document is made from
    (services/invitation/asyncapi.py). `python -m services.invitation` runs `build_service`."""
    return FastStream(
        build_service(settings).broker,
        specification=AsyncAPI(title="Invitation service", version="1.0.0"),
    )
