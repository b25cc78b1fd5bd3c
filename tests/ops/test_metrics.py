"""Each service's metrics: its own prefix and registry, bounded labels, current gauges, and
the two latency histograms (event -> email, expiry lateness)."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY, CollectorRegistry

from services.expiry.metrics import ExpiryMetrics
from services.invitation import metrics
from services.notifier.domain.delivery import Failed, Sent
from services.notifier.metrics import Metrics
from shared.contract import Reply


def value(name: str, registry: CollectorRegistry = metrics.REGISTRY, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def families(registry: CollectorRegistry) -> list[str]:
    return [family.name for family in registry.collect()]


def test_a_command_is_counted_by_name_status_and_code_with_its_latency() -> None:
    before = value("invitations_handler_seconds_count", handler="revoke_invitation") or 0
    refused = Reply.rejected(str(uuid.uuid4()), "invitation_not_found", "no such invitation")
    counted = {"command": "revoke_invitation", "status": "rejected", "code": "invitation_not_found"}
    start = value("invitations_commands_total", **counted) or 0
    metrics.observe_command("revoke_invitation", refused, 0.004)
    assert value("invitations_commands_total", **counted) == start + 1
    assert value("invitations_handler_seconds_count", handler="revoke_invitation") == before + 1


def test_routing_keys_outside_the_contract_share_one_label() -> None:
    reply = Reply.rejected(None, "unknown_command", "unknown")
    labels = {"command": "unknown", "status": "rejected", "code": "unknown_command"}
    start = value("invitations_commands_total", **labels) or 0
    for garbage in ("x" * 200, "drop table", str(uuid.uuid4())):
        metrics.observe_command(garbage, reply, 0.001)
    assert value("invitations_commands_total", **labels) == start + 3
    assert metrics.event_label("NotAnEvent") == "unknown"
    assert metrics.event_label("UserInvited") == "UserInvited"


def test_each_service_registers_only_metrics_with_its_own_prefix() -> None:
    assert all(name.startswith("invitations_") for name in families(metrics.REGISTRY))
    assert all(name.startswith("notifier_") for name in families(Metrics().registry))
    assert all(name.startswith("expiry_") for name in families(ExpiryMetrics().registry))
    # The default registry, which every service serves, holds only the process collectors:
    # importing a service's metrics registers nothing there.
    assert not [n for n in families(REGISTRY) if not n.startswith(("process_", "python_"))]


def test_deadline_gauges_count_open_and_overdue_deadlines_by_command() -> None:
    expiry = ExpiryMetrics()
    expiry.record_deadlines({"lapse_invitation": (2, 1), "expire_contractor": (1, 0)})
    registry = expiry.registry
    assert value("expiry_deadlines_scheduled", registry, kind="lapse_invitation") == 2
    assert value("expiry_deadlines_overdue", registry, kind="lapse_invitation") == 1
    assert value("expiry_deadlines_overdue", registry, kind="expire_contractor") == 0

    expiry.record_deadlines({"expire_contractor": (1, 0)})
    assert value("expiry_deadlines_scheduled", registry, kind="lapse_invitation") is None
    assert value("expiry_deadlines_scheduled", registry, kind="expire_contractor") == 1


def test_expiry_lateness_is_observed_per_command_in_seconds() -> None:
    expiry = ExpiryMetrics()
    expiry.observe_lateness("expire_contractor", 0.3)
    expiry.observe_lateness("not_a_command", 2.0)
    registry = expiry.registry
    labels = {"kind": "expire_contractor"}
    assert value("expiry_deadline_lateness_seconds_count", registry, **labels) == 1
    assert value("expiry_deadline_lateness_seconds_sum", registry, **labels) == 0.3
    # 0.3 s is over the 0.25 s bucket and within the 1 s target's.
    assert value("expiry_deadline_lateness_seconds_bucket", registry, le="0.25", **labels) == 0
    assert value("expiry_deadline_lateness_seconds_bucket", registry, le="1.0", **labels) == 1
    assert value("expiry_deadline_lateness_seconds_count", registry, kind="unknown") == 1


def test_event_to_email_latency_is_observed_for_accepted_emails_only() -> None:
    notifier = Metrics()
    key = uuid.uuid4()
    notifier.observe_latency("invitation_linked", 1000.0, Sent(key, "subject", 1000.15, attempt=1))
    notifier.observe_latency("invitation_linked", 1000.0, Failed(key, "refused", attempt=1))
    notifier.observe_latency(
        "invitation_linked", None, Sent(key, "planned before", 1000.2, attempt=1)
    )
    registry = notifier.registry
    labels = {"kind": "invitation_linked"}
    assert value("notifier_event_to_email_seconds_count", registry, **labels) == 1
    assert value("notifier_event_to_email_seconds_bucket", registry, le="0.1", **labels) == 0
    assert value("notifier_event_to_email_seconds_bucket", registry, le="0.2", **labels) == 1
