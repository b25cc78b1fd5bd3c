"""The broker's users may do what their part needs and no more (rules 29-30).

First the definitions file against the contract; then the same file loaded into the real
RabbitMQ on this machine, where the broker itself refuses what a user may not publish.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import aiormq
import pytest

from deploy.rabbitmq import definitions as tables
from shared.contract import COMMANDS, INTERNAL_COMMANDS, QUERIES
from shared.topology import COMMANDS_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME
from tests.ops.least_privilege import DEFINITIONS, BrokerUsers, broker_users, rabbitmqctl
from tests.support import wait_for


@pytest.fixture(scope="module")
def loaded() -> dict[str, Any]:
    value = json.loads(DEFINITIONS.read_text())
    assert isinstance(value, dict)
    return value


def permissions_of(loaded: dict[str, Any], user: str) -> dict[str, str]:
    [grant] = [p for p in loaded["permissions"] if p["user"] == user]
    return dict(grant)


def topic_write(loaded: dict[str, Any], user: str) -> str | None:
    grants = [
        t["write"]
        for t in loaded["topic_permissions"]
        if t["user"] == user and t["exchange"] == COMMANDS_EXCHANGE_NAME
    ]
    return grants[0] if grants else None


def allows(pattern: str, name: str) -> bool:
    """As RabbitMQ applies a permission regex: re:run, so only the anchors make it whole."""
    return re.search(pattern, name) is not None


# -- the file against the contract ----------------------------------------------------------


def test_the_definitions_file_is_what_the_permission_tables_make() -> None:
    assert DEFINITIONS.read_text() == tables.render(), (
        "deploy/rabbitmq/definitions.json is stale: run python -m deploy.rabbitmq.definitions"
    )


def test_every_command_of_the_contract_is_classified_public_or_one_services() -> None:
    assert tables.unclassified(COMMANDS) == set(), (
        "add the new command to PUBLIC_COMMANDS or SERVICE_COMMANDS in "
        "deploy/rabbitmq/definitions.py, then regenerate definitions.json"
    )
    classified = tables.PUBLIC_COMMANDS.union(*tables.SERVICE_COMMANDS.values())
    assert classified <= set(COMMANDS), "a classified command is no longer in the contract"
    services = list(tables.SERVICE_COMMANDS.values())
    assert not tables.PUBLIC_COMMANDS.intersection(*services), "public and internal at once"
    assert sum(map(len, services)) == len(frozenset().union(*services)), "two senders"


def test_the_internal_commands_are_the_contracts_and_retrieving_a_password_is_public() -> None:
    internal = frozenset().union(*tables.SERVICE_COMMANDS.values())
    # The contract (Retrieving a manual temporary password) made it public.
    assert internal == INTERNAL_COMMANDS - {"retrieve_temp_password"}
    assert "retrieve_temp_password" in tables.PUBLIC_COMMANDS
    assert QUERIES <= tables.PUBLIC_COMMANDS  # any backend may ask (contract: "Queries")
    assert tables.SERVICE_COMMANDS["notifier"] == {
        "record_temp_password_delivered",
        "record_notification_failed",
        "record_invitation_email_sent",
    }
    assert tables.SERVICE_COMMANDS["expiry"] == {
        "expire_contractor",
        "lapse_invitation",
        "expire_temp_password",
        "remind_contractor_expiry",
    }


def test_nobody_may_impersonate_and_only_the_operators_login_is_tagged(
    loaded: dict[str, Any],
) -> None:
    tags = {u["name"]: u["tags"] for u in loaded["users"]}
    assert not any("impersonator" in t for t in tags.values())
    assert {name for name, t in tags.items() if t} == {"admin"}
    assert set(tags) == {"admin", "invitation", "notifier", "expiry", "cli", "backend"}


def test_no_password_is_in_the_repository(loaded: dict[str, Any]) -> None:
    for user in loaded["users"]:
        assert set(user) == {"name", "tags"}, user["name"]


@pytest.mark.parametrize(
    ("user", "commands"),
    [
        ("backend", tables.PUBLIC_COMMANDS),
        (
            "notifier",
            {
                "record_temp_password_delivered",
                "record_notification_failed",
                "record_invitation_email_sent",
            },
        ),
        ("expiry", tables.SERVICE_COMMANDS["expiry"]),
    ],
)
def test_each_sender_may_publish_exactly_its_commands(
    loaded: dict[str, Any], user: str, commands: frozenset[str]
) -> None:
    pattern = topic_write(loaded, user)
    assert pattern is not None
    assert {c for c in COMMANDS if allows(pattern, c)} == set(commands)
    assert not allows(pattern, "#")
    assert not allows(pattern, "invite_user.x")


def test_only_the_senders_and_the_operator_may_write_to_the_commands_exchange(
    loaded: dict[str, Any],
) -> None:
    writers = {
        p["user"] for p in loaded["permissions"] if allows(p["write"], COMMANDS_EXCHANGE_NAME)
    }
    assert writers == {"admin", "backend", "notifier", "expiry"}
    # Each writer but the operator's login is held to its routing keys.
    assert all(topic_write(loaded, user) for user in writers - {"admin"})


def test_only_the_invitation_service_and_the_operator_cli_may_publish_events(
    loaded: dict[str, Any],
) -> None:
    writers = {p["user"] for p in loaded["permissions"] if allows(p["write"], EVENTS_EXCHANGE_NAME)}
    assert writers == {"admin", "invitation", "cli"}


def test_only_the_invitation_service_may_read_the_commands_queue(loaded: dict[str, Any]) -> None:
    readers = {p["user"] for p in loaded["permissions"] if allows(p["read"], "invitation.commands")}
    assert readers == {"admin", "invitation"}


# -- the real broker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users() -> Iterator[BrokerUsers]:
    with broker_users() as loaded_users:
        yield loaded_users


@pytest.fixture
async def commands_queue(users: BrokerUsers) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """The commands exchange and a queue bound with `#`, declared as the invitation
    service declares them, as its own user."""
    connection = await aio_pika.connect(users.url("invitation"))
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        COMMANDS_EXCHANGE_NAME, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue("invitation.commands", durable=True)
    await queue.bind(exchange, routing_key="#")
    await queue.purge()
    try:
        yield queue
    finally:
        await connection.close()


async def publish_command(users: BrokerUsers, user: str, routing_key: str) -> None:
    """One command published as `user`, with its `user_id`, awaiting the broker's confirm."""
    connection = await aio_pika.connect(users.url(user))
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE_NAME)  # passive: no configure
        await exchange.publish(
            aio_pika.Message(
                json.dumps({"command_id": str(uuid.uuid4())}).encode(),
                content_type="application/json",
                user_id=users.name(user),
            ),
            routing_key=routing_key,
            timeout=10,
        )
    finally:
        await connection.close()


