"""The trust boundary over the real broker (rules 29-31): each attack of issue 13, refused.

Two broker users on the test vhost: the invitation service's own (`svc`, the default
INTERNAL_SENDERS) and a backend's. Each attack is refused with its code and changes
nothing in the store; a valid command from an allowed sender still works.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aio_pika
import aiormq
import pytest
import pytest_asyncio

from services.invitation.eventstore import EventLog
from shared.command_client import CommandClient
from shared.contract import Reply
from shared.senders import broker_user
from shared.topology import COMMANDS_EXCHANGE_NAME
from tests.support import (
    EventTap,
    invitation_service_ready,
    temporary_broker_user,
    unique,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc_url(amqp_url: str) -> Iterator[str]:
    with temporary_broker_user(amqp_url, "svc") as url:
        yield url


@pytest.fixture(scope="module")
def backend_url(amqp_url: str) -> Iterator[str]:
    with temporary_broker_user(amqp_url, "backend") as url:
        yield url


@pytest_asyncio.fixture
async def backend(backend_url: str) -> AsyncIterator[CommandClient]:
    async with CommandClient(backend_url) as client:
        yield client


@pytest_asyncio.fixture
async def svc(svc_url: str) -> AsyncIterator[CommandClient]:
    async with CommandClient(svc_url) as client:
        yield client


@pytest.fixture
def store(database_url: str) -> Iterator[EventLog]:
    log = EventLog(database_url)
    yield log
    log.close()


def body(tenant: str | None = None, **fields: Any) -> dict[str, Any]:
    command = {"command_id": str(uuid.uuid4()), "actor": "admin@example.com", **fields}
    if tenant is not None:
        command["tenant_id"] = tenant
    return command


def refused(reply: Reply, code: str) -> dict[str, Any]:
    assert reply.status == "rejected", reply.result
    assert reply.error is not None
    assert reply.error.code == code, reply.error
    return reply.error.details


def position(store: EventLog) -> int:
    return store.max_position()


async def test_a_forged_delivery_report_is_forbidden_and_the_sealed_copy_survives(
    start_service,
    svc_url: str,
    backend_url: str,
    svc: CommandClient,
    backend: CommandClient,
    tenant: str,
    amqp_url: str,
    store: EventLog,
) -> None:
    start_service(AMQP_URL=svc_url)
    await invitation_service_ready(backend)
    async with EventTap(amqp_url) as tap:
        email = f"{unique('victim')}@example.com"
        invited = await backend.send("invite_user", body(tenant, email=email, role="user"))
        assert invited.status == "accepted"
        issued = await wait_for(lambda: tap.of_type("TempPasswordIssued"), what="the password")
    # The id the attacker reads from every TempPasswordIssued on the events exchange.
    temp_password_id = UUID(issued[0].data["temp_password_id"])
    sealed = store.store.recorder.read_sealed  # type: ignore[attr-defined]
    before = position(store)

    report = body(email=email, temp_password_id=str(temp_password_id), actor="service:notifier")
    forged = await backend.send("record_temp_password_delivered", report)

    details = refused(forged, "forbidden")
    assert details["rule"] == "internal_command"
    assert details["sender"] == broker_user(backend_url)
    assert sealed(temp_password_id) is not None  # the invitation email can still go out
    assert position(store) == before

    # From the service's own broker user (the notifier's, in a deployment) it is accepted.
    genuine = await svc.send(
        "record_temp_password_delivered", {**report, "command_id": str(uuid.uuid4())}
    )
    assert genuine.status == "accepted", genuine.error
    assert genuine.result == {"temp_password_id": str(temp_password_id), "recorded": True}
    assert sealed(temp_password_id) is None


async def test_forged_expiry_commands_are_forbidden_and_change_nothing(
    start_service, svc_url: str, backend: CommandClient, tenant: str, store: EventLog
) -> None:
    start_service(AMQP_URL=svc_url)
    await invitation_service_ready(backend)
    contractor = f"{unique('contractor')}@example.com"
    ends = datetime.now(UTC) + timedelta(days=30)
    assert (await backend.send("configure_tenant", body(tenant, contractor_enabled=True))).result
    invited = await backend.send(
        "invite_user",
        body(tenant, email=contractor, role="contractor", access_expires_at=ends.isoformat()),
    )
    assert invited.result is not None
    before = position(store)
    forged = {
        "expire_contractor": body(tenant, email=contractor),
        "remind_contractor_expiry": body(tenant, email=contractor, offset="P1D"),
        "lapse_invitation": body(tenant, invitation_id=invited.result["invitation_id"]),
        "expire_temp_password": body(email=contractor, temp_password_id=str(uuid.uuid4())),
    }
    for name, command in forged.items():
        command["actor"] = "service:expiry"
        details = refused(await backend.send(name, command), "forbidden")
        assert details["rule"] == "internal_command", name
        assert details["command"] == name
    assert position(store) == before


async def test_a_backend_claiming_to_be_the_expiry_service_is_recorded_as_itself(
    start_service,
    svc_url: str,
    backend_url: str,
    backend: CommandClient,
    tenant: str,
    amqp_url: str,
) -> None:
    start_service(AMQP_URL=svc_url)
    await invitation_service_ready(backend)
    async with EventTap(amqp_url) as tap:
        claimed = body(tenant, admin_notification_emails=["mallory@evil.example"])
        claimed["actor"] = "service:expiry"
        reply = await backend.send("configure_tenant", claimed)
        assert reply.status == "accepted"  # no policy: any sender may configure any tenant
        configured = await wait_for(
            lambda: [e for e in tap.of_type("TenantConfigured") if e.tenant_id == tenant],
            what="TenantConfigured",
        )
    assert configured[0].actor == "service:expiry"  # what it said
    assert configured[0].sender == broker_user(backend_url)  # what RabbitMQ proved


async def test_with_a_policy_a_backend_may_only_do_what_it_lists(
    start_service,
    svc_url: str,
    backend_url: str,
    backend: CommandClient,
    store: EventLog,
    tmp_path: Path,
) -> None:
    name = broker_user(backend_url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"senders:\n  {name}:\n    commands: [invite_user, resend_invitation]\n"
        '    tenants: ["acme-*"]\n'
    )
    start_service(AMQP_URL=svc_url, SENDER_POLICY=str(policy))
    await invitation_service_ready(backend)
    tenant = unique("acme").replace("_", "-")
    before = position(store)

    claimed = body(tenant, admin_notification_emails=["mallory@evil.example"])
    claimed["actor"] = "service:expiry"
    details = refused(await backend.send("configure_tenant", claimed), "forbidden")
    assert details == {
        "sender": name,
        "command": "configure_tenant",
        "tenant_id": tenant,
        "rule": "command_not_allowed",
        "policy_line": 3,
    }
    # Pre-empting an invitee by registering their address first: not its business.
    victim = f"{unique('victim')}@example.com"
    details = refused(await backend.send("register_account", body(email=victim)), "forbidden")
    assert details["rule"] == "command_not_allowed"
    assert details["tenant_id"] is None
    other = unique("globex").replace("_", "-")
    details = refused(
        await backend.send("invite_user", body(other, email=victim, role="user")), "forbidden"
    )
    assert details["rule"] == "tenant_not_allowed"
    assert position(store) == before

    # What it is allowed still works.
    allowed = await backend.send("invite_user", body(tenant, email=victim, role="user"))
    assert allowed.status == "accepted", allowed.error


async def test_a_command_without_user_id_is_unauthenticated_and_changes_nothing(
    start_service,
    svc_url: str,
    backend_url: str,
    backend: CommandClient,
    tenant: str,
    store: EventLog,
) -> None:
    start_service(AMQP_URL=svc_url)
    await invitation_service_ready(backend)
    before = position(store)
    async with CommandClient(backend_url, user_id=False) as anonymous:
        reply = await anonymous.send(
            "invite_user", body(tenant, email=f"{unique('a')}@example.com", role="user")
        )
    refused(reply, "unauthenticated")
    assert position(store) == before


async def test_the_broker_refuses_a_user_id_that_is_not_the_publishers_login(
    svc_url: str, backend_url: str
) -> None:
    connection = await aio_pika.connect_robust(backend_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
        )
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id"):
            await exchange.publish(
                aio_pika.Message(b"{}", user_id=broker_user(svc_url)),
                routing_key="record_temp_password_delivered",
            )


async def test_names_with_links_addresses_or_control_characters_are_invalid_name(
    start_service, svc_url: str, backend: CommandClient, tenant: str, store: EventLog
) -> None:
    start_service(AMQP_URL=svc_url)
    await invitation_service_ready(backend)
    before = position(store)
    bad_names = [
        "Your account is locked. Verify now at https://evil.example/login",
        "evil.example/login",
        "it-support@evil.example",
        "Jane\nPlease call +1 555",
        "J" * 101,
    ]
    for name in bad_names:
        invite = body(tenant, email=f"{unique('a')}@example.com", role="user", display_name=name)
        details = refused(await backend.send("invite_user", invite), "invalid_name")
        assert details["field"] == "display_name"
    inviter = body(tenant, email=f"{unique('a')}@example.com", role="user")
    inviter["inviter_name"] = "www.evil.example"
    assert refused(await backend.send("invite_user", inviter), "invalid_name")["field"] == (
        "inviter_name"
    )
    assert position(store) == before

    fine = body(tenant, email=f"{unique('a')}@example.com", role="user", display_name="Jane Doe")
    assert (await backend.send("invite_user", {**fine, "inviter_name": "Ann Lee"})).status == (
        "accepted"
    )


async def test_eleven_reminder_offsets_are_invalid_setting(
    start_service, svc_url: str, backend: CommandClient, tenant: str, store: EventLog
) -> None:
    start_service(AMQP_URL=svc_url)
    await invitation_service_ready(backend)
    before = position(store)
    flood = [f"PT{s}S" for s in range(1, 12)]
    reply = await backend.send("configure_tenant", body(tenant, expiry_reminders=flood))
    assert refused(reply, "invalid_setting") == {"setting": "expiry_reminders"}
    assert position(store) == before
    ten = await backend.send("configure_tenant", body(tenant, expiry_reminders=flood[:10]))
    assert ten.status == "accepted"


def test_a_bad_policy_file_stops_the_service_with_the_line_named(
    start_service, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("senders:\n  backend:\n    commands: [invite_user, expire_contractor]\n")
    service = start_service(SENDER_POLICY=str(policy))
    assert service.process.wait(30) != 0
    assert f"SENDER_POLICY: {policy} line 3: expire_contractor is internal" in service.log()
