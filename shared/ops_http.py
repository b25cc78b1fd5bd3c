"""Operations endpoints of a service: `/healthz`, `/readyz` and `/metrics` over plain HTTP.

- `/healthz` (liveness): 200 while the event loop answers at all.
- `/readyz` (readiness): 200 when every named check passes, else 503; the JSON body
  says which check failed and why. Checks run concurrently, each bounded in time.
- `/metrics`: prometheus_client's default registry (its process collectors), plus the
  service's own registry (services/<name>/metrics.py), in the format the scraper asks for.

A tiny server on `asyncio.start_server` (three GET routes need no framework, and the
services ship no ASGI server). Port 0 turns it off. `ops = await start_ops_http(port,
checks=...)` ... `await ops.stop()` (None when the port is 0): the service skeleton
(shared/service.py) serves it from before it connects to anything until it has stopped.

`python -m shared.ops_http [PATH]` probes `127.0.0.1:$HTTP_PORT/PATH` (default
`/readyz`) and exits 0 on 200: the container health check (the slim image has no curl).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Metric
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from faststream.rabbit import RabbitBroker

__all__ = [
    "Check",
    "NotReadyError",
    "OpsServer",
    "blocking",
    "probe",
    "start_ops_http",
    "subscribers_consuming",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

Check = Callable[[], Awaitable[object]]
"""A readiness check: passes unless it raises or returns False (`None` passes)."""

_MAX_REQUEST_LINE = 8192
_MAX_HEADERS = 64
_READ_TIMEOUT = 5.0


class NotReadyError(Exception):
    """Raised by a check to fail readiness with a readable reason."""


def blocking(function: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    """A check from a blocking call (a database query): runs it in a worker thread."""

    async def check() -> T:
        return await asyncio.to_thread(function)

    return check


def subscribers_consuming(broker: RabbitBroker) -> Check:
    """Every FastStream subscriber of `broker` is running."""

    async def consuming() -> None:
        subscribers = broker.subscribers
        stopped = [str(getattr(s, "queue", s)) for s in subscribers if not s.running]
        if not subscribers or stopped:
            raise NotReadyError(f"not consuming: {', '.join(stopped) or 'no subscriber'}")

    return consuming


class OpsServer:
    def __init__(
        self,
        port: int,
        *,
        checks: Mapping[str, Check] | None = None,
        before_scrape: Iterable[Callable[[], Awaitable[None]]] = (),
        host: str = "0.0.0.0",  # noqa: S104 (in a container the probe and scraper are outside)
        check_timeout: float = 2.0,
        registries: Sequence[CollectorRegistry] = (REGISTRY,),
    ) -> None:
        self._port = port
        self._host = host
        self._checks = dict(checks or {})
        self._before_scrape = list(before_scrape)
        self._check_timeout = check_timeout
        # One registry collecting the others: the OpenMetrics format allows one EOF.
        self._registries = list(registries)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Union(self._registries))
        self._server: asyncio.Server | None = None
        self._was_ready: bool | None = None
        self.stopping = False

    def add_registry(self, registry: CollectorRegistry) -> None:
        """Serve a service's own registry too (one it builds only when it starts)."""
        self._registries.append(registry)

    @property
    def port(self) -> int:
        """The bound port (differs from the requested one when that was 0, in tests)."""
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=_MAX_REQUEST_LINE
        )
        log.info("health and metrics on http://%s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- routes ---------------------------------------------------------------------------

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        if self.stopping:
            return False, {"service": "stopping"}
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        results = dict(zip(names, outcomes, strict=True))
        ready = all(r == "ok" for r in results.values())
        if ready != self._was_ready:  # the transitions, not every probe
            failed = {n: r for n, r in results.items() if r != "ok"}
            log.log(logging.INFO if ready else logging.WARNING, "readiness: %s", failed or "ready")
            self._was_ready = ready
        return ready, results

    async def _run_check(self, check: Check) -> str:
        try:
            result = await asyncio.wait_for(check(), self._check_timeout)
        except TimeoutError:
            return f"timed out after {self._check_timeout:g}s"
        except NotReadyError as error:  # a reason written to be read as it is
            return str(error)[:300] or "not ready"
        except Exception as error:
            return f"{type(error).__name__}: {error}"[:300]
        return "failed" if result is False else "ok"

    async def metrics(self, accept: str) -> tuple[bytes, str]:
        for refresh in self._before_scrape:
            try:
                await asyncio.wait_for(refresh(), self._check_timeout)
            except Exception as error:  # stale values beat no metrics at all
                log.warning("metrics refresh failed: %s", error)
        encoder, content_type = choose_encoder(accept)
        return encoder(self._registry), content_type

    async def _route(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        if path == "/healthz":
            return 200, _json({"status": "alive"}), "application/json"
        if path == "/readyz":
            ready, results = await self.readiness()
            body = _json({"status": "ready" if ready else "not ready", "checks": results})
            return (200 if ready else 503), body, "application/json"
        if path == "/metrics":
            body, content_type = await self.metrics(headers.get("accept", ""))
            return 200, body, content_type
        return 404, _json({"error": "not found"}), "application/json"

    # -- HTTP/1.1, one request per connection ----------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), _READ_TIMEOUT)
            if request is None:
                status, body, content_type, head = 400, b"bad request\n", "text/plain", False
            else:
                method, path, headers = request
                head = method == "HEAD"
                if method not in ("GET", "HEAD"):
                    status, body, content_type = 405, b"method not allowed\n", "text/plain"
                else:
                    status, body, content_type = await self._route(path, headers)
            writer.write(_response(status, body, content_type, head=head))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client that went away or never spoke: nothing to answer
        except Exception:
            log.exception("ops endpoint failed")
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    method, target, _ = parts
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = (await reader.readline()).decode("latin-1")
        if line in ("\r\n", "\n", ""):
            return method, target.split("?", 1)[0], headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return None


def _response(status: int, body: bytes, content_type: str, *, head: bool) -> bytes:
    reason = HTTPStatus(status).phrase
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


class _Union:
    """Collects several registries as one (a live view: registries may be added later)."""

    def __init__(self, registries: list[CollectorRegistry]) -> None:
        self._registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self._registries:
            yield from registry.collect()


async def start_ops_http(
    port: int,
    *,
    checks: Mapping[str, Check] | None = None,
    before_scrape: Iterable[Callable[[], Awaitable[None]]] = (),
    registries: Sequence[CollectorRegistry] = (REGISTRY,),
    host: str = "0.0.0.0",  # noqa: S104 (see OpsServer)
) -> OpsServer | None:
    """Serve the ops endpoints until `stop()`; `port` 0 serves nothing (returns None)."""
    if port == 0:
        return None
    server = OpsServer(
        port, checks=checks, before_scrape=before_scrape, host=host, registries=registries
    )
    await server.start()
    return server


def probe(path: str = "/readyz", *, port: int | None = None, timeout: float = 3.0) -> bool:
    """True when `127.0.0.1:port/path` answers 200 (port defaults to $HTTP_PORT)."""
    port = port if port is not None else int(os.environ.get("HTTP_PORT", "0"))
    if port == 0:
        return False
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "/readyz"
    return 0 if probe(path) else 1


if __name__ == "__main__":
    raise SystemExit(main())
