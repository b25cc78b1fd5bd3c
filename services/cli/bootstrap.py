"""The one place that reads the environment and builds what the commands use."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, cast
from urllib.parse import urlsplit

import psycopg
from eventsourcing.persistence import PersistenceError

from services.invitation.eventstore import AuditTables, InvitationStore, store_env
from shared.database import postgres_conninfo
from shared.settings import FROM_FILE, ServiceSettings
from shared.settings import ConfigurationError as SettingsError
from shared.settings import load_settings as load_service_settings


class CliError(Exception):
    """Something the operator must fix; `exit_code` says which kind (see main.py)."""

    exit_code = 2


class ConfigurationError(CliError):
    """The environment does not name a usable store or key."""


class StoreUnavailableError(CliError):
    """The database named by DATABASE_URL cannot be used: not reachable, refused, missing."""

    exit_code = 4


class NotFoundError(CliError):
    """Nothing matches what the operator named: a tenant, a batch, an event type."""

    exit_code = 3


class OperatorSettings(ServiceSettings):
    """The CLI's environment. No defaults for where to read or publish: a missing
    DATABASE_URL must not quietly read some local database and report "nothing".

    SECRETS_KEY only for `verify` (the checkpoints' key, `checkpoint_secret`): manual
    passwords reach the CLI sealed to a key pair of its own run."""

    secrets_key_required: ClassVar[bool] = False

    database_url: Annotated[str, FROM_FILE]
    amqp_url: Annotated[str | None, FROM_FILE] = None  # type: ignore[assignment]

    def require_amqp_url(self) -> str:
        if self.amqp_url is None:
            raise ConfigurationError("AMQP_URL is required to publish (it has no default)")
        return self.amqp_url


class RetrievalSettings(ServiceSettings):
    """`temp-password`: it only asks the invitation service, over the broker."""

    secrets_key_required: ClassVar[bool] = False

    amqp_url: Annotated[str, FROM_FILE]
    database_url: Annotated[str | None, FROM_FILE] = None  # type: ignore[assignment]


def load_settings() -> OperatorSettings:
    try:
        return load_service_settings(OperatorSettings)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


def load_retrieval_settings() -> RetrievalSettings:
    try:
        return load_service_settings(RetrievalSettings)
    except SettingsError as error:
        raise ConfigurationError(str(error)) from None


def checkpoint_secret(settings: ServiceSettings) -> bytes:
    """SECRETS_KEY, which signs the history's checkpoints; refused when missing."""
    if settings.secrets_key is None and not settings.development_mode:
        raise ConfigurationError(
            "SECRETS_KEY is required to verify the history (it signs its checkpoints), "
            "unless DEVELOPMENT_MODE=true"
        )
    return settings.secrets_key_bytes


@dataclass
class Operator:
    """The store for one CLI run (commands go to the invitation service over the broker)."""

    settings: OperatorSettings
    store: InvitationStore

    @property
    def audit(self) -> AuditTables:
        return cast("AuditTables", self.store.recorder.audit)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.store.close()


def open_operator(settings: OperatorSettings) -> Operator:
    """The existing event store, opened without ever creating a table in it."""
    try:
        env = store_env(settings.database_url, create_tables=False)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
        _check_postgres(settings.database_url, env["POSTGRES_SCHEMA"])
    else:
        _check_sqlite(env["SQLITE_DBNAME"])
    try:
        store = InvitationStore(env={**env, "POSTGRES_CONNECT_TIMEOUT": "5"})
    except (PersistenceError, OSError) as error:
        raise StoreUnavailableError(f"cannot open the event store: {error}") from None
    return Operator(settings, store)


def _check_postgres(database_url: str, schema: str) -> None:
    """Say plainly why the database cannot be used: the pool would only say that it
    "couldn't get a connection after 5.00 sec", whatever the cause."""
    parts = urlsplit(database_url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    database = parts.path.lstrip("/") or "postgres"
    user = parts.username or "postgres"
    try:
        with psycopg.connect(postgres_conninfo(database_url), connect_timeout=5) as conn:
            found = conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (schema, f"{InvitationStore.name.lower()}_events"),
            ).fetchone()
    except psycopg.OperationalError as error:
        text = str(error)
        if "does not exist" in text and "database" in text:
            why = f'database "{database}" does not exist on {where}'
        elif "role" in text and "does not exist" in text:
            why = f'no PostgreSQL role "{user}" on {where}'
        elif "authentication failed" in text or "no password supplied" in text:
            why = f'authentication failed for user "{user}" on {where}'
        elif "Connection refused" in text or "could not connect" in text:
            why = f"no PostgreSQL server answers at {where} (connection refused)"
        elif "timeout" in text.lower():
            why = f"PostgreSQL at {where} did not answer within 5 s"
        else:
            why = f"cannot connect to PostgreSQL at {where}: {text.strip().splitlines()[-1]}"
        raise StoreUnavailableError(why) from None
    if found is None:
        raise StoreUnavailableError(
            f'no event store in database "{database}", schema "{schema}" on {where} '
            "(is DATABASE_URL right?)"
        )


def _check_sqlite(path: str) -> None:
    if path == ":memory:" or not Path(path).is_file():
        raise StoreUnavailableError(f"no event store: {path} is not an SQLite file")
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
        ).fetchone()
    if found is None:
        raise StoreUnavailableError(f"no event store in {path} (is DATABASE_URL right?)")
