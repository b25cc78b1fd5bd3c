"""`invitations audit` shows who sent each command (its broker user) beside the actor."""

from __future__ import annotations

import json

import pytest

from shared.contract import EventEnvelope

pytestmark = pytest.mark.integration


def test_audit_filters_by_sender_and_shows_it_beside_the_claimed_actor(store, tenant: str):
    store.command(
        "configure_tenant",
        sender="backend-mallory",
        actor="service:expiry",
        tenant_id=tenant,
        admin_notification_emails=["mallory@evil.example"],
    )
    store.command(
        "invite_user",
        sender="backend-billing",
        tenant_id=tenant,
        email="ann@example.com",
        role="user",
    )

    result = store.run(
        "audit", "--tenant", tenant, "--sender", "backend-mallory", "--format", "json"
    )

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["event_type"], e["actor"], e["sender"]) for e in lines] == [
        ("TenantConfigured", "service:expiry", "backend-mallory")
    ]
    everything = store.run("audit", "--tenant", tenant, "--format", "json")
    senders = {EventEnvelope.model_validate_json(x).sender for x in everything.stdout.splitlines()}
    assert senders == {"backend-mallory", "backend-billing"}


def test_the_audit_table_has_a_sender_column(store, tenant: str):
    store.command(
        "configure_tenant", sender="backend-mallory", tenant_id=tenant, contractor_enabled=True
    )
    store.command("configure_tenant", tenant_id=tenant, contractor_enabled=False)  # in process

    result = store.run("audit", "--tenant", tenant, "--format", "table", COLUMNS="200")

    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "occurred at" in line)
    assert "actor" in header
    assert "sender" in header
    assert "backend-mallory" in result.stdout