def topic_refused(command: str) -> str:
    """What the broker says when it closes the channel over a routing key."""
    return f"ACCESS_REFUSED - access to topic '{command}' in exchange"


async def next_message(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    message = await wait_for(
        lambda: queue.get(fail=False, no_ack=True), timeout=5, what="the published command"
    )
    assert isinstance(message, aio_pika.abc.AbstractIncomingMessage)
    return message


@pytest.mark.integration
async def test_the_definitions_load_into_the_broker_without_a_tagged_or_default_user(
    users: BrokerUsers,
) -> None:
    listed = rabbitmqctl("list_users")
    ours = [line.split("\t") for line in listed.splitlines() if line.startswith(users.prefix)]
    assert {name.removeprefix(users.prefix) for name, _ in ours} == {
        "admin",
        "invitation",
        "notifier",
        "expiry",
        "cli",
        "backend",
    }
    assert all("impersonator" not in tags for _, tags in ours)
    topic = rabbitmqctl("list_topic_permissions", "-p", users.vhost)
    assert f"{users.name('backend')}\t{COMMANDS_EXCHANGE_NAME}" in topic


@pytest.mark.integration
@pytest.mark.parametrize("command", ["invite_user", "retrieve_temp_password"])
async def test_a_backend_may_publish_a_public_command(
    users: BrokerUsers, commands_queue: aio_pika.abc.AbstractQueue, command: str
) -> None:
    await publish_command(users, "backend", command)

    message = await next_message(commands_queue)
    assert message.routing_key == command
    assert message.user_id == users.name("backend")


@pytest.mark.integration
@pytest.mark.parametrize(
    "command", ["record_temp_password_delivered", "expire_contractor", "lapse_invitation"]
)
async def test_a_backend_publishing_an_internal_command_is_refused_by_the_broker(
    users: BrokerUsers, commands_queue: aio_pika.abc.AbstractQueue, command: str
) -> None:
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=topic_refused(command)):
        await publish_command(users, "backend", command)

    assert await commands_queue.get(fail=False) is None


@pytest.mark.integration
@pytest.mark.parametrize(
    ("user", "own", "others"),
    [
        ("notifier", "record_temp_password_delivered", ("expire_contractor", "invite_user")),
        ("expiry", "expire_contractor", ("record_temp_password_delivered", "configure_tenant")),
    ],
)
async def test_a_service_user_may_send_its_own_commands_and_nothing_else(
    users: BrokerUsers,
    commands_queue: aio_pika.abc.AbstractQueue,
    user: str,
    own: str,
    others: tuple[str, ...],
) -> None:
    await publish_command(users, user, own)
    assert (await next_message(commands_queue)).user_id == users.name(user)

    for command in others:
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=topic_refused(command)):
            await publish_command(users, user, command)
    assert await commands_queue.get(fail=False) is None


@pytest.mark.integration
async def test_the_invitation_service_and_the_cli_publish_no_commands(
    users: BrokerUsers, commands_queue: aio_pika.abc.AbstractQueue
) -> None:
    for user in ("invitation", "cli"):
        refused = f"ACCESS_REFUSED - access to exchange '{COMMANDS_EXCHANGE_NAME}'"
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=refused):
            await publish_command(users, user, "invite_user")
    assert await commands_queue.get(fail=False) is None
