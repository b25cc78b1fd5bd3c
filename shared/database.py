"""PostgreSQL helpers every service and the CLI share: the libpq form of DATABASE_URL, schemas."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def postgres_conninfo(database_url: str) -> str:
    """The libpq form of a postgresql:// DATABASE_URL, without our `schema` parameter."""
    parts = urlsplit(database_url)
    return parts._replace(query="").geturl()


def ensure_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(postgres_conninfo(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
