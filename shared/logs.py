"""Logging: JSON lines (default) or readable text; one call per process."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Fields a log call may pass in `extra=` that belong on the JSON line.
CONTEXT_FIELDS = (
    "event_type",
    "correlation_id",
    "tenant_id",
    "command",
    "sender",
    "position",
    "code",
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class BrokerOutageChatter(logging.Filter):
    """One WARNING per failed reconnection try, as for every other dependency.

    During a broker outage aiormq and aio-pika say each thing several times over, at
    ERROR: every failed try is an aiormq ERROR ("error when creating transport") and then
    aio-pika's WARNING, which names the next delay; the close itself is an ERROR, a
    traceback, and an ERROR per channel whose close callback found the connection gone.
    An outage is expected and retried; an operator's ERROR alerts should not fire on it.
    Kept: aio-pika's WARNING per try, and the close as one WARNING without traceback; the
    rest goes to DEBUG.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if record.name == "aiormq.connection":
            if message.startswith("error when creating transport"):
                return _demoted(record)  # aio-pika's WARNING for the same try follows
            if message.startswith(
                ("Unexpected connection close from remote", "Cancelling cause reader exited")
            ):
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.exc_info, record.exc_text = None, None
        elif record.name == "aio_pika.tools" and message.startswith("Callback %r error"):
            callback = record.args[0] if isinstance(record.args, tuple) and record.args else ""
            if "RobustChannel._on_close" in repr(callback):
                return _demoted(record)  # the connection's own loss was logged already
        return True


def _demoted(record: logging.LogRecord) -> bool:
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(BrokerOutageChatter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter at INFO (connections, every message) drowns the service's own lines.
    for noisy in ("aiormq", "aio_pika", "faststream", "eventsourcing"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
