"""The one place that reads settings and wires the notifier together."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial

from aio_pika.abc import AbstractRobustConnection
from prometheus_client import REGISTRY

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
from services.notifier.delivery_log import DeliveryLog
from services.notifier.delivery_reports import DeliveryReports
from services.notifier.domain.delivery import RetryPolicy
from services.notifier.domain.planning import EVENT_TYPES
from services.notifier.entrypoints.events import WakeupConsumer
from services.notifier.metrics import Metrics
from services.notifier.planner import Planner
from services.notifier.runtime import NotifierRuntime
from services.notifier.sender import DeliveryEngine
from services.notifier.settings import NotifierSettings
from shared.ops_http import NotReadyError
from shared.secrets import TokenSigner
from shared.senders import broker_user
from shared.service import Service, service_broker
from shared.telemetry import tracing_enabled


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
        transfer_timeout=settings.transfer_timeout,
    )


def sealed_copies(event_log: EventLog) -> SideTables:
    """The invitation store's side table of sealed passwords (its recorder reads it)."""
    recorder = event_log.store.recorder
    if not isinstance(recorder, PostgresInvitationRecorder | SQLiteInvitationRecorder):
        raise TypeError(f"the invitation store has no sealed copies: {type(recorder)}")
    return recorder


def build_runtime(
    settings: NotifierSettings, publisher: CommandPublisher, metrics: Metrics | None = None
) -> NotifierRuntime:
    """Connects to the database (blocking: call it from a thread in async code)."""
    store = open_ledger(settings.database_url)
    try:
        # Only what planning reads: the planner skips the other types in SQL.
        event_log = EventLog(settings.database_url, event_types=EVENT_TYPES)
    except BaseException:
        store.close()
        raise
    metrics = metrics or Metrics()
    reports = DeliveryReports(store, publisher, metrics=metrics, policy=settings.retry_policy)
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
        on_report_due=reports.wake,
        reports=MassInviteReports(event_log.store.recorder.read_model),  # type: ignore[attr-defined]
        delivery_log=DeliveryLog(every=settings.notifier_unreachable_log_every),
        max_unrecorded=settings.notifier_max_unrecorded,
    )
    planner = Planner(
        event_log,
        store,
        batch_size=settings.notifier_plan_batch,
        trace_contexts=event_log.trace_contexts if tracing_enabled() else None,
    )
    return NotifierRuntime(
        store,
        planner,
        engine,
        reports,
        metrics=metrics,
        lease=store.lease(holds_for=settings.lease_holds_for),
        lease_ttl=settings.notifier_lease_ttl,
        transfer_timeout=settings.transfer_timeout,
        poll_interval=settings.notifier_poll_interval,
        standby_poll=settings.notifier_standby_poll,
        on_close=event_log.close,
        policy=settings.retry_policy,
    )


@dataclass
class Runtime:
    notifier: NotifierRuntime
    wakeups: WakeupConsumer
    publisher: CommandPublisher

    async def start(self) -> None:
        await self.wakeups.start()
        self.notifier.start()

    async def stop(self) -> None:
        await self.wakeups.stop()
        await self.notifier.stop()
        await self.publisher.close()

    def close(self) -> None:
        self.notifier.close()


def open_runtime(
    settings: NotifierSettings, metrics: Metrics, connection: AbstractRobustConnection
) -> Runtime:
    """Opens the stores (blocking: the skeleton calls it in a thread once PostgreSQL answers)."""
    publisher = CommandPublisher(
        connection, settings.notifier_commands_exchange, user_id=broker_user(settings.amqp_url)
    )
    notifier = build_runtime(settings, publisher, metrics)
    # The wake-ups have their own aio-pika consumer (entrypoints/events.py).
    wakeups = WakeupConsumer(
        connection,
        settings.notifier_queue,
        lambda _: notifier.wake(),
        event_types=EVENT_TYPES,
        prefetch=settings.notifier_prefetch,
    )
    return Runtime(notifier, wakeups, publisher)


def build_service(settings: NotifierSettings) -> Service[Runtime]:
    """Nothing connects until `run()` (no I/O here)."""
    # The broker is the notifier's connection; nothing consumes through FastStream.
    broker = service_broker(settings, "notifier")
    metrics = Metrics()

    async def consuming(runtime: Runtime) -> None:
        if not runtime.wakeups.consuming:
            raise NotReadyError(f"not consuming {settings.notifier_queue}")

    def planned_position(runtime: Runtime) -> int:
        """Also the readiness check of the database."""
        return runtime.notifier.store.position()

    async def sample_position(runtime: Runtime) -> None:
        metrics.position.set(await asyncio.to_thread(planned_position, runtime))

    return Service(
        "notifier",
        settings,
        broker,
        partial(open_runtime, settings, metrics),
        database=lambda runtime: asyncio.to_thread(planned_position, runtime),
        checks={"consuming": consuming},
        before_scrape=[sample_position],
        registries=(REGISTRY, metrics.registry),
    )
