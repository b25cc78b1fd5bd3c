#!/usr/bin/env python3
"""Make the secrets the Compose stack reads, once per deployment: python3 deploy/make_secrets.py

Standard library only, so it runs on the deploying machine without the project installed.
It writes into ./secrets (or --dir), a folder only its owner may enter:

- secrets_key: SECRETS_KEY, base64 of 32 random bytes;
- postgres_password: the PostgreSQL superuser's (backups, the roles script);
- postgres_<role>_password and rabbitmq_<user>_password: one per service, the operator
  CLI and the sample backend (deploy/postgres/roles.sql, deploy/rabbitmq/definitions.json);
- <user>_amqp_url and <role>_database_url: what each container reads as AMQP_URL_FILE
  and DATABASE_URL_FILE;
- rabbitmq_definitions.json: deploy/rabbitmq/definitions.json with each user's password
  hash, loaded by RabbitMQ at boot.

Run again at any time: passwords already there are kept and everything derived from them
is written anew, so a changed definitions.json reaches the broker at its next start. To
change a password, delete its file, run this again and restart (`docker compose up -d`);
PostgreSQL learns its new passwords from the roles script (docs/deployment.md).

Files are readable by all (0644) inside the private folder: Compose mounts them into the
containers as they are, where RabbitMQ, PostgreSQL and the services run as users of their
own that must be able to read them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFINITIONS = HERE / "rabbitmq" / "definitions.json"

POSTGRES_ROLES = ("invitation", "notifier", "expiry", "cli", "cli_admin")
# Who connects to the broker as which user, and to the database as which role.
AMQP_USERS = ("invitation", "notifier", "expiry", "cli", "backend")


def password() -> str:
    # Hex: it goes into URLs as it is, with nothing to escape.
    return secrets.token_hex(24)


def rabbitmq_password_hash(plain: str) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + plain.encode()).digest()).decode()


class SecretsFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)

    def write(self, name: str, value: str) -> None:
        target = self.path / name
        draft = self.path / f".{name}.tmp"
        draft.write_text(value)
        draft.chmod(0o644)
        draft.replace(target)

    def kept(self, name: str, make: str) -> str:
        """The value in `name`, or `make` written there first."""
        target = self.path / name
        if target.exists():
            return target.read_text().rstrip("\r\n")
        self.write(name, make + "\n")
        return make


def make(folder: SecretsFolder, *, database: str, postgres_host: str, rabbitmq_host: str) -> None:
    folder.kept("secrets_key", base64.b64encode(os.urandom(32)).decode())
    folder.kept("postgres_password", password())

    postgres = {
        role: folder.kept(f"postgres_{role}_password", password()) for role in POSTGRES_ROLES
    }
    for role, secret in postgres.items():
        url = f"postgresql://{role}:{secret}@{postgres_host}:5432/{database}"
        folder.write(f"{role}_database_url", url + "\n")

    definitions = json.loads(DEFINITIONS.read_text())
    rabbitmq = {}
    for user in definitions["users"]:
        name = user["name"]
        rabbitmq[name] = folder.kept(f"rabbitmq_{name}_password", password())
        user["password_hash"] = rabbitmq_password_hash(rabbitmq[name])
        user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    folder.write("rabbitmq_definitions.json", json.dumps(definitions, indent=2) + "\n")
    for user in AMQP_USERS:
        url = f"amqp://{user}:{rabbitmq[user]}@{rabbitmq_host}:5672/"
        folder.write(f"{user}_amqp_url", url + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=HERE.parent / "secrets")
    parser.add_argument("--database", default="invitations")
    parser.add_argument("--postgres-host", default="postgres")
    parser.add_argument("--rabbitmq-host", default="rabbitmq")
    args = parser.parse_args(argv)
    folder = SecretsFolder(args.dir)
    make(
        folder,
        database=args.database,
        postgres_host=args.postgres_host,
        rabbitmq_host=args.rabbitmq_host,
    )
    print(f"secrets are in {folder.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
