"""The one place that reads settings and wires the invitation service together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faststream import FastStream
from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI

from services.invitation.adapters.relay import OutboxRelay, tracking_recorder
from services.invitation.adapters.relay_lease import relay_lease
from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.batcher import Batcher
from services.invitation.entrypoints.commands import register_intake
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from services.invitation.settings import InvitationSettings
from shared import metrics
from shared.contract import QUERIES, Reply
from shared.ops_http import NotReadyError, add_ops_http, blocking, broker_checks
from shared.secrets import HashCost, TempPasswordHasher
from shared.topology import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EVENTS_EXCHANGE


@dataclass
class Runtime:
    service: InvitationService
    batcher: Batcher
    relay: OutboxRelay | None


def build_broker(settings: InvitationSettings) -> RabbitBroker:
    # graceful_timeout < 10 s: the contract gives a stop 10 s in all.
    # apply_types=False: no dependency injection per message. The intake takes the whole
    # message and parses it itself; FastDepends validating that one argument cost as
    # much CPU as the rest of FastStream's consume path (bench/README.md).
    return RabbitBroker(settings.amqp_url, graceful_timeout=7.0, logger=None, apply_types=False)


def build_app(settings: InvitationSettings) -> FastStream:
    """Nothing connects until the app starts (no I/O here: AsyncAPI generation imports it)."""
    broker = build_broker(settings)
    runtime: Runtime | None = None

    def relay_wake() -> None:
        if runtime is not None and runtime.relay is not None:
            runtime.relay.wake()

    async def submit(item: IncomingCommand) -> Reply:
        assert runtime is not None, "commands are consumed only after start-up"
        if item.name in QUERIES:
            # Straight to the read model in a worker thread: no batch, no transaction of
            # the batcher's. A command already answered was committed with its read-model
            # rows, so the query sees it (read-your-writes).
            return await asyncio.to_thread(runtime.service.ask, item)
        return await runtime.batcher.submit(item)

    def stored_position() -> int:
        """Also the readiness check of the database."""
        if runtime is None:
            raise NotReadyError("starting")
        return int(runtime.service.store.recorder.max_notification_id() or 0)

    async def sample_relay_lag() -> None:
        stored = await asyncio.to_thread(stored_position)
        metrics.EVENT_STORE_POSITION.labels(store="invitations").set(stored)
        if runtime is not None and runtime.relay is not None:
            relay = runtime.relay
            metrics.RELAY_LEADING.labels(relay="outbox").set(int(relay.leading))
            # A standby reports the lag of the instance that relays, from what it recorded.
            published = (
                relay.published_position
                if relay.leading
                else await asyncio.to_thread(relay.recorded_position)
            )
            metrics.RELAY_LAG.labels(relay="outbox").set(max(0, stored - published))

    app = FastStream(
        broker,
        specification=AsyncAPI(title="Invitation service", version="1.0.0"),
    )
    add_ops_http(
        app,
        settings.http_port,
        checks={**broker_checks(broker), "database": blocking(stored_position)},
        before_scrape=[sample_relay_lag],
    )
    register_intake(
        broker, submit, prefetch=settings.command_prefetch, max_bytes=settings.command_max_bytes
    )

    @app.on_startup
    async def start_runtime() -> None:
        nonlocal runtime
        env = store_env(settings.database_url)
        store = InvitationStore(env=env)
        service = InvitationService(
            store,
            secrets_key=settings.secrets_key_bytes,
            hasher=TempPasswordHasher(
                HashCost(
                    time_cost=settings.temp_password_hash_time_cost,
                    memory_kib=settings.temp_password_hash_memory_kib,
                )
            ),
        )
        batcher = Batcher(service, max_batch=settings.batch_max, on_commit=relay_wake)
        relay = None
        if settings.relay_enabled:
            relay = OutboxRelay(
                EventLog(settings.database_url, store=store),
                tracking_recorder(env),
                settings.amqp_url,
                section=settings.relay_section,
                lease=relay_lease(settings.database_url),
            )
        runtime = Runtime(service, batcher, relay)
        batcher.start()

    @app.after_startup
    async def declare_topology_and_relay() -> None:
        await broker.declare_exchange(EVENTS_EXCHANGE)
        dead_exchange = await broker.declare_exchange(DEAD_LETTER_EXCHANGE)
        dead_queue = await broker.declare_queue(DEAD_LETTER_QUEUE)
        await dead_queue.bind(dead_exchange)
        if runtime is not None and runtime.relay is not None:
            runtime.relay.start()

    @app.after_shutdown
    async def stop_runtime() -> None:
        if runtime is None:
            return
        if runtime.relay is not None:
            await runtime.relay.stop()
        await runtime.batcher.stop()
        runtime.service.close()

    return app
