"""The walkthrough's read side: what a backend and an administrator ask, over the broker.

A backend lists the pending invitations; the administrator retrieves chloé's manual
password sealed to a key pair of her own, opens it and forwards it; the login front end
looks chloé's link up before she signs in, then she accepts; the mass-invite report is
read with each row's live state.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.command_client import CommandClient
from shared.contract import Reply
from shared.sealed_box import RecipientKeys
from tests.support import wait_for

CHLOE = "chloe@acme.example"


def _body(actor: str, tenant: str | None, **fields: Any) -> dict[str, Any]:
    body = {"command_id": str(uuid.uuid4()), "actor": actor, **fields}
    if tenant is not None:
        body["tenant_id"] = tenant
    return body


def _masked(secret: str) -> str:
    return f"{secret[:2]}{'•' * (len(secret) - 2)}"


def _result(console: Console, step: str, reply: Reply) -> dict[str, Any]:
    colour = "green" if reply.status == "accepted" else "yellow"
    detail = reply.error.model_dump() if reply.error else ""
    console.print(f"[bold]{escape(step)}[/] → [{colour}]{reply.status}[/] {escape(str(detail))}")
    return reply.result or {}


def _link_token(messages: Sequence[EmailMessage], recipient: str) -> str | None:
    for message in messages:
        if recipient in str(message["To"]):
            body = message.get_body(("plain",))
            found = re.search(r"[?&]token=([^\s&]+)", body.get_content() if body else "")
            if found:
                return unquote(found.group(1))
    return None


async def read_side(
    console: Console,
    client: CommandClient,
    tenant: str,
    batch_id: str | None,
    messages: Callable[[], Sequence[EmailMessage]],
    administrator: str,
) -> None:
    console.rule("The read side: what a backend and the administrator ask")
    backend = "service:admin-portal"
    pending = _result(
        console,
        "a backend lists the pending invitations (list_invitations status=pending)",
        await client.send("list_invitations", _body(backend, tenant, status=["pending"])),
    )
    table = Table("email", "role", "delivery", "email sent", "temporary password", "invited at")
    for invitation in pending.get("invitations", []):
        table.add_row(
            invitation["email"],
            invitation["role"],
            invitation["temp_password_delivery"] or "-",
            invitation["invitation_email"],
            invitation["temp_password"],
            invitation["invited_at"][:19],
        )
    console.print(table)

    keys = RecipientKeys()
    retrieved = _result(
        console,
        "the administrator retrieves chloé's manual password, sealed to her own new key pair",
        await client.send(
            "retrieve_temp_password",
            _body(administrator, tenant, email=CHLOE, recipient_public_key=keys.public_key),
        ),
    )
    if retrieved:
        sealed = retrieved["sealed_temp_password"]
        password = keys.open(sealed)
        console.print(
            f"   on the broker only a sealed box ({len(sealed)} base64 characters: "
            f"{escape(sealed[:16])}…); opened with her private key: {_masked(password)} "
            f"(valid until {retrieved['valid_until'][:16]}); she forwards it to chloé by phone"
        )
        again = await client.send(
            "retrieve_temp_password",
            _body(administrator, tenant, email=CHLOE, recipient_public_key=keys.public_key),
        )
        _result(console, "a second retrieval of the same password (refused: once only)", again)

    token = await wait_for(lambda: _link_token(messages(), CHLOE), what="chloé's email")
    found = _result(
        console,
        "the login front end looks chloé's link up before she signs in",
        await client.send("lookup_invitation_token", _body("login-frontend", None, token=token)),
    )
    if found:
        invitation = found["invitation"]
        console.print(
            f"   “you are invited to {invitation['tenant_id']} as {invitation['role']} "
            f"by {invitation['invited_by']}” (status {invitation['status']})"
        )
    _result(
        console,
        "chloé accepts with her link, signed in with the forwarded password",
        await client.send("accept_invitation", _body(CHLOE, tenant, email=CHLOE, token=token)),
    )
    _result(
        console,
        "the login front end: chloé replaced her temporary password",
        await client.send("record_password_changed", _body("login-frontend", None, email=CHLOE)),
    )
    state = _result(
        console,
        "a backend reads chloé's invitation (get_invitation by email)",
        await client.send("get_invitation", _body(backend, tenant, email=CHLOE)),
    )
    if state:
        invitation = state["invitation"]
        console.print(
            f"   status {invitation['status']} at {invitation['accepted_at'][:19]}, temporary "
            f"password {invitation['temp_password']}, invitation email "
            f"{invitation['invitation_email']}"
        )
    if batch_id is not None:
        await _report(console, client, tenant, batch_id, backend)


async def _report(
    console: Console, client: CommandClient, tenant: str, batch_id: str, actor: str
) -> None:
    report = _result(
        console,
        "the mass-invite report, read over the broker (get_mass_invite_report)",
        await client.send("get_mass_invite_report", _body(actor, tenant, batch_id=batch_id)),
    )
    table = Table("row", "email", "status", "invitation", "email sent", "password", "refusal")
    for row in report.get("rows", []):
        table.add_row(
            str(row["index"]),
            row["email"],
            row["status"],
            row.get("invitation_status") or "-",
            row.get("invitation_email") or "-",
            row.get("temp_password") or "-",
            (row.get("error") or {}).get("code") or "",
        )
    console.print(table)
