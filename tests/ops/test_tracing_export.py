"""With OTEL_EXPORTER_OTLP_ENDPOINT set, a service process exports its spans over OTLP
(HTTP/protobuf) to that collector: here a small receiver of our own."""

from __future__ import annotations

import gzip
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shared.command_client import CommandClient
from tests.ops.conftest import RunningService
from tests.ops.test_service_health import ready
from tests.support import unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Collector:
    """Accepts OTLP/HTTP trace exports and keeps (service name, span name) pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    attributes = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            collector.spans.append((attributes.get("service.name", ""), span.name))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


async def test_a_service_exports_its_spans_to_the_configured_otlp_endpoint(
    start_service: Callable[..., RunningService], collector: Collector
) -> None:
    service = start_service(
        "services.invitation",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    await ready(service)
    async with CommandClient(service.amqp_url) as client:
        reply = await client.send(
            "invite_user",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": unique("tenant").replace("_", "-"),
                "email": f"{unique('person')}@example.com",
                "role": "user",
            },
        )
    assert reply.status == "accepted"

    wanted = {
        ("invitation", "invitations.commands.invite_user process"),
        ("invitation", "invitations.events UserInvited publish"),
    }
    await wait_for(
        lambda: wanted <= set(collector.spans), timeout=20, what="the spans at the collector"
    )
    assert service.terminate() == 0
