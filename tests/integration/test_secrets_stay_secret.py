"""No temporary password or link token in clear: not in the database, on the broker, or in logs."""

from __future__ import annotations

import subprocess
import uuid
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from services.invitation.eventstore import EventLog
from shared.command_client import CommandClient
from shared.sealed_box import RecipientKeys
from shared.secrets import Sealer, TokenSigner
from shared.settings import decode_secrets_key
from tests.support import TEST_SECRETS_KEY, EventTap, invitation_service_ready, wait_for

pytestmark = pytest.mark.integration


async def test_no_temp_password_or_token_appears_in_pg_dump_messages_or_log(
    start_service, client: CommandClient, tenant: str, amqp_url: str, database_url: str
) -> None:
    service = start_service()
    await invitation_service_ready(client)
    key = decode_secrets_key(TEST_SECRETS_KEY)
    async with EventTap(amqp_url) as tap:
        await client.send(
            "configure_tenant",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "temp_password_delivery": "manual",
            },
        )
        rows = [{"email": f"s{i}@example.com", "role": "user"} for i in range(20)]
        batch = await client.send(
            "mass_invite",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "invitees": rows,
            },
        )
        assert batch.status == "accepted"
        issued = await wait_for(
            lambda: (
                len(tap.of_type("TempPasswordIssued")) >= 20 and tap.of_type("TempPasswordIssued")
            ),
            what="20 passwords issued",
        )
        invited = tap.of_type("UserInvited")

    # The plaintexts, recovered the only way there is: opening the sealed copies.
    log = EventLog(database_url)
    sealer = Sealer(key)
    try:
        passwords = []
        for event in issued:
            temp_password_id = UUID(event.data["temp_password_id"])
            sealed = log.store.recorder.read_sealed(temp_password_id)  # type: ignore[attr-defined]
            assert sealed is not None
            passwords.append(sealer.unseal(temp_password_id, sealed))
    finally:
        log.close()
    signer = TokenSigner(key)
    tokens = [signer.token(UUID(e.data["invitation_id"]), 1) for e in invited]
    secrets = passwords + tokens
    assert len(set(passwords)) == 20

    # The read side: a retrieval sealed to our key, and every query on the batch.
    keys = RecipientKeys()
    answers = [
        await client.send(
            "retrieve_temp_password",
            {
                "command_id": str(uuid.uuid4()),
                "actor": "admin@example.com",
                "tenant_id": tenant,
                "email": "s0@example.com",
                "recipient_public_key": keys.public_key,
            },
        )
    ]
    assert answers[0].result is not None
    assert keys.open(answers[0].result["sealed_temp_password"]) in passwords
    for name, fields in (
        ("get_mass_invite_report", {"batch_id": batch.result["batch_id"]}),
        ("list_invitations", {"page_size": 500}),
        ("get_invitation", {"email": "s1@example.com"}),
        ("lookup_invitation_token", {"token": tokens[0]}),
    ):
        query = {"command_id": str(uuid.uuid4()), "actor": "admin@example.com", **fields}
        if name != "lookup_invitation_token":
            query["tenant_id"] = tenant
        answers.append(await client.send(name, query))
        assert answers[-1].status == "accepted", answers[-1].error

    parts = urlsplit(database_url)
    schema = parse_qs(parts.query)["schema"][0]
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            parts.hostname or "127.0.0.1",
            "-U",
            parts.username or "root",
            "-n",
            schema,
            "--data-only",
            parts.path.lstrip("/"),
        ],
        check=True,
        capture_output=True,
    ).stdout.decode(errors="replace")
    assert "invitations_events" in dump
    # pg_dump shows bytea as hex, so read every event state decoded as well.
    with psycopg.connect(f"{parts.scheme}://{parts.netloc}{parts.path}") as conn:
        states = conn.execute(
            sql.SQL("SELECT convert_from(state, 'UTF8') FROM {}.invitations_events").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    decoded = "\n".join(row[0] for row in states)
    assert "password_hash" in decoded  # the hash is there, the plaintext must not be
    messages = "\n".join(e.model_dump_json() for e in tap.envelopes)
    reply_text = "\n".join(r.model_dump_json() for r in [batch, *answers])
    service.stop()
    service_log = service.log()
    for secret in secrets:
        assert secret not in dump
        assert secret not in decoded
        assert secret not in messages
        assert secret not in reply_text
        assert secret not in service_log
