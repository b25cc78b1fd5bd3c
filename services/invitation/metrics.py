"""Prometheus metrics of the three services, in one place so their names stay consistent.

Every service process registers all of them on prometheus_client's default registry and
serves them at `/metrics` (shared/ops_http.py). Gauges carry labels even where one value
would do, so a process that never sets them exports no sample (only HELP/TYPE lines): a
notifier never reports a misleading `invitations_relay_lag 0`.

Label values are bounded sets (command names, event types, rejection codes);
anything from outside the contract is folded into `unknown` so that a stream of garbage
routing keys cannot explode the number of series.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

from shared.contract import COMMANDS, EVENT_DATA, Reply

__all__ = [
    "BATCH_SECONDS",
    "BATCH_SIZE",
    "COMMANDS_TOTAL",
    "DEADLINES_OVERDUE",
    "DEADLINES_SCHEDULED",
    "EVENTS_RELAYED",
    "EVENT_STORE_POSITION",
    "HANDLER_SECONDS",
    "RELAY_LAG",
    "RELAY_LEADING",
    "RELAY_POSITION",
    "command_label",
    "event_label",
    "observe_command",
    "record_deadlines",
]

# Seconds; commands take milliseconds, a mass invite of 10,000 rows tens of seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

# -- the invitation service ----------------------------------------------------------------

COMMANDS_TOTAL = Counter(
    "invitations_commands",
    "Commands answered by the invitation service, by name and outcome "
    "(status accepted|rejected; code = the rejection code, empty when accepted).",
    ["command", "status", "code"],
)
BATCH_SIZE = Histogram(
    "invitations_command_batch_size",
    "Commands run together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_SECONDS = Histogram(
    "invitations_command_batch_seconds",
    "Time to run one batch of commands (one transaction), retries included.",
    buckets=_LATENCY_BUCKETS,
)
EVENT_STORE_POSITION = Gauge(
    "invitations_event_store_position",
    "Highest position stored in the event store (sampled when /metrics is read).",
    ["store"],
)
RELAY_POSITION = Gauge(
    "invitations_relay_published_position",
    "Position up to which the outbox relay has published and recorded every event.",
    ["relay"],
)
RELAY_LEADING = Gauge(
    "invitations_relay_leading",
    "1 on the one instance that holds the relay lease and publishes, 0 on standbys.",
    ["relay"],
)
RELAY_LAG = Gauge(
    "invitations_relay_lag",
    "Stored minus published position: how far the relay is behind (0 = caught up). "
    "Positions are sparse, so this is an upper bound on the events waiting.",
    ["relay"],
)
EVENTS_RELAYED = Counter(
    "invitations_events_relayed",
    "Contract events published to invitations.events (a re-sent section counts again).",
    ["event_type"],
)

# -- the expiry service (the notifier keeps its email counters in its own registry,
# services/notifier/metrics.py, served beside these) -------------------------------------

DEADLINES_SCHEDULED = Gauge(
    "invitations_deadlines_scheduled",
    "Open deadlines the expiry service is waiting for, by command.",
    ["kind"],
)
DEADLINES_OVERDUE = Gauge(
    "invitations_deadlines_overdue",
    "Deadlines past their time whose command has not been accepted yet, by command.",
    ["kind"],
)

# -- every service -------------------------------------------------------------------------

HANDLER_SECONDS = Histogram(
    "invitations_handler_seconds",
    "Time spent in one message handler, by handler (a command name or an event type).",
    ["handler"],
    buckets=_LATENCY_BUCKETS,
)


def command_label(name: str) -> str:
    return name if name in COMMANDS else "unknown"


def event_label(event_type: str) -> str:
    return event_type if event_type in EVENT_DATA else "unknown"


def observe_command(command: str, reply: Reply, seconds: float) -> None:
    """Count one answered command and the time it took (once per reply the intake sends)."""
    name = command_label(command)
    code = "" if reply.error is None else reply.error.code
    COMMANDS_TOTAL.labels(command=name, status=reply.status, code=code).inc()
    HANDLER_SECONDS.labels(handler=name).observe(seconds)


def record_deadlines(census: Mapping[str, tuple[int, int]]) -> None:
    """Set the expiry gauges from {command name: (open deadlines, of which overdue)}."""
    # Cleared first, so a kind with no deadline left reads as absent, not as stale.
    DEADLINES_SCHEDULED.clear()
    DEADLINES_OVERDUE.clear()
    for command, (scheduled, overdue) in census.items():
        kind = command_label(command)
        DEADLINES_SCHEDULED.labels(kind=kind).set(scheduled)
        DEADLINES_OVERDUE.labels(kind=kind).set(overdue)
