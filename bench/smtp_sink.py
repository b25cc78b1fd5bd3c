"""An SMTP sink in a process of its own that timestamps every email it accepts.

The benchmarks need to know when each email was handed to the mail server, at rates
where an in-process aiosmtpd would compete with the load generator for the same core.
So the sink runs as `python -m bench.smtp_sink PORT FILE` (a minimal SMTP server, see
below) and appends one line per accepted email to FILE:
`<epoch seconds>\\t<recipient>\\t<X-Notification-Kind>`. The
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

    @property
    def pid(self) -> int:
        """For reading the sink's own CPU time."""
        assert self._process is not None, "the sink is not running"
        return self._process.pid

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
#
# A minimal SMTP server (RFC 5321's EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) on a
# plain asyncio protocol. aiosmtpd cost ~1.2 ms of CPU per email here: at the rates
# measured, the sink alone would take most of a core from the system under test. This
# one does the same conversation for a fraction of that; it keeps no body.

_REPLIES = {
    b"HELO": b"250 sink.bench\r\n",
    b"EHLO": b"250-sink.bench\r\n250 8BITMIME\r\n",
    b"MAIL": b"250 OK\r\n",
    b"RSET": b"250 OK\r\n",
    b"NOOP": b"250 OK\r\n",
}
_KIND = b"\r\nX-Notification-Kind: "


class _Recorder:
    """Collects (time, recipient, kind) lines and flushes them to the file every few ms."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self._lines: list[str] = []

    def accepted(self, recipients: list[str], content: bytes) -> None:
        at = time.time()
        kind = ""
        start = content.find(_KIND)
        if start >= 0:
            start += len(_KIND)
            kind = content[start : content.find(b"\r\n", start)].decode("ascii", "replace")
        self._lines.extend(f"{at:.6f}\t{recipient}\t{kind}\n" for recipient in recipients)

    async def flush_forever(self, every: float = 0.005) -> None:
        while True:
            await asyncio.sleep(every)
            self.flush()

    def flush(self) -> None:
        if self._lines:
            lines, self._lines = self._lines, []
            self._out.write("".join(lines))
            self._out.flush()


class _Session(asyncio.Protocol):
    def __init__(self, recorder: _Recorder) -> None:
        self._recorder = recorder
        self._buffer = b""
        self._in_data = False
        self._recipients: list[str] = []

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        transport.write(b"220 sink.bench ESMTP bench sink\r\n")

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._buffer:
            if self._in_data:
                # The message ends with CRLF.CRLF; "\r\n" in front finds an empty one too.
                end = (b"\r\n" + self._buffer).find(b"\r\n.\r\n")
                if end < 0:
                    return
                content, self._buffer = self._buffer[: max(0, end - 2)], self._buffer[end + 3 :]
                self._in_data = False
                self._recorder.accepted(self._recipients, b"\r\n" + content)
                self._recipients = []
                self._transport.write(b"250 OK queued\r\n")
                continue
            line, sep, rest = self._buffer.partition(b"\r\n")
            if not sep:
                return
            self._buffer = rest
            self._command(line)

    def _command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"RCPT":
            address = line.partition(b":")[2].strip().split(b" ")[0].strip(b"<>")
            self._recipients.append(address.decode("utf-8", "replace"))
            self._transport.write(b"250 OK\r\n")
        elif verb == b"DATA":
            self._in_data = True
            self._transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self._transport.write(b"221 Bye\r\n")
            self._transport.close()
        else:
            if verb in (b"MAIL", b"RSET"):
                self._recipients = []
            self._transport.write(_REPLIES.get(verb, b"502 Command not implemented\r\n"))


async def _serve(port: int, path: Path) -> None:
    loop = asyncio.get_running_loop()
    with path.open("a") as out:
        recorder = _Recorder(out)
        server = await loop.create_server(lambda: _Session(recorder), host="127.0.0.1", port=port)
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
