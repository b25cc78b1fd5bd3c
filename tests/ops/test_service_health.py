"""The services run with HTTP_PORT: health, readiness and metrics for real."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from shared.command_client import CommandClient
from tests.ops.conftest import DATABASE_PASSWORD, RunningService, http_get
from tests.support import POSTGRES, foreign_metrics, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Must never appear in a log line, whatever the command did with them.
SECRET_TOKEN = "tok-" + uuid.uuid4().hex


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text `metrics`, or None."""
    for line in metrics.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if found == labels:
            return float(match[3])
    return None


async def ready(service: RunningService) -> None:
    async def answered() -> bool:
        assert service.process.poll() is None, f"the service exited:\n{service.log()}"
        answer = http_get(f"{service.base_url}/readyz")
        return answer is not None and answer.status == 200

    await wait_for(answered, timeout=45, what="/readyz to answer 200")


async def test_the_service_reports_live_ready_and_counts_commands_in_its_metrics(
    invitation_service: Callable[..., RunningService],
) -> None:
    service = invitation_service()
    await ready(service)

    live = http_get(f"{service.base_url}/healthz")
    assert live is not None
    assert live.status == 200
    readiness = http_get(f"{service.base_url}/readyz")
    assert readiness is not None
    assert json.loads(readiness.body)["checks"] == {
        "broker": "ok",
        "consuming": "ok",
        "database": "ok",
    }

    tenant = unique("tenant").replace("_", "-")
    async with CommandClient(service.amqp_url) as client:
        accepted = await client.send(
            "invite_user",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "email": f"{unique('person')}@example.com",
                "role": "user",
            },
        )
        refused = await client.send(
            "accept_invitation",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "someone@example.com",
                "tenant_id": tenant,
                "token": SECRET_TOKEN,
                "email": "someone@example.com",
            },
        )
        garbage = await client.send("no_such_command", {"command_id": str(uuid.uuid4())})
    assert accepted.status == "accepted"
    assert refused.error is not None
    assert garbage.error is not None
    assert garbage.error.code == "unknown_command"

    async def relayed() -> str | None:
        answer = http_get(f"{service.base_url}/metrics")
        assert answer is not None
        assert answer.status == 200
        caught_up = sample(answer.body, "invitations_relay_lag", relay="outbox") == 0
        caught_up = caught_up and sample(answer.body, "invitations_relay_leading", relay="outbox")
        published = sample(
            answer.body, "invitations_events_relayed_total", event_type="UserInvited"
        )
        return answer.body if caught_up and published else None

    metrics = await wait_for(relayed, timeout=20, what="the relay to publish and catch up")
    assert (
        sample(
            metrics, "invitations_commands_total", command="invite_user", status="accepted", code=""
        )
        == 1
    )
    assert (
        sample(
            metrics,
            "invitations_commands_total",
            command="accept_invitation",
            status="rejected",
            code=refused.error.code,
        )
        == 1
    )
    assert (
        sample(
            metrics,
            "invitations_commands_total",
            command="unknown",
            status="rejected",
            code="unknown_command",
        )
        == 1
    )
    assert sample(metrics, "invitations_handler_seconds_count", handler="invite_user") == 1
    assert (sample(metrics, "invitations_command_batch_size_count") or 0) >= 2
    stored = sample(metrics, "invitations_event_store_position", store="invitations")
    assert stored is not None
    assert stored > 0
    assert sample(metrics, "invitations_relay_published_position", relay="outbox") == stored
    assert foreign_metrics(metrics, "invitations_") == []

    assert service.terminate() == 0
    log = service.log()
    assert SECRET_TOKEN not in log
    assert DATABASE_PASSWORD not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all(line["service"] == "invitation" for line in lines)
    assert any(line.get("command") == "invite_user" for line in lines)


async def test_readiness_fails_and_says_why_when_the_database_cannot_be_used(
    invitation_service: Callable[..., RunningService],
) -> None:
    service = invitation_service()
    await ready(service)
    # Dropping the store's schema under the running service stands in for a database
    # it can no longer use: the readiness query fails, and the answer names the check.
    schema = service.database_url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    answer = http_get(f"{service.base_url}/readyz")
    assert answer is not None
    assert answer.status == 503
    checks = json.loads(answer.body)["checks"]
    assert checks["broker"] == "ok"
    assert checks["database"] != "ok"
    live = http_get(f"{service.base_url}/healthz")
    assert live is not None
    assert live.status == 200, "liveness does not depend on the database"
    service.terminate()
    assert DATABASE_PASSWORD not in service.log(), "database errors were logged with the URL"


async def test_the_expiry_service_is_ready_once_rebuilt_and_counts_its_deadlines(
    start_service: Callable[..., RunningService],
) -> None:
    invitation = start_service("services.invitation")
    await ready(invitation)
    tenant = unique("tenant").replace("_", "-")
    async with CommandClient(invitation.amqp_url) as client:
        configured = await client.send(
            "configure_tenant",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "contractor_enabled": True,
            },
        )
        assert configured.status == "accepted", configured
        reply = await client.send(
            "invite_user",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "email": f"{unique('contractor')}@example.com",
                "role": "contractor",
                "access_expires_at": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
            },
        )
    assert reply.status == "accepted", reply

    expiry = start_service("services.expiry", share=invitation)
    await ready(expiry)
    readiness = http_get(f"{expiry.base_url}/readyz")
    assert readiness is not None
    assert json.loads(readiness.body)["checks"] == {
        "broker": "ok",
        "database": "ok",
        "schedule": "ok",
    }

    async def counted() -> str | None:
        answer = http_get(f"{expiry.base_url}/metrics")
        assert answer is not None
        scheduled = sample(answer.body, "expiry_deadlines_scheduled", kind="expire_contractor")
        return answer.body if scheduled == 1 else None

    metrics = await wait_for(counted, timeout=20, what="the contractor's deadlines in /metrics")
    assert sample(metrics, "expiry_deadlines_scheduled", kind="lapse_invitation") == 1
    assert sample(metrics, "expiry_deadlines_scheduled", kind="remind_contractor_expiry") == 2
    assert sample(metrics, "expiry_deadlines_overdue", kind="expire_contractor") == 0
    # Its own metrics only: none of the invitation service's (they were all exported here).
    assert foreign_metrics(metrics, "expiry_") == []
    assert "expiry_deadline_lateness_seconds" in metrics

    assert expiry.terminate() == 0
    lines = [json.loads(line) for line in expiry.log().splitlines() if line.strip()]
    assert all(line["service"] == "expiry" for line in lines)
