"""The one place that reads settings and wires the notifier together."""

from __future__ import annotations

import asyncio

from faststream import FastStream
from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI

from services.invitation.eventstore import (
    EventLog,
    PostgresInvitationRecorder,
    SealedPasswords,
    SideTables,
    SQLiteInvitationRecorder,
)
from services.notifier.adapters.commands import CommandPublisher
from services.notifier.adapters.composer import Composer
from services.notifier.adapters.ledger import open_ledger
from services.notifier.adapters.rendering import Renderer
from services.notifier.adapters.report_csv import MassInviteReports
from services.notifier.adapters.smtp import SmtpConfig, SmtpMailer
from services.notifier.delivery_reports import DeliveryReports
from services.notifier.domain.delivery import RetryPolicy
from services.notifier.domain.planning import EVENT_TYPES
from services.notifier.entrypoints.events import WakeupConsumer
from services.notifier.metrics import Metrics
from services.notifier.planner import Planner
from services.notifier.runtime import NotifierRuntime
from services.notifier.sender import DeliveryEngine
from services.notifier.settings import NotifierSettings
from shared.ops_http import NotReadyError, add_ops_http, blocking, broker_checks
from shared.secrets import TokenSigner


def smtp_config(settings: NotifierSettings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=None
        if settings.smtp_password is None
        else settings.smtp_password.get_secret_value(),
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,
    )


def sealed_copies(event_log: EventLog) -> SideTables:
    """The invitation store's side table of sealed passwords (its recorder reads it)."""
    recorder = event_log.store.recorder
    if not isinstance(recorder, PostgresInvitationRecorder | SQLiteInvitationRecorder):
        raise TypeError(f"the invitation store has no sealed copies: {type(recorder)}")
    return recorder


def build_runtime(settings: NotifierSettings, publisher: CommandPublisher) -> NotifierRuntime:
    """Connects to the database (blocking: call it from a thread in async code)."""
    store = open_ledger(settings.database_url)
    # Only what planning reads: the planner skips the other types in SQL.
    event_log = EventLog(settings.database_url, event_types=EVENT_TYPES)
    metrics = Metrics()
    reports = DeliveryReports(store, publisher, metrics=metrics)
    config = smtp_config(settings)
    engine = DeliveryEngine(
        store,
        Composer(
            Renderer(settings.product_name),
            TokenSigner(settings.secrets_key_bytes),
            settings.smtp_from,
            settings.public_base_url,
        ),
        SealedPasswords(sealed_copies(event_log), settings.secrets_key_bytes),
        lambda: SmtpMailer(config),
        connections=settings.smtp_connections,
        policy=RetryPolicy(
            base_delay=settings.notifier_retry_base_delay,
            max_delay=settings.notifier_retry_max_delay,
            max_attempts=settings.notifier_max_attempts,
        ),
        metrics=metrics,
        poll_interval=settings.notifier_poll_interval,
        on_sent=reports.wake,
        reports=MassInviteReports(event_log.store.recorder.read_model),  # type: ignore[attr-defined]
    )
    planner = Planner(event_log, store, batch_size=settings.notifier_plan_batch)
    return NotifierRuntime(
        store,
        planner,
        engine,
        reports,
        metrics=metrics,
        poll_interval=settings.notifier_poll_interval,
        on_close=event_log.close,
    )


def build_app(settings: NotifierSettings) -> FastStream:
    """Nothing connects until the app starts (no I/O here: AsyncAPI generation imports it)."""
    # The app's lifecycle and the readiness ping; the wake-ups have their own aio-pika
    # consumer (entrypoints/events.py). graceful_timeout < 10 s: the contract gives a
    # stop 10 s in all.
    broker = RabbitBroker(settings.amqp_url, graceful_timeout=3.0, logger=None)
    app = FastStream(broker, specification=AsyncAPI(title="Notifier", version="1.0.0"))
    publisher = CommandPublisher(settings.amqp_url, settings.notifier_commands_exchange)
    runtime: NotifierRuntime | None = None

    def wake(_: object) -> None:
        if runtime is not None:
            runtime.wake()

    wakeups = WakeupConsumer(
        settings.amqp_url,
        settings.notifier_queue,
        wake,
        event_types=EVENT_TYPES,
        prefetch=settings.notifier_prefetch,
    )

    async def consuming() -> None:
        if not wakeups.consuming:
            raise NotReadyError(f"not consuming {settings.notifier_queue}")

    def planned_position() -> int:
        """Also the readiness check of the database."""
        if runtime is None:
            raise NotReadyError("starting")
        return runtime.store.position()

    async def sample_position() -> None:
        if runtime is not None:
            runtime.metrics.position.set(await asyncio.to_thread(planned_position))

    ops = add_ops_http(
        app,
        settings.http_port,
        checks={
            "broker": broker_checks(broker)["broker"],
            "consuming": consuming,
            "database": blocking(planned_position),
        },
        before_scrape=[sample_position],
    )

    @app.on_startup
    async def start_runtime() -> None:
        nonlocal runtime
        runtime = await asyncio.to_thread(build_runtime, settings, publisher)
        if ops is not None:
            ops.add_registry(runtime.metrics.registry)
        await broker.connect()
        await wakeups.start()

    @app.after_startup
    async def run() -> None:
        assert runtime is not None
        runtime.start()

    @app.on_shutdown
    async def stop_runtime() -> None:
        await wakeups.stop()
        if runtime is not None:
            await runtime.stop()
            await publisher.close()
            await asyncio.to_thread(runtime.close)

    return app
