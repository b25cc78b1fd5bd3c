"""The CLI says what is wrong, in one line and with an exit code a script can act on.

0 done; 1 a finding; 2 usage or configuration; 3 nothing matches what was named;
4 the database cannot be used. It never creates an event store where there is none.
"""

from __future__ import annotations

from uuid import uuid4

import psycopg
import pytest

from services.cli import render
from shared.database import postgres_conninfo
from tests.cli.conftest import Store
from tests.support import POSTGRES as PG
from tests.support import free_port, suffix

pytestmark = pytest.mark.integration


def tables_in(schema: str) -> list[str]:
    with psycopg.connect(postgres_conninfo(PG), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def empty_schema() -> str:
    schema = f"cli_empty_{suffix()}"
    with psycopg.connect(postgres_conninfo(PG), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(postgres_conninfo(PG), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- configuration ---------------------------------------------------------------------------


def test_without_database_url_a_store_command_refuses_instead_of_reading_a_default(
    store: Store,
) -> None:
    result = store.run("audit", "--format", "json", DATABASE_URL=None)  # type: ignore[arg-type]

    assert result.exit_code == 2
    assert "DATABASE_URL: Field required" in result.stderr
    assert result.stdout == ""


def test_republish_without_amqp_url_refuses_instead_of_using_the_default_vhost(
    store: Store, tenant: str
) -> None:
    store.invite(tenant, f"r-{suffix()}@example.com")

    result = store.run("republish", "--from-position", "1", AMQP_URL=None)  # type: ignore[arg-type]

    assert result.exit_code == 2
    assert "AMQP_URL is required" in result.stderr


# -- the database ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["audit"], ["verify"], ["state"]])
def test_a_read_command_on_a_database_without_an_event_store_fails_and_creates_nothing(
    store: Store, empty_schema: str, command: list[str]
) -> None:
    result = store.run(*command, DATABASE_URL=f"{PG}?schema={empty_schema}")

    assert result.exit_code == 4, result.output
    assert "no event store" in result.stderr
    assert tables_in(empty_schema) == []


def test_a_database_that_does_not_exist_is_named(store: Store) -> None:
    missing = f"nope_{suffix()}"
    result = store.run("audit", DATABASE_URL=f"postgresql://root@127.0.0.1:5432/{missing}")

    assert result.exit_code == 4
    assert f'database "{missing}" does not exist' in result.stderr


def test_a_refused_connection_is_named(store: Store) -> None:
    port = free_port()  # nothing listens there
    result = store.run("audit", DATABASE_URL=f"postgresql://root@127.0.0.1:{port}/test")

    assert result.exit_code == 4
    assert f"no PostgreSQL server answers at 127.0.0.1:{port}" in result.stderr


def test_an_unknown_role_is_named(store: Store) -> None:
    result = store.run("audit", DATABASE_URL=f"postgresql://nobody_{suffix()}@127.0.0.1:5432/test")

    assert result.exit_code == 4
    assert "no PostgreSQL role" in result.stderr


def test_an_sqlite_path_that_is_not_a_store_is_refused_and_not_created(
    store: Store, tmp_path
) -> None:
    path = tmp_path / "mistyped.db"
    result = store.run("verify", DATABASE_URL=f"sqlite:///{path}")

    assert result.exit_code == 4
    assert "no event store" in result.stderr
    assert not path.exists()


# -- names that match nothing ---------------------------------------------------------------


def test_an_unknown_tenant_is_one_line_and_exit_3(store: Store, tenant: str) -> None:
    store.invite(tenant, f"t-{suffix()}@example.com")

    for command in (["audit", "--tenant", "no-such-tenant"], ["state", "--tenant", "nope"]):
        result = store.run(*command)
        assert result.exit_code == 3, command
        assert len(result.stderr.strip().splitlines()) == 1
        assert "no tenant" in result.stderr


def test_a_mistyped_event_type_is_one_line_and_exit_3(store: Store, tenant: str) -> None:
    store.invite(tenant, f"t-{suffix()}@example.com")

    result = store.run("audit", "--type", "UserInvted")

    assert result.exit_code == 3
    assert "unknown event type UserInvted" in result.stderr
    assert "UserInvited" in result.stderr  # the known ones are listed


def test_an_unknown_batch_is_exit_3(store: Store) -> None:
    result = store.run("report", str(uuid4()))

    assert result.exit_code == 3
    assert "no mass invite" in result.stderr


# -- what reaches the terminal ----------------------------------------------------------------


def test_stored_markup_and_escape_codes_are_shown_not_obeyed(store: Store, tenant: str) -> None:
    store.command(
        "configure_tenant",
        tenant_id=tenant,
        contractor_enabled=True,
        actor="[/][bold]ops\x1b[31m@example.com",
    )

    result = store.run("audit", "--tenant", tenant, "--format", "table", COLUMNS="200")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    assert "[/][bold]ops" in result.stdout
    assert "\\x1b[31m" in result.stdout


def readable_at_80(output: str, email: str) -> None:
    """No line over 80 columns, no column squeezed to a few letters, the email legible."""
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for header in (line for line in lines if line.startswith("┏")):
        widths = [len(part) for part in header.strip("┏┓").split("┳")]
        assert min(widths[1:]) >= 8, header  # every column but `pos` / `index`
    assert any(email[:10] in line for line in lines), "the email was cut into crumbs"


def test_tables_stay_readable_at_80_columns(store: Store, tenant: str) -> None:
    email = f"a.rather.long.name-{suffix()}@example.com"
    store.invite(tenant, email)

    for command in (["audit", "--tenant", tenant], ["state", "--tenant", tenant]):
        result = store.run(*command, "--format", "table", COLUMNS="80")
        assert result.exit_code == 0, result.output
        readable_at_80(result.stdout, email)


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped() -> None:
    assert render.csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert render.csv_cell("+1") == "'+1"
    assert render.csv_cell("-1+2") == "'-1+2"
    assert render.csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert render.csv_cell("bob@example.com") == "bob@example.com"
    assert render.csv_cell(3) == 3


def test_the_report_csv_escapes_a_formula_in_a_refused_row(store: Store, tenant: str) -> None:
    reply = store.command(
        "mass_invite",
        tenant_id=tenant,
        invitees=[{"email": "=cmd|' /C calc'!A0", "role": "user"}],
    )
    assert reply.result is not None

    result = store.run("report", reply.result["batch_id"], "--format", "csv")

    assert result.exit_code == 0, result.output
    assert ",'=cmd|" in result.stdout
    assert ",=cmd" not in result.stdout


def test_a_report_table_fits_80_columns(store: Store, tenant: str) -> None:
    email = f"a.rather.long.name-{suffix()}@example.com"
    reply = store.command(
        "mass_invite", tenant_id=tenant, invitees=[{"email": email, "role": "user"}]
    )
    assert reply.result is not None

    result = store.run("report", reply.result["batch_id"], "--format", "table", COLUMNS="80")

    assert result.exit_code == 0, result.output
    readable_at_80(result.stdout, email)
