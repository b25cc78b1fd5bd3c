"""From DATABASE_URL to eventsourcing's environment: PostgreSQL, or an SQLite file."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.utils import get_topic

from services.invitation.adapters.recorders import (
    PostgresInvitationRecorder,
    SQLiteInvitationRecorder,
)
from shared.database import ensure_schema


def store_env(database_url: str, *, create_tables: bool = True) -> dict[str, str]:
    """eventsourcing settings for the invitation store named by `database_url`.

    `postgresql://user:pass@host:port/db?schema=name` (the schema is created if missing)
    or `sqlite:///path/to/file.db`.
    """
    parts = urlsplit(database_url)
    common = {"CREATE_TABLE": "y" if create_tables else "n"}
    if parts.scheme in ("postgresql", "postgres"):
        schema = parse_qs(parts.query).get("schema", ["public"])[0]
        if create_tables and schema != "public":
            ensure_schema(database_url, schema)
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": schema,
            # A stuck writer must not block everyone forever (library notes A4).
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_PRE_PING": "y",
            "APPLICATION_RECORDER_TOPIC": get_topic(PostgresInvitationRecorder),
        }
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:  # sqlite://relative/path (not the documented form, but forgiving)
            path = parts.netloc + path
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteInvitationRecorder),
        }
    raise ValueError(f"DATABASE_URL must be postgresql://... or sqlite:///...: {parts.scheme!r}")
