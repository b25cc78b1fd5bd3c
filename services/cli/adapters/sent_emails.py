"""The notifier's sent-records, read for the mass-invite report (rule 10: each email's delivery).

The notifier keeps one row per email in `notifier_emails` (services/notifier/adapters/
ledger/), in the database of DATABASE_URL. Only the columns named here are read; if the
table is not there (no notifier yet, or another database), the report says nothing about
invitation emails and relies on the events alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg.sql import SQL, Identifier

from services.cli.report import SentEmail
from services.invitation.eventstore import PostgresInvitationRecorder

TABLE = "notifier_emails"
_INVITATION_KINDS = "invitation_%"  # invitation_linked / _automatic / _manual


def invitation_emails(recorder: Any, invitation_ids: Sequence[str]) -> dict[str, SentEmail]:
    """The latest invitation email of each invitation (a resend plans a new one)."""
    if not invitation_ids:
        return {}
    if isinstance(recorder, PostgresInvitationRecorder):
        rows = _postgres(recorder, list(invitation_ids))
    else:
        rows = _sqlite(recorder, list(invitation_ids))
    latest: dict[str, SentEmail] = {}
    for invitation_id, kind, status, sent_at in rows:  # in position order
        moment = None if sent_at is None else datetime.fromtimestamp(float(sent_at), UTC)
        latest[str(invitation_id)] = SentEmail(str(invitation_id), kind, status, moment)
    return latest


def _postgres(recorder: PostgresInvitationRecorder, ids: list[str]) -> list[Any]:
    schema = recorder.datastore.schema
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT to_regclass(%s) AS found", (f'"{schema}".{TABLE}',))
        found = curs.fetchone()
        if found is None or found["found"] is None:
            return []
        curs.execute(
            SQL(
                "SELECT invitation_id, kind, status, sent_at FROM {}.{} "
                "WHERE invitation_id = ANY(%s) AND kind LIKE %s ORDER BY position"
            ).format(Identifier(schema), Identifier(TABLE)),
            (ids, _INVITATION_KINDS),
        )
        return [(r["invitation_id"], r["kind"], r["status"], r["sent_at"]) for r in curs.fetchall()]


def _sqlite(recorder: Any, ids: list[str]) -> list[Any]:
    rows: list[Any] = []
    with recorder.datastore.transaction(commit=False) as c:
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,))
        if c.fetchone() is None:
            return []
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            c.execute(
                f"SELECT invitation_id, kind, status, sent_at FROM {TABLE} "  # noqa: S608
                f"WHERE invitation_id IN ({','.join('?' * len(chunk))}) AND kind LIKE ? "
                "ORDER BY position",
                [*chunk, _INVITATION_KINDS],
            )
            rows.extend(tuple(r) for r in c.fetchall())
    return rows  # each invitation's rows are in one chunk, in position order
