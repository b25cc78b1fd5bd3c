"""OpenTelemetry tracing of the three services: off unless an OTLP endpoint is configured.

Configured by OpenTelemetry's own environment variables, read by the SDK:
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns it on
(OTLP over HTTP/protobuf, e.g. `http://collector:4318`); `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`/`_ARG`
and the `OTEL_BSP_*` batching variables work as documented by OpenTelemetry;
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns it off again. Without
an endpoint nothing is installed: no tracer provider, no exporter, no middleware, and
the services' message paths run exactly as before.

How one trace runs from a command to its email, across the outbox (W3C trace context):

    client --traceparent--> intake (FastStream's RabbitTelemetryMiddleware: consume span)
      -> stored with the command's events (eventstore side table, by correlation id)
      -> relay: publish span, `traceparent` header on the event message
      -> notifier: copied onto each planned email row -> send span (SMTP)
      -> expiry: the deadline's event's context -> publish span, `traceparent` header on
         its command -> intake again (the same trace)

Only FastStream's middleware instruments a library: the invitation service's intake is
FastStream's. The relay, the notifier and the expiry service publish with aio-pika
directly and make their own spans, whose parent is a context read from the store, not
the ambient one; the contrib aio-pika instrumentation would wrap the same publishes
(and FastStream's, twice) with spans parented on the ambient context instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACEPARENT",
    "SpanKind",
    "child_span",
    "current_traceparent",
    "install_tracing",
    "tracing_enabled",
]

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "invitations"


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether OpenTelemetry's variables ask for traces to be exported over OTLP."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    )


def install_tracing(service: str, environ: Mapping[str, str] | None = None) -> Any | None:
    """Install the SDK's tracer provider with an OTLP exporter, if `tracing_enabled`.

    Returns the provider (to shut down, which flushes the last spans) or None when
    nothing was installed: tracing is off, or a provider is installed already (a test's,
    or an embedding program's, which is then left in charge).
    """
    if not tracing_enabled(environ):
        return None
    # Imported here: a service without an endpoint never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return None
    env = os.environ if environ is None else environ
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over the default name.
    resource = Resource.create({SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("tracing: exporting spans over OTLP as %s", resource.attributes[SERVICE_NAME])
    return provider


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span current here, or None (no span, tracing off)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def _context_of(traceparent: str) -> Context:
    return _PROPAGATOR.extract({TRACEPARENT: traceparent})


@contextlib.contextmanager
def child_span(
    name: str,
    traceparent: str | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span | None]:
    """A span whose parent is the stored `traceparent`; nothing when there is none.

    Work that no traced command caused (a poll, an untraced command's event) makes no
    span: a root trace per poll or per event would bury the ones that matter.
    """
    if traceparent is None:
        yield None
        return
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        name, context=_context_of(traceparent), kind=kind, attributes=attributes
    ) as span:
        yield span
