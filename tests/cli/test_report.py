from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
from uuid import UUID, uuid4

import pypdf
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.invitation.eventstore import account_uuid
from shared.command_client import CommandClient
from shared.locales import format_moment
from shared.secrets import TempPasswordHasher
from tests.support import (
    ServiceProcess,
    invitation_service_ready,
    service_env,
    suffix,
    temporary_vhost,
)

pytestmark = pytest.mark.integration


def mass_invite(store, tenant, emails, delivery="manual", locale=None):
    reply = store.command(
        "mass_invite",
        tenant_id=tenant,
        temp_password_delivery=delivery,
        invitees=[{"email": e, "role": "user", "locale": locale} for e in emails],
    )
    assert reply.result is not None
    return reply.result


def report_json(store, batch_id):
    result = store.run("report", str(batch_id), "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def password_in(text: str, label: str = "Temporary password:") -> str:
    lines = text.splitlines()
    return lines[lines.index(label) + 1].strip()


@pytest.fixture
def service_on_broker(store, tmp_path_factory):
    """The invitation service on its own vhost, over this test's store: the CLI records a
    retrieval by sending it `retrieve_temp_password`, as any client would."""
    with temporary_vhost() as amqp_url:
        env = service_env(
            store.url, amqp_url, SECRETS_KEY=store.env["SECRETS_KEY"], RELAY_ENABLED="false"
        )
        process = ServiceProcess("invitation", env, tmp_path_factory.mktemp("logs")).start()
        try:
            asyncio.run(answers_commands(amqp_url))
            store.env["AMQP_URL"] = amqp_url
            yield process
        finally:
            process.stop()


async def answers_commands(amqp_url: str) -> None:
    async with CommandClient(amqp_url) as client:
        await invitation_service_ready(client)


@pytest.fixture
def batch(store, tenant):
    """A mass invite with every kind of row, then an acceptance and a revocation."""
    new_a, new_b, linked = (f"{n}-{suffix()}@example.com" for n in ("ann", "ben", "cat"))
    store.command("register_account", email=linked)
    result = mass_invite(store, tenant, [new_a, new_b, linked, "not-an-email", new_a])
    rows = result["rows"]
    store.accept(tenant, UUID(rows[0]["invitation_id"]), new_a)
    store.command("revoke_invitation", tenant_id=tenant, invitation_id=rows[1]["invitation_id"])
    return {"id": result["batch_id"], "emails": (new_a, new_b, linked)}


def test_each_invitee_has_its_outcome_state_and_delivery(store, tenant, batch):
    new_a, new_b, linked = batch["emails"]

    report = report_json(store, batch["id"])

    assert (report["tenant_id"], report["invited"], report["refused"]) == (tenant, 3, 2)
    summary = [
        (
            r["email"],
            r["status"],
            r["outcome"],
            r["invitation_state"],
            r["delivery_mode"],
            r["temp_password"],
        )
        for r in report["rows"]
    ]
    assert summary == [
        (new_a, "invited", "temp_password_issued", "accepted", "manual", "awaiting_retrieval"),
        (new_b, "invited", "temp_password_issued", "revoked", "manual", "withdrawn"),
        (linked, "invited", "account_linked", "pending", None, None),
        ("not-an-email", "refused", "invalid_email", None, None, None),
        (new_a, "refused", "duplicate_in_batch", None, None, None),
    ]


def test_the_report_is_also_csv_and_a_table(store, batch):
    as_csv = store.run("report", batch["id"], "--format", "csv")
    as_table = store.run("report", batch["id"], "--format", "table", COLUMNS="300")

    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert all(not v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert rows[1]["invitation_state"] == "revoked"
    assert {r["batch_id"] for r in rows} == {batch["id"]}
    assert "3 invited, 2 refused" in as_table.stdout
    assert batch["emails"][2] in as_table.stdout


@pytest.mark.usefixtures("service_on_broker")
def test_manual_temporary_passwords_are_written_once_each(store, tenant, tmp_path):
    emails = [f"m{i}-{suffix()}@example.com" for i in range(2)]
    batch_id = mass_invite(store, tenant, emails)["batch_id"]
    temp_ids = {r["email"]: r["temp_password_id"] for r in report_json(store, batch_id)["rows"]}

    first = store.run(
        "report", batch_id, "--temp-passwords", str(tmp_path / "first"), "--actor", "operator:olga"
    )
    second = store.run("report", batch_id, "--temp-passwords", str(tmp_path / "second"))

    assert first.exit_code == 0, first.output
    sheets = sorted((tmp_path / "first").iterdir())
    assert [p.name for p in sheets] == [f"0000{i + 1}_{e}.pdf" for i, e in enumerate(emails)]
    hasher = TempPasswordHasher()
    for sheet, email in zip(sheets, emails, strict=True):
        text = pdf_text(sheet)
        assert email in text and tenant in text
        account = store.service.store.repository.get(account_uuid(email))
        assert hasher.verify(account.temp_hash, password_in(text))
        assert sheet.stat().st_mode & 0o077 == 0  # readable by the operator only
        assert store.service.open_sealed(UUID(temp_ids[email])) is None  # shredded
    assert second.exit_code == 1
    assert "temp_password_not_available" in second.stderr
    assert "already retrieved" in second.stderr and "operator:olga" in second.stderr
    assert not (tmp_path / "second").exists() or not any((tmp_path / "second").iterdir())


@pytest.mark.usefixtures("service_on_broker")
def test_a_password_sheet_speaks_the_invitees_language_with_a_human_date(store, tenant, tmp_path):
    french, english = f"fr-{suffix()}@example.com", f"en-{suffix()}@example.com"
    batch_fr = mass_invite(store, tenant, [french], locale="fr-CA")["batch_id"]
    batch_en = mass_invite(store, tenant, [english])["batch_id"]
    sheets = {}
    for batch_id in (batch_fr, batch_en):
        valid_until = report_json(store, batch_id)["rows"][0]["temp_password_valid_until"]
        result = store.run("report", batch_id, "--temp-passwords", str(tmp_path / batch_id))
        assert result.exit_code == 0, result.output
        (sheet,) = (tmp_path / batch_id).iterdir()
        sheets[batch_id] = (pdf_text(sheet), valid_until)

    text, valid_until = sheets[batch_fr]
    assert "Votre mot de passe temporaire" in text
    assert f"Valable jusqu'au\u00a0: {format_moment(valid_until, 'fr')}" in text
    account = store.service.store.repository.get(account_uuid(french))
    label = "Mot de passe temporaire\u00a0:"
    assert TempPasswordHasher().verify(account.temp_hash, password_in(text, label))
    text, valid_until = sheets[batch_en]
    assert "Your temporary password" in text
    assert f"Valid until: {format_moment(valid_until, 'en')}" in text


@pytest.mark.usefixtures("service_on_broker")
def test_a_retrieval_is_recorded_by_the_service_with_the_operator_as_actor(store, tenant, tmp_path):
    email = f"r-{suffix()}@example.com"
    batch_id = mass_invite(store, tenant, [email])["batch_id"]

    result = store.run("report", batch_id, "--temp-passwords", str(tmp_path))

    assert result.exit_code == 0, result.output
    retrieved = [e for e in store.envelopes() if e.event_type == "TempPasswordRetrieved"]
    assert [(e.data["email"], e.actor) for e in retrieved] == [
        (email, f"operator:{getpass.getuser()}")
    ]
    row = report_json(store, batch_id)["rows"][0]
    assert (row["temp_password"], row["delivered_by"]) == (
        "retrieved",
        f"operator:{getpass.getuser()}",
    )


@pytest.mark.usefixtures("service_on_broker")
def test_the_sheets_need_no_secrets_key(store, tenant, tmp_path):
    email = f"k-{suffix()}@example.com"
    batch_id = mass_invite(store, tenant, [email])["batch_id"]
    env: dict[str, str | None] = {**store.env, "SECRETS_KEY": None}  # None: unset

    result = CliRunner().invoke(
        app, ["report", batch_id, "--temp-passwords", str(tmp_path)], env=env
    )

    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.usefixtures("service_on_broker")
def test_one_invites_manual_password_is_a_sheet_in_the_invitees_language(store, tenant, tmp_path):
    email = f"chloe-{suffix()}@example.com"
    invitation_id = store.invite(
        tenant, email, temp_password_delivery="manual", locale="fr", display_name="Chloé"
    )

    first = store.run(
        "temp-password", "--tenant", tenant, "--email", email, "--pdf", str(tmp_path / "a")
    )
    again = store.run(
        "temp-password",
        "--tenant",
        tenant,
        "--invitation",
        str(invitation_id),
        "--pdf",
        str(tmp_path / "b"),
    )

    assert first.exit_code == 0, first.output
    (sheet,) = (tmp_path / "a").iterdir()
    text = pdf_text(sheet)
    assert "Votre mot de passe temporaire" in text and "Chloé" in text
    lines = text.splitlines()
    password = lines[lines.index("Mot de passe temporaire\u00a0:") + 1].strip()
    account = store.service.store.repository.get(account_uuid(email))
    assert TempPasswordHasher().verify(account.temp_hash, password)
    assert "Valable jusqu'au" in text and " UTC" in text
    assert again.exit_code == 1
    assert "temp_password_not_available" in again.stderr
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_temp_password_needs_exactly_one_of_invitation_or_email(store, tenant, tmp_path):
    result = store.run("temp-password", "--tenant", tenant, "--pdf", str(tmp_path))

    assert result.exit_code == 2
    assert "exactly one of --invitation or --email" in result.stderr


def test_automatic_passwords_are_never_written_to_a_sheet(store, tenant, tmp_path):
    batch_id = mass_invite(store, tenant, [f"auto-{suffix()}@example.com"], delivery="automatic")[
        "batch_id"
    ]

    result = store.run("report", batch_id, "--temp-passwords", str(tmp_path / "out"))

    assert result.exit_code == 0, result.output
    assert "0 temporary password sheet(s) written" in result.stdout
    assert not (tmp_path / "out").exists()


def test_an_unknown_batch_is_an_error(store):
    result = store.run("report", str(uuid4()))

    assert result.exit_code == 3  # nothing matches what was named
    assert "no mass invite" in result.stderr


def test_the_invitation_emails_come_from_the_notifiers_sent_records(store, tenant):
    emails = [f"n{i}-{suffix()}@example.com" for i in range(2)]
    result = mass_invite(store, tenant, emails, delivery="automatic")
    sent, unsent = (r["invitation_id"] for r in result["rows"])
    # The columns of the notifier's `notifier_emails` that the report reads.
    store.sql(
        "CREATE TABLE notifier_emails (message_key text PRIMARY KEY, position bigint, "
        "kind text, recipient text, invitation_id text, status text, sent_at float8)"
    )
    store.sql(
        "INSERT INTO notifier_emails VALUES ('k1', 3, 'invitation_automatic', %s, %s, 'sent', "
        "1700000000), ('k2', 9, 'invitation_automatic', %s, %s, 'pending', NULL), "
        "('k3', 10, 'admin_mass_invite_completed', 'admin@example.com', NULL, 'sent', 1)",
        (emails[0], sent, emails[1], unsent),
    )

    rows = report_json(store, result["batch_id"])["rows"]

    assert [(r["invitation_email"], r["invitation_email_sent_at"]) for r in rows] == [
        ("sent", "2023-11-14T22:13:20+00:00"),
        ("pending", None),
    ]
