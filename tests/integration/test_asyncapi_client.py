"""A client written from docs/asyncapi.yaml alone reaches the service and is answered.

It reads where to publish (the operation's channel: exchange and routing key from the
AMQP bindings), what to send (the message's example) and where the answer comes (the
reply address), and nothing else of the project.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest
import yaml

from shared.command_client import CommandClient
from tests.support import invitation_service_ready

pytestmark = pytest.mark.integration

DOCUMENT = Path(__file__).parents[2] / "docs" / "asyncapi.yaml"


def resolve(document: dict[str, Any], reference: str) -> Any:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return resolve(document, node["$ref"]) if set(node) == {"$ref"} else node


async def test_a_command_built_from_the_documents_example_is_accepted(
    start_service, client: CommandClient, amqp_url: str, tenant: str
) -> None:
    document = yaml.safe_load(DOCUMENT.read_text())
    operation = document["operations"]["invite_user"]
    channel = resolve(document, operation["channel"]["$ref"])
    exchange_name = channel["bindings"]["amqp"]["exchange"]["name"]
    routing_key = channel["address"]
    message = resolve(document, operation["messages"][0]["$ref"])
    assert "AMQP property `user_id`" in message["description"]
    body = dict(message["examples"][0]["payload"])
    # Fresh ids, so that this run is not answered from an earlier one's idempotency record.
    body.update(
        command_id=str(uuid.uuid4()), tenant_id=tenant, email=f"{uuid.uuid4().hex}@example.com"
    )
    start_service()
    await invitation_service_ready(client)

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        amqp = await connection.channel()
        replies = await amqp.declare_queue(exclusive=True)
        exchange = await amqp.get_exchange(exchange_name)
        await exchange.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                content_type=message["contentType"],
                correlation_id="from-the-document",
                reply_to=replies.name,
                # As the message's description says: the broker user it is published as.
                user_id=urlsplit(amqp_url).username,
            ),
            routing_key=routing_key,
        )
        async with replies.iterator(timeout=30) as incoming:
            answer = await asyncio.wait_for(anext(incoming), 30)
            await answer.ack()

    reply = json.loads(answer.body)
    assert answer.correlation_id == "from-the-document"
    assert reply["status"] == "accepted", reply
    reply_message = resolve(document, operation["reply"]["messages"][0]["$ref"])
    result_schema = resolve(
        document,
        resolve(document, reply_message["payload"]["$ref"])["properties"]["result"]["anyOf"][0][
            "$ref"
        ],
    )
    assert set(result_schema["required"]) <= set(reply["result"])
