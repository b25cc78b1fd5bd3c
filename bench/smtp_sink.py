"""An SMTP sink in a process of its own that timestamps every email it accepts.

The benchmarks need to know when each email was handed to the mail server, at rates
where an in-process aiosmtpd would compete with the load generator for the same core.
So the sink runs as `python -m bench.smtp_sink PORT FILE` and appends one line per
accepted email to FILE: `<epoch seconds>\\t<recipient>\\t<X-Notification-Kind>`. The
timestamp is wall-clock time (`time.time()`), comparable with the stored events'
`occurred_at` on this machine. Bodies are not kept: an automatic invitation holds a
password, and the benchmarks only need who received what, and when.

Use from a benchmark:

    with SmtpSink(directory) as sink:          # starts the process, waits for the port
        env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port)}
        ...
        for email in sink.received():          # the emails accepted since the last call
            email.at, email.recipient, email.kind
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Accepted", "SmtpSink", "free_port"]


@dataclass(frozen=True)
class Accepted:
    at: float  # epoch seconds when the sink accepted the DATA
    recipient: str
    kind: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    """The sink process (see the module docstring); a context manager."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.path = directory / f"smtp-sink-{self.port}.tsv"
        self._process: subprocess.Popen[bytes] | None = None
        self._file: Any = None
        self._partial = b""
        self.count = 0

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        self.path.write_bytes(b"")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.smtp_sink", str(self.port), str(self.path)],
            cwd=Path(__file__).resolve().parents[1],
        )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                break
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the SMTP sink did not start on port {self.port}")
            time.sleep(0.05)
        self._file = self.path.open("rb")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        if self._file is not None:
            self._file.close()
            self._file = None

    def received(self) -> list[Accepted]:
        """The emails accepted since the last call (the sink flushes every few ms)."""
        assert self._file is not None, "the sink is not running"
        data = self._partial + self._file.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next call
        accepted = []
        for line in lines:
            at, recipient, kind = line.decode().split("\t")
            accepted.append(Accepted(float(at), recipient, kind))
        self.count += len(accepted)
        return accepted


# -- the sink process --------------------------------------------------------------------


class _Recorder:
    """aiosmtpd handler: accept everything, note (time, recipient, kind), keep no body."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._lines: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = time.time()
        content: bytes = envelope.content
        kind = ""
        start = content.find(b"X-Notification-Kind: ")
        if start >= 0:
            end = content.find(b"\r\n", start)
            kind = content[start + 21 : end].decode("ascii", "replace")
        for recipient in envelope.rcpt_tos:
            self._lines.append(f"{at:.6f}\t{recipient}\t{kind}\n")
        return "250 OK"

    async def flush_forever(self, every: float = 0.005) -> None:
        while True:
            await asyncio.sleep(every)
            self.flush()

    def flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._out.write("".join(lines))
            self._out.flush()


async def _serve(port: int, path: Path) -> None:
    from aiosmtpd.smtp import SMTP  # imported here: only the sink process needs it

    loop = asyncio.get_running_loop()
    with path.open("a") as out:
        recorder = _Recorder(out)
        server = await loop.create_server(
            lambda: SMTP(recorder, hostname="sink.bench", ident="bench sink"),
            host="127.0.0.1",
            port=port,
        )
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        flusher = asyncio.create_task(recorder.flush_forever())
        await stop.wait()
        flusher.cancel()
        server.close()
        recorder.flush()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), Path(sys.argv[2])))
