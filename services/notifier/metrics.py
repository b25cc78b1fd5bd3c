"""Prometheus metrics of the notifier (prefix `notifier_`), in a registry of its own (no
global state): only the notifier serves them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.notifier.domain.delivery import Outcome, Sent

# Seconds from the event to the SMTP server's acceptance. The README's target is p99 <=
# 200 ms; the buckets straddle it, then cover retries (minutes to the hours of back-off).
EMAIL_LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400,
)  # fmt: skip


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
        self.email_latency = Histogram(
            "notifier_event_to_email_seconds",
            "From the event's time (its command's) to the SMTP server accepting the email, "
            "by kind. Emails planned before this metric existed are not counted.",
            ["kind"],
            buckets=EMAIL_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_latency(self, kind: str, event_at: float | None, outcome: Outcome) -> None:
        """One accepted email's event -> email latency (other outcomes: nothing)."""
        if isinstance(outcome, Sent) and event_at is not None:
            self.email_latency.labels(kind=kind).observe(max(0.0, outcome.at - event_at))

    def tally(self, kind: str, event_at: float | None, outcome: Outcome) -> None:
        """One email's outcome: counted by kind, and its latency when it was sent."""
        self.count(kind, type(outcome).__name__)
        self.observe_latency(kind, event_at, outcome)

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
