"""A TCP forwarding proxy that can play a dependency going down and coming back.

The shared PostgreSQL and RabbitMQ on this machine must stay up for every other test,
so a test that needs "the database is down" points its service at a proxy instead and
switches the proxy off: live connections are cut and new ones are closed as soon as
they are accepted (the client sees its server go away, as in a restart). Switched on
again, it forwards as before.

The proxy runs its own event loop in a thread, so it keeps forwarding while a test
blocks its own loop (a urllib call, a subprocess wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class Proxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._up = True
        self.port = 0

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def down(self) -> None:
        """Cut every forwarded connection and refuse new ones until `up()`."""
        self._call(self._set(up=False))

    def up(self) -> None:
        self._call(self._set(up=True))

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        await self._set(up=False)
        if self._server is not None:
            self._server.close()

    async def _set(self, *, up: bool) -> None:
        self._up = up
        if not up:
            for writer in list(self._writers):
                _abort(writer)
            self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._up:
            _abort(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _abort(writer)
            return
        pair = {writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for each in pair:
                _abort(each)
            self._writers -= pair


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once (RST), as a server that died would."""
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


@contextlib.contextmanager
def proxy_to(host_port: str) -> Iterator[Proxy]:
    host, _, port = host_port.rpartition(":")
    proxy = Proxy(host, int(port)).start()
    try:
        yield proxy
    finally:
        proxy.close()
