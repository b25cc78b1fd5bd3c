"""Rule 34 over the real broker: `remove_member` and `change_role` sent to the running
invitation service, refused or accepted as the contract says, and their events relayed
on `invitations.events`.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import pytest

from shared.command_client import CommandClient
from shared.contract import Reply
from shared.secrets import TokenSigner
from shared.settings import decode_secrets_key
from tests.support import (
    TEST_SECRETS_KEY,
    EventTap,
    invitation_service_ready,
    unique,
    wait_for,
)

pytestmark = pytest.mark.integration


class Console:
    """An administrator of one tenant, over the broker."""

    def __init__(self, client: CommandClient, tenant: str) -> None:
        self.client = client
        self.tenant = tenant

    async def send(self, name: str, **fields: Any) -> Reply:
        body = {
            "command_id": str(uuid.uuid4()),
            "actor": "admin@example.com",
            "tenant_id": self.tenant,
            **fields,
        }
        return await self.client.send(name, body, within=10)

    async def ok(self, name: str, **fields: Any) -> dict[str, Any]:
        reply = await self.send(name, **fields)
        assert reply.status == "accepted", reply
        assert reply.result is not None
        return reply.result

    async def refused(self, name: str, **fields: Any) -> str:
        reply = await self.send(name, **fields)
        assert reply.error is not None, reply
        return reply.error.code

    async def join(self, email: str, role: str = "user") -> None:
        invitation_id = (await self.ok("invite_user", email=email, role=role))["invitation_id"]
        key = decode_secrets_key(TEST_SECRETS_KEY)
        link_token = TokenSigner(key).token(UUID(invitation_id), 1)
        await self.ok("accept_invitation", token=link_token, email=email, actor=email)


async def test_the_last_administrator_stays_and_the_others_come_and_go(
    start_service: Any, client: CommandClient, tenant: str, amqp_url: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    acme = Console(client, tenant)
    ann, bob = f"{unique('ann')}@example.com", f"{unique('bob')}@example.com"
    async with EventTap(amqp_url) as tap:
        await acme.join(ann, "administrator")
        await acme.join(bob)

        assert await acme.refused("remove_member", email=ann) == "last_administrator"
        assert await acme.refused("change_role", email=ann, role="user") == "last_administrator"
        assert await acme.refused("remove_member", email=f"{unique('x')}@example.com") == (
            "not_a_member"
        )
        assert await acme.refused("change_role", email=bob, role="contractor") == (
            "contractor_disabled"
        )
        promoted = await acme.ok("change_role", email=bob, role="administrator")
        assert (promoted["previous_role"], promoted["role"]) == ("user", "administrator")
        removed = await acme.ok("remove_member", email=ann.upper(), reason="left")
        assert removed["role"] == "administrator"
        assert await acme.refused("remove_member", email=bob) == "last_administrator"

        changed, gone = await wait_for(
            lambda: (
                tap.of_type("MemberRoleChanged")
                and tap.of_type("MemberRemoved")
                and (tap.of_type("MemberRoleChanged")[0], tap.of_type("MemberRemoved")[0])
            ),
            what="the member events on invitations.events",
        )
    assert changed.tenant_id == tenant
    assert {k: changed.data[k] for k in ("email", "role", "previous_role")} == {
        "email": bob,
        "role": "administrator",
        "previous_role": "user",
    }
    assert {k: gone.data[k] for k in ("email", "role", "reason")} == {
        "email": ann,
        "role": "administrator",
        "reason": "left",
    }
    assert str(gone.event_id) in tap.message_ids
