"""The operations endpoints: liveness, readiness with reasons, metrics, and the probe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest
from prometheus_client import CollectorRegistry, Counter

from shared.ops_http import (
    NotReadyError,
    OpsServer,
    blocking,
    main,
    probe,
    start_ops_http,
)
from tests.support import free_port


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def get(port: int, path: str, accept: str = "*/*") -> tuple[int, dict[str, str], bytes]:
    return await request(port, f"GET {path} HTTP/1.1\r\nAccept: {accept}\r\n\r\n".encode())


Serve = Callable[..., Awaitable[OpsServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[OpsServer] = []

    async def start(
        checks: Mapping[str, Callable[[], Awaitable[object]]] | None = None, **options: object
    ) -> OpsServer:
        server = OpsServer(0, checks=checks, host="127.0.0.1", **options)  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def passes() -> None:
    return None


async def test_liveness_answers_while_the_loop_runs(serve: Serve) -> None:
    server = await serve()
    status, headers, body = await get(server.port, "/healthz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))


async def test_readiness_is_200_when_every_check_passes(serve: Serve) -> None:
    async def returns_true() -> bool:
        return True

    server = await serve({"broker": passes, "database": returns_true})
    status, _, body = await get(server.port, "/readyz")
    assert status == 200
    assert b'"broker": "ok"' in body
    assert b'"database": "ok"' in body


async def test_readiness_is_503_and_names_the_failing_check_and_why(serve: Serve) -> None:
    async def broker_down() -> bool:
        return False

    async def database_refuses() -> None:
        raise NotReadyError("connection refused")

    server = await serve({"broker": broker_down, "database": database_refuses, "consuming": passes})
    status, _, body = await get(server.port, "/readyz")
    assert status == 503
    assert b'"broker": "failed"' in body
    assert b"connection refused" in body
    assert b'"consuming": "ok"' in body


async def test_a_check_that_hangs_fails_readiness_within_its_time(serve: Serve) -> None:
    async def hangs() -> None:
        await asyncio.sleep(30)

    server = await serve({"database": hangs}, check_timeout=0.2)
    status, _, body = await asyncio.wait_for(get(server.port, "/readyz"), 5)
    assert status == 503
    assert b"timed out" in body


async def test_a_blocking_check_runs_in_a_thread(serve: Serve) -> None:
    def query() -> int:
        return 42

    server = await serve({"database": blocking(query)})
    assert (await get(server.port, "/readyz"))[0] == 200


async def test_readiness_turns_503_once_the_service_is_stopping(serve: Serve) -> None:
    server = await serve({"broker": passes})
    server.stopping = True
    status, _, body = await get(server.port, "/readyz")
    assert status == 503
    assert b"stopping" in body


async def test_metrics_are_served_in_the_prometheus_text_format(serve: Serve) -> None:
    registry = CollectorRegistry()
    Counter("ops_test_things", "Things.", registry=registry).inc(3)
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)

    server = await serve(registries=[registry], before_scrape=[refresh])
    status, headers, body = await get(server.port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"ops_test_things_total 3.0" in body
    assert refreshed == [True]


async def test_metrics_negotiate_openmetrics_when_asked(serve: Serve) -> None:
    server = await serve(registries=[CollectorRegistry()])
    _, headers, body = await get(server.port, "/metrics", "application/openmetrics-text")
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_a_failing_metrics_refresh_still_serves_the_metrics(serve: Serve) -> None:
    async def refresh() -> None:
        raise RuntimeError("database down")

    server = await serve(registries=[CollectorRegistry()], before_scrape=[refresh])
    assert (await get(server.port, "/metrics"))[0] == 200


async def test_metrics_of_several_registries_are_served_together(serve: Serve) -> None:
    shared, own = CollectorRegistry(), CollectorRegistry()
    Counter("ops_test_shared", "Shared.", registry=shared).inc()
    Counter("ops_test_own", "The service's own.", registry=own).inc(2)
    server = await serve(registries=[shared])
    server.add_registry(own)  # as a service does once its runtime (and registry) exists
    for accept in ("*/*", "application/openmetrics-text"):
        _, _, body = await get(server.port, "/metrics", accept)
        assert b"ops_test_shared_total 1.0" in body
        assert b"ops_test_own_total 2.0" in body
        assert body.count(b"# EOF") <= 1


async def test_start_ops_http_serves_until_stopped_and_port_zero_serves_nothing() -> None:
    assert await start_ops_http(0) is None
    port = free_port()
    server = await start_ops_http(port, host="127.0.0.1", registries=[CollectorRegistry()])
    assert server is not None
    assert (await get(port, "/healthz"))[0] == 200
    await server.stop()
    with pytest.raises(ConnectionRefusedError):
        await get(port, "/healthz")


async def test_head_answers_without_a_body(serve: Serve) -> None:
    server = await serve()
    status, headers, body = await request(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
    assert status == 200
    assert int(headers["content-length"]) > 0
    assert body == b""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
        (b"POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"hello\r\n\r\n", 400),
        (b"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n", 200),
    ],
)
async def test_other_requests_get_plain_http_answers(
    serve: Serve, raw: bytes, expected: int
) -> None:
    server = await serve()
    assert (await request(server.port, raw))[0] == expected


async def test_a_client_that_never_speaks_does_not_stop_the_server(serve: Serve) -> None:
    server = await serve()
    _, silent = await asyncio.open_connection("127.0.0.1", server.port)
    assert (await get(server.port, "/healthz"))[0] == 200
    silent.close()
    await silent.wait_closed()


async def test_the_probe_reports_200_as_success(serve: Serve) -> None:
    async def fails() -> bool:
        return False

    ready = await serve({"broker": passes})
    not_ready = await serve({"broker": fails})
    assert await asyncio.to_thread(probe, "/readyz", port=ready.port)
    assert not await asyncio.to_thread(probe, "/readyz", port=not_ready.port)
    assert await asyncio.to_thread(probe, "/healthz", port=not_ready.port)


def test_the_probe_command_reads_http_port_and_fails_when_it_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PORT", "0")
    assert main(["/healthz"]) == 1
    monkeypatch.delenv("HTTP_PORT")
    assert main([]) == 1
