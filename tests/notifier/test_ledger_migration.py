"""A ledger created before the observability columns gets them at start-up, and its rows
stay readable (the new columns read as None)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from services.notifier.adapters.ledger import open_ledger
from tests.support import POSTGRES, temporary_schema

# `notifier_emails` as the first release created it.
OLD_EMAILS = (
    "CREATE TABLE {table} ("
    "message_key TEXT PRIMARY KEY, event_id TEXT NOT NULL, position BIGINT NOT NULL, "
    "kind TEXT NOT NULL, recipient TEXT NOT NULL, locale TEXT NOT NULL, tenant_id TEXT, "
    "context TEXT NOT NULL, invitation_id TEXT, link_generation INTEGER, "
    "temp_password_id TEXT, status TEXT NOT NULL DEFAULT 'pending', "
    "attempts INTEGER NOT NULL DEFAULT 0, "
    "next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0, last_error TEXT, "
    "subject TEXT, planned_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION, "
    "delivery_recorded INTEGER NOT NULL DEFAULT 0)"
)
OLD_ROW = (
    "INSERT INTO {table} (message_key, event_id, position, kind, recipient, locale, "
    "context, planned_at) VALUES ('00000000-0000-0000-0000-000000000001', "
    "'00000000-0000-0000-0000-000000000002', 1, 'invitation_linked', 'old@example.com', "
    "'en', '{{}}', 0)"
)


def test_an_old_sqlite_ledger_gets_the_new_columns_and_its_rows_still_send(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_EMAILS.format(table="notifier_emails"))
        conn.execute(OLD_ROW.format(table="notifier_emails"))

    ledger = open_ledger(f"sqlite:///{path}")
    try:
        (claimed,) = ledger.claim(10, 1.0)
    finally:
        ledger.close()

    assert claimed.recipient == "old@example.com"
    assert (claimed.event_at, claimed.traceparent) == (None, None)


@pytest.mark.integration
def test_an_old_postgres_ledger_gets_the_new_columns_and_its_rows_still_send() -> None:
    with temporary_schema("ledger") as url:
        schema = url.rpartition("schema=")[2]
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # type: ignore[arg-type]
            table = f'"{schema}"."notifier_emails"'
            conn.execute(OLD_EMAILS.format(table=table))  # type: ignore[arg-type]
            conn.execute(OLD_ROW.format(table=table))  # type: ignore[arg-type]

        ledger = open_ledger(url)
        try:
            (claimed,) = ledger.claim(10, 1.0)
        finally:
            ledger.close()

    assert claimed.recipient == "old@example.com"
    assert (claimed.event_at, claimed.traceparent) == (None, None)
