"""Prometheus counters of the notifier, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events_planned = Counter(
            "notifier_events_planned",
            "Events read from the store and planned.",
            registry=self.registry,
        )
        self.emails_planned = Counter(
            "notifier_emails_planned",
            "Emails implied by planned events (replays included).",
            registry=self.registry,
        )
        self.position = Gauge(
            "notifier_position", "Last event-store position planned.", registry=self.registry
        )
        self.leading = Gauge(
            "notifier_leading",
            "1 while this notifier holds the lease and plans and sends, 0 on a standby.",
            registry=self.registry,
        )
        self.sent = Counter(
            "notifier_emails_sent",
            "Emails accepted by the SMTP server.",
            ["kind"],
            registry=self.registry,
        )
        self.retried = Counter(
            "notifier_emails_retried",
            "Transient failures, tried again later.",
            ["kind"],
            registry=self.registry,
        )
        self.failed = Counter(
            "notifier_emails_failed",
            "Emails given up: refused (5xx) or out of attempts.",
            ["kind"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "notifier_emails_skipped",
            "Emails with nothing left to send (password gone).",
            ["kind"],
            registry=self.registry,
        )
        self.deliveries_recorded = Counter(
            "notifier_deliveries_recorded",
            "record_temp_password_delivered commands handed to the broker.",
            registry=self.registry,
        )

    def count(self, kind: str, outcome: str) -> None:
        """One email's outcome (`Sent`, `Retry`, `Failed`, `Skipped`) by kind."""
        counter = {
            "Sent": self.sent,
            "Retry": self.retried,
            "Failed": self.failed,
            "Skipped": self.skipped,
        }.get(outcome)
        if counter is not None:
            counter.labels(kind=kind).inc()
