"""The backup and restore of docs/deployment.md, on the real PostgreSQL.

There the commands run in the postgres container (`docker compose exec -T postgres ...`),
the dump going out on stdout and coming back on stdin; here the same programs run against
scratch databases the same way: one with the deployment's roles and a few rows, and a
fresh one with the roles only, as a new stack's first start leaves it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.ops.least_privilege import (
    DatabaseRoles,
    create_database,
    database_roles,
    drop_database,
)

pytestmark = pytest.mark.integration

ROWS = [(1, "acme", "Invited"), (2, "acme", "Accepted"), (3, "globex", "Invited")]


def rows(url: str, table: str = "invitations_events") -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def test_a_dump_restored_into_a_new_database_gives_the_same_rows_owners_and_grants(
    tmp_path: Path,
) -> None:
    with database_roles(tmp_path) as source:
        with psycopg.connect(source.url("invitation"), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE invitations_events "
                "(notification_id bigint PRIMARY KEY, tenant_id text, topic text)"
            )
            with conn.cursor() as cursor:
                cursor.executemany("INSERT INTO invitations_events VALUES (%s, %s, %s)", ROWS)
        with psycopg.connect(source.url("notifier"), autocommit=True) as conn:
            conn.execute("CREATE TABLE notifier_emails (key text PRIMARY KEY, status text)")
            conn.execute("INSERT INTO notifier_emails VALUES ('1', 'sent')")
        backup = tmp_path / "backup.dump"

        # docker compose exec -T postgres pg_dump -U postgres -Fc invitations > backup.dump
        with backup.open("wb") as out:
            subprocess.run(
                ["pg_dump", "--format=custom", "--dbname", source.admin_url()],
                stdout=out,
                check=True,
                timeout=120,
            )

        target = DatabaseRoles(source.prefix + "restored", source.prefix, source.secrets_dir)
        create_database(target.database)
        try:
            target.apply_roles()  # what the init script does on a new volume
            # docker compose exec -T postgres pg_restore -U postgres -d invitations
            #   --exit-on-error < backup.dump
            with backup.open("rb") as dump:
                subprocess.run(
                    ["pg_restore", "--exit-on-error", "--dbname", target.admin_url()],
                    stdin=dump,
                    check=True,
                    timeout=120,
                )

            assert rows(target.url("invitation")) == ROWS
            assert rows(target.url("cli"), "notifier_emails") == [("1", "sent")]
            assert rows(target.url("notifier")) == rows(source.url("notifier"))
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege),
                psycopg.connect(target.url("notifier")) as conn,
            ):
                conn.execute("INSERT INTO invitations_events VALUES (4, 'acme', 'Forged')")
        finally:
            drop_database(target.database)
