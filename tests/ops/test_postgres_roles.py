"""deploy/postgres/roles.sql on the real PostgreSQL: each role may touch what its part needs.

The tables are made as the services make them: the event store by the invitation role,
the notifier's own by the notifier role, after the roles exist (as at a first start).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from tests.ops.least_privilege import DatabaseRoles, database_roles

pytestmark = pytest.mark.integration

EVENTS = "invitations_events"
SEALED = "invitations_sealed_secrets"
EMAILS = "notifier_emails"


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[DatabaseRoles]:
    with database_roles(tmp_path) as made:
        with psycopg.connect(made.url("invitation"), autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE {EVENTS} (notification_id bigserial PRIMARY KEY, topic text)"
            )
            conn.execute(f"INSERT INTO {EVENTS} (topic) VALUES ('Invited')")
            conn.execute(f"CREATE TABLE {SEALED} (id int PRIMARY KEY, sealed bytea)")
        with psycopg.connect(made.url("notifier"), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {EMAILS} (key text PRIMARY KEY, status text)")
        yield made


def run_as(roles: DatabaseRoles, role: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(roles.url(role), autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def refused(roles: DatabaseRoles, role: str, statement: str) -> bool:
    try:
        run_as(roles, role, statement)
    except errors.InsufficientPrivilege:
        return True
    return False


def test_the_notifier_reads_the_event_store_but_cannot_write_it(roles: DatabaseRoles) -> None:
    assert run_as(roles, "notifier", f"SELECT topic FROM {EVENTS}") == [("Invited",)]
    assert refused(roles, "notifier", f"INSERT INTO {EVENTS} (topic) VALUES ('Forged')")
    assert refused(roles, "notifier", f"UPDATE {EVENTS} SET topic = 'Changed'")
    assert refused(roles, "notifier", f"DELETE FROM {EVENTS}")
    assert refused(roles, "notifier", f"DROP TABLE {EVENTS}")
    assert run_as(roles, "invitation", f"SELECT topic FROM {EVENTS}") == [("Invited",)]


def test_the_notifier_writes_its_own_tables(roles: DatabaseRoles) -> None:
    run_as(roles, "notifier", f"INSERT INTO {EMAILS} VALUES ('k', 'pending')")
    run_as(roles, "notifier", f"UPDATE {EMAILS} SET status = 'sent'")
    run_as(roles, "notifier", "CREATE TABLE notifier_state (key text PRIMARY KEY)")
    run_as(roles, "notifier", "CREATE TEMPORARY TABLE incoming (key text)")

    assert run_as(roles, "notifier", f"SELECT status FROM {EMAILS}") == [("sent",)]
    # ...which the invitation service cannot touch.
    assert refused(roles, "invitation", f"SELECT * FROM {EMAILS}")


def test_the_expiry_service_only_reads_the_event_store(roles: DatabaseRoles) -> None:
    assert run_as(roles, "expiry", f"SELECT count(*) FROM {EVENTS}") == [(1,)]
    assert refused(roles, "expiry", f"INSERT INTO {EVENTS} (topic) VALUES ('Forged')")
    assert refused(roles, "expiry", "CREATE TABLE expiry_state (key text)")
    assert refused(roles, "expiry", f"SELECT * FROM {EMAILS}")


def test_the_cli_reads_the_store_and_the_notifiers_tables_and_changes_nothing(
    roles: DatabaseRoles,
) -> None:
    assert run_as(roles, "cli", f"SELECT count(*) FROM {EVENTS}") == [(1,)]
    assert run_as(roles, "cli", f"SELECT count(*) FROM {EMAILS}") == [(0,)]
    assert refused(roles, "cli", f"INSERT INTO {EVENTS} (topic) VALUES ('Forged')")
    assert refused(roles, "cli", f"DELETE FROM {EMAILS}")
    assert refused(roles, "cli", "CREATE TABLE cli_notes (note text)")


def test_the_privileged_cli_writes_what_the_services_write(roles: DatabaseRoles) -> None:
    run_as(roles, "cli_admin", f"INSERT INTO {EVENTS} (topic) VALUES ('TempPasswordRetrieved')")
    run_as(roles, "cli_admin", f"DELETE FROM {SEALED}")
    run_as(roles, "cli_admin", f"DELETE FROM {EMAILS}")  # replay notifier starts over

    assert run_as(roles, "cli", f"SELECT count(*) FROM {EVENTS}") == [(2,)]


def test_only_the_deployments_roles_may_connect(roles: DatabaseRoles) -> None:
    stranger = roles.prefix + "stranger"
    with psycopg.connect(roles.admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{stranger}" LOGIN')
    try:
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(roles.url("cli").replace(roles.name("cli"), stranger, 1)).close()
    finally:
        with psycopg.connect(roles.admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{stranger}"')


def test_every_role_logs_in_with_its_password_and_no_other_power(roles: DatabaseRoles) -> None:
    rows = run_as(
        roles,
        "invitation",
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin "
        f"FROM pg_roles WHERE rolname LIKE '{roles.prefix}%' ORDER BY rolname",
    )
    assert [r[1:] for r in rows] == [(False, False, False, True)] * 5
    with psycopg.connect(roles.admin_url(), autocommit=True) as conn:
        hashes = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname LIKE %s", (roles.prefix + "%",)
        ).fetchall()
    assert len(hashes) == 5
    assert all(h.startswith("SCRAM-SHA-256$") for (h,) in hashes)


def password_hash(roles: DatabaseRoles, role: str) -> str:
    with psycopg.connect(roles.admin_url(), autocommit=True) as conn:
        [(stored,)] = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (roles.name(role),)
        ).fetchall()
    return str(stored)


def test_the_script_runs_again_to_change_passwords_and_grant_older_tables(
    roles: DatabaseRoles,
) -> None:
    # A table the invitation service made while the grants were missing (an older database).
    with psycopg.connect(roles.admin_url(), autocommit=True) as conn:
        conn.execute(
            f'ALTER DEFAULT PRIVILEGES FOR ROLE "{roles.name("invitation")}" '
            f'IN SCHEMA public REVOKE SELECT ON TABLES FROM "{roles.name("expiry")}"'
        )
    run_as(roles, "invitation", "CREATE TABLE invitations_streams (id int)")
    assert refused(roles, "expiry", "SELECT * FROM invitations_streams")
    before = password_hash(roles, "expiry")
    (roles.secrets_dir / "postgres_expiry_password").write_text("changed-password\n")

    roles.apply_roles()

    assert run_as(roles, "expiry", "SELECT count(*) FROM invitations_streams") == [(0,)]
    assert password_hash(roles, "expiry") != before
