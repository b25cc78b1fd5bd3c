"""One trace from a command to its email, across the outbox (W3C trace context), and no
tracing at all without an OTLP endpoint.

The services run in this process (the invitation service with its relay, the notifier)
over the real PostgreSQL, RabbitMQ and an aiosmtpd server, with the SDK's in-memory span
exporter installed as the tracer provider, so the spans can be read back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.invitation.bootstrap import build_service as invitation_service
from services.invitation.settings import InvitationSettings
from services.notifier.bootstrap import build_service as notifier_service
from services.notifier.settings import NotifierSettings
from shared.command_client import CommandClient
from shared.service import Service
from tests.notifier.conftest import SmtpSink, delete_queues
from tests.support import ROOT, EventTap, invitation_service_ready, temporary_vhost, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def vhost() -> Iterator[str]:
    with temporary_vhost() as amqp_url:
        yield amqp_url


@pytest.fixture
async def services(
    spans: InMemorySpanExporter,
    vhost: str,
    database_url: str,
    secrets_key: bytes,
    smtp: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[None]:
    # What turns tracing on in a deployment; the provider above is already installed, so
    # the services keep it (and export nowhere else).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    key = base64.b64encode(secrets_key).decode()
    invitation = invitation_service(
        InvitationSettings(
            database_url=database_url, amqp_url=vhost, secrets_key=key, internal_senders="guest"
        )
    )
    queue = f"test.notifier.{uuid4().hex[:12]}"
    notifier = notifier_service(
        NotifierSettings(
            database_url=database_url,
            amqp_url=vhost,
            secrets_key=key,
            public_base_url="https://vault.test",
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_from="notifier@vault.test",
            notifier_queue=queue,
            notifier_poll_interval=0.1,
        )
    )
    running: list[tuple[Service[Any], asyncio.Task[None]]] = [
        (service, asyncio.create_task(service.run())) for service in (invitation, notifier)
    ]
    try:
        yield
    finally:
        for service, task in reversed(running):
            service.stop()
            await asyncio.wait_for(task, 15)
        await delete_queues(queue, f"{queue}.dead")


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


@pytest.mark.usefixtures("services")
async def test_one_trace_runs_from_invite_user_through_the_event_to_the_email_sent(
    spans: InMemorySpanExporter, vhost: str, smtp: SmtpSink
) -> None:
    email = f"traced-{uuid4().hex[:8]}@example.com"
    async with CommandClient(vhost) as client, EventTap(vhost) as tap:
        await invitation_service_ready(client)
        reply = await client.send(
            "invite_user",
            {
                "command_id": str(uuid4()),
                "actor": "admin@example.com",
                "tenant_id": f"t-{uuid4().hex[:10]}",
                "email": email,
                "role": "user",
            },
        )
        assert reply.status == "accepted", reply
        await wait_for(lambda: smtp.to(email), timeout=20, what="the invitation email")
        await wait_for(lambda: tap.of_type("UserInvited"), timeout=10, what="the event")
        invited = tap.envelopes.index(tap.of_type("UserInvited")[0])
        header = tap.headers[invited].get("traceparent")

    def sent_span() -> ReadableSpan | None:
        found = named(spans.get_finished_spans(), "smtp send")
        return found[0] if found else None

    send = await wait_for(sent_span, timeout=10, what="the send span")
    assert send.context is not None and send.parent is not None
    trace_id = send.context.trace_id
    in_trace = tuple(s for s in spans.get_finished_spans() if s.context.trace_id == trace_id)
    (consumed,) = named(in_trace, "invitations.commands.invite_user process")
    published = named(in_trace, "invitations.events UserInvited publish")
    assert len(published) >= 1  # at least once: a re-sent section publishes again
    assert consumed.context is not None
    # The command's consume span is the parent of the event's publish and of the email's
    # send: the context went through the event store, the relay and the email ledger.
    assert {p.parent.span_id for p in published if p.parent} == {consumed.context.span_id}
    assert send.parent.span_id == consumed.context.span_id
    assert send.status.is_ok
    # The event message carries its publish span's context (W3C: version-trace-span-flags).
    assert isinstance(header, str)
    _, header_trace, header_span, _ = header.split("-")
    assert int(header_trace, 16) == trace_id
    assert int(header_span, 16) in {p.context.span_id for p in published if p.context}


def test_without_an_otlp_endpoint_no_tracer_provider_or_exporter_is_installed() -> None:
    """A fresh interpreter builds and starts a service's tracing as `python -m` does."""
    script = """
import json, sys
from opentelemetry import trace
from shared.telemetry import install_tracing, tracing_enabled
from services.invitation.bootstrap import build_broker
from services.invitation.settings import InvitationSettings
broker = build_broker(InvitationSettings(development_mode=True))
print(json.dumps({
    "enabled": tracing_enabled(),
    "installed": install_tracing("invitation") is not None,
    "provider": type(trace.get_tracer_provider()).__name__,
    "middlewares": [type(m).__name__ for m in broker.middlewares],
    "sdk_loaded": "opentelemetry.sdk.trace" in sys.modules,
    "exporter_loaded": "opentelemetry.exporter.otlp.proto.http" in sys.modules,
}))
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    answer = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, check=True
    )
    found = json.loads(answer.stdout)
    assert found == {
        "enabled": False,
        "installed": False,
        "provider": "ProxyTracerProvider",
        "middlewares": found["middlewares"],
        "sdk_loaded": False,
        "exporter_loaded": False,
    }
    assert "RabbitTelemetryMiddleware" not in found["middlewares"]
