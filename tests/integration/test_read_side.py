"""The read side over the real broker and database: every query, the sealed retrieval,
read-your-writes, and each bad input of the contract."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from shared.command_client import CommandClient
from shared.contract import Reply
from shared.sealed_box import RecipientKeys
from shared.secrets import TokenSigner
from shared.settings import decode_secrets_key
from tests.support import TEST_SECRETS_KEY, invitation_service_ready, unique

pytestmark = pytest.mark.integration


def body(tenant: str | None = None, **fields: Any) -> dict[str, Any]:
    found = {"command_id": str(uuid.uuid4()), "actor": "backend@example.com", **fields}
    if tenant is not None:
        found["tenant_id"] = tenant
    return found


def email() -> str:
    return f"{unique('p')}@example.com"


def accepted(reply: Reply) -> dict[str, Any]:
    assert reply.status == "accepted", reply.error
    assert reply.result is not None
    return reply.result


def refused(reply: Reply) -> str:
    assert reply.status == "rejected", reply.result
    assert reply.error is not None
    return reply.error.code


async def test_every_query_answers_over_the_broker(
    start_service, client: CommandClient, tenant: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    ann, ben = email(), email()
    invited = accepted(await client.send("invite_user", body(tenant, email=ann, role="user")))
    batch = accepted(
        await client.send(
            "mass_invite",
            body(
                tenant,
                invitees=[{"email": ben, "role": "administrator"}, {"email": "x", "role": "user"}],
            ),
        )
    )
    token = TokenSigner(decode_secrets_key(TEST_SECRETS_KEY)).token(
        uuid.UUID(invited["invitation_id"]), 1
    )
    looked_up = accepted(await client.send("lookup_invitation_token", body(token=token)))
    assert looked_up["invitation"]["email"] == ann
    accepted(await client.send("accept_invitation", body(tenant, token=token, email=ann)))

    got = accepted(await client.send("get_invitation", body(tenant, email=ann)))
    listed = accepted(await client.send("list_invitations", body(tenant, status=["pending"])))
    members = accepted(await client.send("list_members", body(tenant)))
    report = accepted(
        await client.send("get_mass_invite_report", body(tenant, batch_id=batch["batch_id"]))
    )

    assert got["invitation"]["status"] == "accepted"
    assert [i["email"] for i in listed["invitations"]] == [ben]
    assert listed["next_page_token"] is None
    assert [(m["email"], m["status"]) for m in members["members"]] == [(ann, "active")]
    assert (report["invited"], report["refused"]) == (1, 1)
    assert [(r["status"], r.get("invitation_status")) for r in report["rows"]] == [
        ("invited", "pending"),
        ("refused", None),
    ]


async def test_a_query_after_a_reply_always_reflects_that_command(
    start_service, client: CommandClient, tenant: str
) -> None:
    """Read-your-writes, many times over: each command's reply, then at once a query."""
    start_service()
    await invitation_service_ready(client)
    for round_ in range(40):
        person = email()
        invited = accepted(
            await client.send("invite_user", body(tenant, email=person, role="user"))
        )
        found = accepted(
            await client.send(
                "get_invitation", body(tenant, invitation_id=invited["invitation_id"])
            )
        )
        assert found["invitation"]["status"] == "pending", round_
        if round_ % 2:
            accepted(
                await client.send(
                    "revoke_invitation", body(tenant, invitation_id=invited["invitation_id"])
                )
            )
            newest = accepted(await client.send("list_invitations", body(tenant, page_size=1)))
            assert newest["invitations"][0]["invitation_id"] == invited["invitation_id"]
            assert newest["invitations"][0]["status"] == "revoked", round_


async def test_a_manual_password_is_retrieved_sealed_once_over_the_broker(
    start_service, client: CommandClient, tenant: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    person = email()
    invitation = accepted(
        await client.send(
            "invite_user",
            body(tenant, email=person, role="user", temp_password_delivery="manual"),
        )
    )
    keys = RecipientKeys()
    retrieve = body(tenant, email=person, recipient_public_key=keys.public_key)

    first = accepted(await client.send("retrieve_temp_password", retrieve))
    repeated = accepted(await client.send("retrieve_temp_password", retrieve))
    again = await client.send(
        "retrieve_temp_password", body(tenant, email=person, recipient_public_key=keys.public_key)
    )

    assert first["invitation_id"] == invitation["invitation_id"]
    assert len(keys.open(first["sealed_temp_password"])) >= 16
    assert repeated["sealed_temp_password"] is None  # the same command: never the box again
    assert refused(again) == "temp_password_not_available"
    state = accepted(
        await client.send("get_invitation", body(tenant, invitation_id=invitation["invitation_id"]))
    )
    assert state["invitation"]["temp_password"] == "retrieved"


async def test_each_bad_input_is_refused_with_its_code(
    start_service, client: CommandClient, tenant: str
) -> None:
    start_service()
    await invitation_service_ready(client)
    other = f"{tenant}-other"
    for _ in range(3):
        accepted(await client.send("invite_user", body(tenant, email=email(), role="user")))
    batch = accepted(
        await client.send("mass_invite", body(other, invitees=[{"email": email(), "role": "user"}]))
    )
    token = accepted(await client.send("list_invitations", body(tenant, page_size=1)))[
        "next_page_token"
    ]
    manual = email()
    accepted(
        await client.send(
            "invite_user", body(tenant, email=manual, role="user", temp_password_delivery="manual")
        )
    )

    codes = [
        refused(await client.send("list_invitations", body(tenant, page_size=0))),
        refused(await client.send("list_invitations", body(tenant, page_size=501))),
        refused(await client.send("list_invitations", body(other, page_token=token))),
        refused(await client.send("list_members", body(tenant, page_token=token))),
        refused(
            await client.send(
                "list_invitations", body(tenant, page_token=token, status=["revoked"])
            )
        ),
        refused(
            await client.send(
                "retrieve_temp_password",
                body(tenant, email=manual, recipient_public_key="c2hvcnQ="),
            )
        ),
        refused(
            await client.send(
                "retrieve_temp_password",
                body(
                    tenant,
                    email=manual,
                    recipient_public_key=base64.b64encode(bytes(32)).decode(),
                ),
            )
        ),
        refused(
            await client.send("get_mass_invite_report", body(tenant, batch_id=batch["batch_id"]))
        ),
        refused(await client.send("lookup_invitation_token", body(token="garbage"))),
    ]

    assert codes == [
        "invalid_command",
        "invalid_command",
        "invalid_command",
        "invalid_command",
        "invalid_command",
        "invalid_command",
        "invalid_command",
        "invitation_not_found",
        "invalid_token",
    ]
    # The refused retrievals changed nothing: the password is still there, once.
    keys = RecipientKeys()
    retrieved = accepted(
        await client.send(
            "retrieve_temp_password",
            body(tenant, email=manual, recipient_public_key=keys.public_key),
        )
    )
    assert keys.open(retrieved["sealed_temp_password"])
