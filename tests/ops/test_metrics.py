"""The shared metrics keep their label sets bounded and their gauges current."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from shared import metrics
from shared.contract import Reply


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


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


def test_deadline_gauges_count_open_and_overdue_deadlines_by_command() -> None:
    metrics.record_deadlines({"lapse_invitation": (2, 1), "expire_contractor": (1, 0)})
    assert value("invitations_deadlines_scheduled", kind="lapse_invitation") == 2
    assert value("invitations_deadlines_overdue", kind="lapse_invitation") == 1
    assert value("invitations_deadlines_overdue", kind="expire_contractor") == 0

    metrics.record_deadlines({"expire_contractor": (1, 0)})
    assert value("invitations_deadlines_scheduled", kind="lapse_invitation") is None
    assert value("invitations_deadlines_scheduled", kind="expire_contractor") == 1
