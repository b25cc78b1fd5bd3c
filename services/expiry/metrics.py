"""Prometheus metrics of the expiry service (prefix `expiry_`), in a registry of its own.

Served at the service's `/metrics` beside prometheus_client's process collectors, and by
no other service. Gauges are cleared before each census, so a kind with no deadline left
reads as absent, not as stale.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram

from services.expiry.domain.deadlines import COMMAND_NAMES

__all__ = ["LATENESS_BUCKETS", "ExpiryMetrics"]

# Seconds. The README's target is p99 <= 1 s; the buckets straddle it, and go on to what a
# broker outage or a restart after downtime looks like (minutes, hours, days).
LATENESS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400,
)  # fmt: skip


class ExpiryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.deadlines_scheduled = Gauge(
            "expiry_deadlines_scheduled",
            "Open deadlines the expiry service is waiting for, by command.",
            ["kind"],
            registry=self.registry,
        )
        self.deadlines_overdue = Gauge(
            "expiry_deadlines_overdue",
            "Deadlines past their time whose command has not been accepted yet, by command.",
            ["kind"],
            registry=self.registry,
        )
        self.lateness = Histogram(
            "expiry_deadline_lateness_seconds",
            "How long after its due time a deadline's command was first sent (accepted by "
            "the broker), by command. Re-sends and retries after not_due are not counted.",
            ["kind"],
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )

    def record_deadlines(self, census: Mapping[str, tuple[int, int]]) -> None:
        """Set the gauges from {command name: (open deadlines, of which overdue)}."""
        self.deadlines_scheduled.clear()
        self.deadlines_overdue.clear()
        for command, (scheduled, overdue) in census.items():
            kind = _kind(command)
            self.deadlines_scheduled.labels(kind=kind).set(scheduled)
            self.deadlines_overdue.labels(kind=kind).set(overdue)

    def observe_lateness(self, command: str, seconds: float) -> None:
        self.lateness.labels(kind=_kind(command)).observe(seconds)


def _kind(command: str) -> str:
    return command if command in COMMAND_NAMES else "unknown"
