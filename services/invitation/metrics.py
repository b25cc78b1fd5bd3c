"""Prometheus metrics of the invitation service (prefix `invitations_`), in a registry of
its own that only this service serves (with prometheus_client's process collectors).

The notifier (`notifier_*`, services/notifier/metrics.py) and the expiry service
(`expiry_*`, services/expiry/metrics.py) keep theirs in their own registries, so no
process exports another service's metrics. Gauges carry labels even where one value would
do, so a process that never sets them exports no sample (only HELP/TYPE lines).

Label values are bounded sets (command names, event types, rejection codes);
anything from outside the contract is folded into `unknown` so that a stream of garbage
routing keys cannot explode the number of series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.contract import COMMANDS, EVENT_DATA, Reply

__all__ = [
    "BATCH_SECONDS",
    "BATCH_SIZE",
    "COMMANDS_TOTAL",
    "EVENTS_RELAYED",
    "EVENT_STORE_POSITION",
    "HANDLER_SECONDS",
    "REGISTRY",
    "RELAY_LAG",
    "RELAY_LEADING",
    "RELAY_POSITION",
    "command_label",
    "event_label",
    "observe_command",
]

# Seconds; commands take milliseconds, a mass invite of 10,000 rows tens of seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REGISTRY = CollectorRegistry()

COMMANDS_TOTAL = Counter(
    "invitations_commands",
    "Commands answered by the invitation service, by name and outcome "
    "(status accepted|rejected; code = the rejection code, empty when accepted).",
    ["command", "status", "code"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "invitations_command_batch_size",
    "Commands run together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "invitations_command_batch_seconds",
    "Time to run one batch of commands (one transaction), retries included.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
EVENT_STORE_POSITION = Gauge(
    "invitations_event_store_position",
    "Highest position stored in the event store (sampled when /metrics is read).",
    ["store"],
    registry=REGISTRY,
)
RELAY_POSITION = Gauge(
    "invitations_relay_published_position",
    "Position up to which the outbox relay has published and recorded every event.",
    ["relay"],
    registry=REGISTRY,
)
RELAY_LEADING = Gauge(
    "invitations_relay_leading",
    "1 on the one instance that holds the relay lease and publishes, 0 on standbys.",
    ["relay"],
    registry=REGISTRY,
)
RELAY_LAG = Gauge(
    "invitations_relay_lag",
    "Stored minus published position: how far the relay is behind (0 = caught up). "
    "Positions are sparse, so this is an upper bound on the events waiting.",
    ["relay"],
    registry=REGISTRY,
)
EVENTS_RELAYED = Counter(
    "invitations_events_relayed",
    "Contract events published to invitations.events (a re-sent section counts again).",
    ["event_type"],
    registry=REGISTRY,
)

HANDLER_SECONDS = Histogram(
    "invitations_handler_seconds",
    "Time from a command's delivery to its reply, by command (the intake's handler).",
    ["handler"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
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
