"""The deployment's broker users and database roles, loaded for real on this machine.

RabbitMQ users and PostgreSQL roles belong to the whole server, not to a vhost or a
database, so each test gets them under a unique prefix (`t1a2b3c4d5_notifier`), in a vhost
and a database of its own, and every one of them is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from deploy import make_secrets
from tests.ops.conftest import ROOT

DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
ROLES_SQL = ROOT / "deploy" / "postgres" / "roles.sql"
POSTGRES_ADMIN = "postgresql://root@127.0.0.1:5432"
RABBIT_HOST = "127.0.0.1:5672"


def rabbitmqctl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


@dataclass(frozen=True)
class BrokerUsers:
    vhost: str
    prefix: str
    passwords: dict[str, str]

    def name(self, user: str) -> str:
        return self.prefix + user

    def url(self, user: str) -> str:
        return f"amqp://{self.name(user)}:{self.passwords[user]}@{RABBIT_HOST}/{self.vhost}"


@contextlib.contextmanager
def broker_users() -> Iterator[BrokerUsers]:
    """deploy/rabbitmq/definitions.json loaded with `rabbitmqctl import_definitions` (what
    `load_definitions` does at boot) into a new vhost, each user renamed with a prefix and
    given a password hashed as deploy/make_secrets.py hashes it."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    vhost = prefix + "vhost"
    definitions: dict[str, Any] = json.loads(DEFINITIONS.read_text())
    passwords = {u["name"]: make_secrets.password() for u in definitions["users"]}
    definitions["vhosts"] = [{"name": vhost}]
    for user in definitions["users"]:
        user["password_hash"] = make_secrets.rabbitmq_password_hash(passwords[user["name"]])
        user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
        user["name"] = prefix + user["name"]
    for grant in definitions["permissions"] + definitions["topic_permissions"]:
        grant["user"] = prefix + grant["user"]
        grant["vhost"] = vhost
    try:
        # From standard input: a file would have to be readable by the rabbitmq user.
        rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(definitions))
        yield BrokerUsers(vhost, prefix, passwords)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            rabbitmqctl("delete_vhost", vhost)
        for user in passwords:
            with contextlib.suppress(subprocess.CalledProcessError):
                rabbitmqctl("delete_user", prefix + user)


@dataclass(frozen=True)
class DatabaseRoles:
    database: str
    prefix: str
    secrets_dir: Path

    def name(self, role: str) -> str:
        return self.prefix + role

    def url(self, role: str) -> str:
        """As make_secrets writes it, but on this machine (trust authentication)."""
        password = (self.secrets_dir / f"postgres_{role}_password").read_text().strip()
        return f"postgresql://{self.name(role)}:{password}@127.0.0.1:5432/{self.database}"

    def admin_url(self) -> str:
        return f"{POSTGRES_ADMIN}/{self.database}"

    def apply_roles(self) -> subprocess.CompletedProcess[str]:
        """deploy/postgres/roles.sql run by psql as the container's init script runs it."""
        return subprocess.run(
            [
                "psql",
                "--no-psqlrc",
                "--quiet",
                "-v",
                "ON_ERROR_STOP=1",
                "--dbname",
                self.admin_url(),
                "--set",
                f"secrets_dir={self.secrets_dir}",
                "--set",
                f"role_prefix={self.prefix}",
                "--file",
                str(ROLES_SQL),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )


def create_database(name: str) -> None:
    with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def database_roles(tmp_path: Path) -> Iterator[DatabaseRoles]:
    """A new database with the deployment's roles (prefixed), their passwords made by
    deploy/make_secrets.py in `tmp_path`; database and roles dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    secrets_dir = tmp_path / "secrets"
    make_secrets.make(
        make_secrets.SecretsFolder(secrets_dir),
        database=prefix + "db",
        postgres_host="127.0.0.1",
        rabbitmq_host=RABBIT_HOST,
    )
    roles = DatabaseRoles(prefix + "db", prefix, secrets_dir)
    create_database(roles.database)
    try:
        roles.apply_roles()
        yield roles
    finally:
        drop_databases_and_roles(prefix, roles.database)


def drop_databases_and_roles(prefix: str, *databases: str) -> None:
    """The databases first: the roles' default privileges live in them."""
    for name in databases:
        drop_database(name)
    with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as conn:
        for role in reversed(make_secrets.POSTGRES_ROLES):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(prefix + role)))
