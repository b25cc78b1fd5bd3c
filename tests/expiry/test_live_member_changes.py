"""Rules 34 and 36 live: `python -m services.invitation` and `python -m services.expiry` on
this module's PostgreSQL schema and RabbitMQ vhost, commands over the broker.

- a member made contractor is expired at the new end date by the running expiry service;
- a contractor whose access ends loses the unused temporary password
  (`TempPasswordRevoked`), so no "expired unused" deadline is left to fire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from services.invitation.eventstore import EventLog
from shared.command_client import CommandClient
from shared.contract import EventEnvelope
from shared.sealed_box import RecipientKeys
from shared.secrets import TokenSigner
from shared.settings import decode_secrets_key
from tests.support import (
    TEST_SECRETS_KEY,
    ServiceProcess,
    invitation_service_ready,
    send_accepted,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Start = Callable[..., ServiceProcess]


@pytest.fixture
def event_log(database_url: str) -> Iterator[EventLog]:
    log = EventLog(database_url)
    yield log
    log.close()


async def send(client: CommandClient, name: str, **fields: Any) -> dict[str, Any]:
    return await send_accepted(client, name, **fields)


async def running(client: CommandClient, expiry: ServiceProcess) -> None:
    await invitation_service_ready(client)
    await wait_for(lambda: "rebuilt" in expiry.log(), timeout=30, what="the expiry service")


def events_of(log: EventLog, tenant: str, event_type: str) -> list[EventEnvelope]:
    return [e for e in log.read(0, 100_000) if e.event_type == event_type and e.tenant_id == tenant]


def token(invitation_id: str) -> str:
    return TokenSigner(decode_secrets_key(TEST_SECRETS_KEY)).token(UUID(invitation_id), 1)


async def test_a_member_made_contractor_is_expired_at_the_new_end_by_the_running_service(
    start_service: Start, client: CommandClient, event_log: EventLog
) -> None:
    start_service("invitation")
    await running(client, start_service("expiry"))
    tenant, email = unique("acme"), f"{unique('ugo')}@example.com"
    await send(client, "configure_tenant", tenant_id=tenant, contractor_enabled=True)
    invited = await send(client, "invite_user", tenant_id=tenant, email=email, role="user")
    await send(
        client,
        "accept_invitation",
        tenant_id=tenant,
        email=email,
        token=token(invited["invitation_id"]),
        actor=email,
    )
    end = datetime.now(UTC) + timedelta(seconds=3)
    await send(
        client,
        "change_role",
        tenant_id=tenant,
        email=email,
        role="contractor",
        access_expires_at=end.isoformat(),
    )

    (expired,) = await wait_for(
        lambda: events_of(event_log, tenant, "ContractorExpired"),
        timeout=30,
        what="ContractorExpired",
    )
    assert expired.data["email"] == email
    assert expired.data["access_expires_at"] == end.isoformat()
    assert expired.actor == "service:expiry"


async def test_a_contractor_whose_access_ends_loses_the_unused_temporary_password(
    start_service: Start, client: CommandClient, event_log: EventLog
) -> None:
    start_service("invitation")
    await running(client, start_service("expiry"))
    tenant, email = unique("acme"), f"{unique('dora')}@example.com"
    await send(client, "configure_tenant", tenant_id=tenant, contractor_enabled=True)
    end = datetime.now(UTC) + timedelta(seconds=3)
    await send(
        client,
        "invite_user",
        tenant_id=tenant,
        email=email,
        role="contractor",
        access_expires_at=end.isoformat(),
        temp_password_delivery="manual",
    )

    (revoked,) = await wait_for(
        lambda: events_of(event_log, tenant, "TempPasswordRevoked"),
        timeout=30,
        what="TempPasswordRevoked",
    )
    (issued,) = events_of(event_log, tenant, "TempPasswordIssued")
    (expired,) = events_of(event_log, tenant, "ContractorExpired")
    assert revoked.data["temp_password_id"] == issued.data["temp_password_id"]
    assert revoked.correlation_id == expired.correlation_id  # the same command ended both
    retrieval = await client.send(
        "retrieve_temp_password",
        {
            "command_id": str(uuid.uuid4()),
            "actor": "operator:test",
            "tenant_id": tenant,
            "email": email,
            "recipient_public_key": RecipientKeys().public_key,
        },
        within=10,
    )
    assert retrieval.error is not None
    assert retrieval.error.code == "temp_password_not_available"
