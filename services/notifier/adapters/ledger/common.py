"""The notifier's own tables, in the database of DATABASE_URL (PostgreSQL, or an SQLite file).

- `notifier_tracking`: the last event-store position planned (the high-water mark);
- `notifier_state`: what planning remembers of past events (key -> JSON), see
  domain/planning.py;
- `notifier_emails`: one row per (event, kind, recipient), keyed by its message key.
  It is both the outbox the sender drains and the sent-record that makes every email
  happen once: a replay re-plans the same keys, and `ON CONFLICT DO NOTHING` drops them.

Planning writes state, emails and the new position in one transaction, so an event is
planned exactly once whatever crashes. Sending is at-least-once only in one narrow place
(the SMTP server accepted, the process died before `sent` was recorded), and the re-send
carries the same Message-ID.
"""

# Table names are interpolated into SQL: they are our own constants and a schema name
# checked against _IDENTIFIER, never input. Values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from services.notifier.domain.delivery import (
    FAILED,
    INTERRUPTED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    Failed,
    Outcome,
    Released,
    Retry,
    Sent,
    Skipped,
)
from services.notifier.domain.emails import PlannedEmail
from services.notifier.domain.planning import INVITATION_KINDS
from shared.database import ensure_schema, postgres_conninfo

__all__ = ["Delivery", "NotifierStore", "OutboxEmail", "PlanStep", "open_store"]

Json = dict[str, Any]
TRACKING_NAME = "notifier"
SUPERSEDED = "superseded: the invitation was revoked, lapsed or resent before sending"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class OutboxEmail:
    """A row claimed for sending."""

    key: UUID
    event_id: UUID
    position: int
    kind: str
    recipient: str
    locale: str
    tenant_id: str | None
    context: Json
    invitation_id: UUID | None
    link_generation: int | None
    temp_password_id: UUID | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Delivery:
    """What one person received (or is due to): for the walkthrough and operators."""

    recipient: str
    kind: str
    status: str
    subject: str | None
    tenant_id: str | None
    message_key: UUID
    event_id: UUID
    position: int
    attempts: int
    sent_at: float | None
    last_error: str | None


@dataclass
class PlanStep:
    """One planning transaction's writes."""

    position: int
    events: int
    emails: list[PlannedEmail] = field(default_factory=list)
    puts: dict[str, Json] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)
    # New rows are `pending` (to send); a rebuild records history's as `replayed`.
    status: str = PENDING
    # Invitation -> position of the batch's last event that superseded it: its invitation
    # emails planned before that position and still pending must not be sent (dead links).
    superseded: dict[UUID, int] = field(default_factory=dict)


StateLoader = Callable[[Iterable[str]], dict[str, Json]]


class _Cursor(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, query: Any, params_seq: Any, /) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


_EMAIL_COLUMNS = (
    "message_key, event_id, position, kind, recipient, locale, tenant_id, context, "
    "invitation_id, link_generation, temp_password_id, attempts, last_error"
)


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _outbox(row: Sequence[Any]) -> OutboxEmail:
    return OutboxEmail(
        key=UUID(str(row[0])),
        event_id=UUID(str(row[1])),
        position=int(row[2]),
        kind=row[3],
        recipient=row[4],
        locale=row[5],
        tenant_id=row[6],
        context=json.loads(row[7]),
        invitation_id=_uuid(row[8]),
        link_generation=None if row[9] is None else int(row[9]),
        temp_password_id=_uuid(row[10]),
        attempts=int(row[11]),
        last_error=row[12],
    )


# The columns of `_email_row`, in its order.
_PLANNED_COLUMNS = (
    "message_key, event_id, position, kind, recipient, locale, tenant_id, context, "
    "invitation_id, link_generation, temp_password_id, planned_at, status"
)


def _email_row(email: PlannedEmail, planned_at: float, status: str) -> tuple[Any, ...]:
    return (
        str(email.key),
        str(email.event_id),
        email.position,
        str(email.kind),
        email.recipient,
        email.locale,
        email.tenant_id,
        json.dumps(dict(email.context), sort_keys=True),
        None if email.invitation_id is None else str(email.invitation_id),
        email.link_generation,
        None if email.temp_password_id is None else str(email.temp_password_id),
        planned_at,
        status,
    )


class NotifierStore:
    """The SQL both dialects share; `_Postgres` and `_SQLite` supply the differences."""

    placeholder = "%s"

    def __init__(self) -> None:
        self.tracking = self.table("notifier_tracking")
        self.state = self.table("notifier_state")
        self.emails = self.table("notifier_emails")

    # -- dialect hooks -------------------------------------------------------------------

    def table(self, name: str) -> str:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _sql(self, query: str) -> str:
        return query if self.placeholder == "%s" else query.replace("%s", self.placeholder)

    def _select_state(self, cur: _Cursor, keys: list[str]) -> dict[str, Json]:
        raise NotImplementedError

    def _insert_emails(self, cur: _Cursor, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def _put_state(self, cur: _Cursor, rows: list[tuple[str, str]]) -> None:
        """Upsert (key, value) rows; the keys are distinct."""
        cur.executemany(
            self._sql(
                f"INSERT INTO {self.state} (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            rows,
        )

    def _claim(self, cur: _Cursor, limit: int, now: float) -> list[Sequence[Any]]:
        raise NotImplementedError

    def _skip_superseded(self, cur: _Cursor, superseded: dict[UUID, int]) -> None:
        """Mark `skipped` the pending invitation emails of each invitation planned before
        (position lower than) the event that superseded it; one statement per batch.

        An invitation email's position is that of its later half, and both halves are
        events of one transaction: a resend's own email is never before the resend."""
        raise NotImplementedError

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def _ddl_lock(self, cur: _Cursor) -> None:
        """Serialise CREATE TABLE IF NOT EXISTS between processes starting together."""

    def try_lead(self) -> bool:
        """Become the one notifier that plans and sends (True), or stay standby (False)."""
        return True

    def resign(self) -> None:
        """Give up leadership (on shutdown)."""

    def close(self) -> None:
        raise NotImplementedError

    # -- schema --------------------------------------------------------------------------

    def create_tables(self) -> None:
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.tracking} "
            "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.state} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.emails} ("
            "message_key TEXT PRIMARY KEY, event_id TEXT NOT NULL, position BIGINT NOT NULL, "
            "kind TEXT NOT NULL, recipient TEXT NOT NULL, locale TEXT NOT NULL, tenant_id TEXT, "
            "context TEXT NOT NULL, invitation_id TEXT, link_generation INTEGER, "
            "temp_password_id TEXT, status TEXT NOT NULL DEFAULT 'pending', "
            "attempts INTEGER NOT NULL DEFAULT 0, "
            "next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0, last_error TEXT, "
            "subject TEXT, planned_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION, "
            "delivery_recorded INTEGER NOT NULL DEFAULT 0)",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_pending ON {self.emails} "
            "(position) WHERE status = 'pending'",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_unrecorded ON {self.emails} "
            "(position) WHERE status = 'sent' AND temp_password_id IS NOT NULL "
            "AND delivery_recorded = 0",
            f"CREATE INDEX IF NOT EXISTS notifier_emails_recipient ON {self.emails} (recipient)",
        ]
        with self.transaction() as cur:
            self._ddl_lock(cur)
            for statement in statements:
                cur.execute(statement)
            cur.execute(
                self._sql(
                    f"INSERT INTO {self.tracking} (name, position) VALUES (%s, 0) "
                    "ON CONFLICT (name) DO NOTHING"
                ),
                (TRACKING_NAME,),
            )

    # -- planning ------------------------------------------------------------------------

    def position(self) -> int:
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT position FROM {self.tracking} WHERE name = %s"),
                (TRACKING_NAME,),
            )
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    def plan(self, step: Callable[[int, StateLoader], PlanStep | None]) -> PlanStep | None:
        """Run `step(position, load_state)` and commit its writes with the new position.

        The tracking row is locked for the transaction, so two planners never interleave.
        """
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT position FROM {self.tracking} WHERE name = %s")
                + self._for_update(),
                (TRACKING_NAME,),
            )
            row = cur.fetchone()
            position = 0 if row is None else int(row[0])

            def load(keys: Iterable[str]) -> dict[str, Json]:
                return self._select_state(cur, list(dict.fromkeys(keys)))

            result = step(position, load)
            if result is None:
                return None
            if result.puts:
                self._put_state(
                    cur, [(k, json.dumps(v, sort_keys=True)) for k, v in result.puts.items()]
                )
            if result.deletes:
                clause, params = self._keys_clause("key", sorted(result.deletes))
                cur.execute(self._sql(f"DELETE FROM {self.state} WHERE {clause}"), params)
            if result.superseded:
                # Only rows planned before the superseding event: a resend's own new email
                # (and any later one) stays pending, also when a replay or a reset re-plans
                # history over rows that already exist. Only `pending` rows: one in flight
                # right now is let go (a race of milliseconds; its outcome is recorded).
                self._skip_superseded(cur, result.superseded)
            if result.emails:
                planned_at = time.time()
                rows = [_email_row(e, planned_at, result.status) for e in result.emails]
                self._insert_emails(cur, rows)
            cur.execute(
                self._sql(f"UPDATE {self.tracking} SET position = %s WHERE name = %s"),
                (result.position, TRACKING_NAME),
            )
        return result

    def _for_update(self) -> str:
        return ""

    def reset_for_replay(self) -> None:
        """Forget the planning state and position; keep every email row (the dedupe).

        The next planning pass rebuilds the state from the whole event log and sends
        only what was never planned before (`invitations replay notifier`).
        """
        with self.transaction() as cur:
            cur.execute(f"DELETE FROM {self.state}")
            cur.execute(
                self._sql(f"UPDATE {self.tracking} SET position = 0 WHERE name = %s"),
                (TRACKING_NAME,),
            )

    # -- sending -------------------------------------------------------------------------

    def reclaim_interrupted(self) -> int:
        """Rows left in `sending` by a process that died: send them again (same Message-ID)."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    f"UPDATE {self.emails} SET status = %s, last_error = %s WHERE status = %s"
                ),
                (PENDING, INTERRUPTED, SENDING),
            )
            return max(0, int(getattr(cur, "rowcount", 0) or 0))

    def claim(self, limit: int, now: float) -> list[OutboxEmail]:
        """Mark up to `limit` due rows `sending` (the intent, committed before any send)."""
        if limit <= 0:
            return []
        with self.transaction() as cur:
            rows = self._claim(cur, limit, now)
        return sorted((_outbox(r) for r in rows), key=lambda e: (e.position, str(e.key)))

    def record(self, outcomes: Sequence[Outcome]) -> None:
        sent = [(o.subject, o.at, str(o.key), SENDING) for o in outcomes if isinstance(o, Sent)]
        retry = [
            (PENDING, o.at, o.error[:1000], str(o.key), SENDING)
            for o in outcomes
            if isinstance(o, Retry)
        ]
        final = [
            (FAILED, o.error[:1000], str(o.key), SENDING) for o in outcomes if isinstance(o, Failed)
        ] + [
            (SKIPPED, o.reason[:1000], str(o.key), SENDING)
            for o in outcomes
            if isinstance(o, Skipped)
        ]
        released = [(PENDING, str(o.key), SENDING) for o in outcomes if isinstance(o, Released)]
        where = " WHERE message_key = %s AND status = %s"
        with self.transaction() as cur:
            if sent:
                self._record_sent(cur, sent)
            if retry:
                cur.executemany(
                    self._sql(
                        f"UPDATE {self.emails} SET status = %s, next_attempt_at = %s, "
                        "last_error = %s" + where
                    ),
                    retry,
                )
            if final:
                cur.executemany(
                    self._sql(f"UPDATE {self.emails} SET status = %s, last_error = %s" + where),
                    final,
                )
            if released:
                cur.executemany(
                    self._sql(
                        f"UPDATE {self.emails} SET status = %s, attempts = attempts - 1" + where
                    ),
                    released,
                )

    def _record_sent(self, cur: _Cursor, sent: list[tuple[str, float, str, str]]) -> None:
        cur.executemany(
            self._sql(
                f"UPDATE {self.emails} SET status = '{SENT}', subject = %s, sent_at = %s, "
                "last_error = NULL WHERE message_key = %s AND status = %s"
            ),
            sent,
        )

    def next_due(self) -> float | None:
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"SELECT min(next_attempt_at) FROM {self.emails} WHERE status = %s"),
                (PENDING,),
            )
            row = cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def unrecorded_deliveries(self, limit: int) -> list[tuple[UUID, str, UUID]]:
        """(key, email, temp_password_id) of sent password emails not yet reported."""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    f"SELECT message_key, recipient, temp_password_id FROM {self.emails} "
                    "WHERE status = %s AND temp_password_id IS NOT NULL "
                    "AND delivery_recorded = 0 ORDER BY position LIMIT %s"
                ),
                (SENT, limit),
            )
            rows = cur.fetchall()
        return [(UUID(str(r[0])), r[1], UUID(str(r[2]))) for r in rows]

    def mark_delivery_recorded(self, keys: Sequence[UUID]) -> None:
        if not keys:
            return
        clause, params = self._keys_clause("message_key", [str(k) for k in keys])
        with self.transaction() as cur:
            cur.execute(
                self._sql(f"UPDATE {self.emails} SET delivery_recorded = 1 WHERE {clause}"),
                params,
            )

    # -- reading, for operators, the walkthrough and tests --------------------------------

    def deliveries(
        self, *, tenant_id: str | None = None, recipient: str | None = None
    ) -> list[Delivery]:
        conditions, params = [], []
        if tenant_id is not None:
            conditions.append("tenant_id = %s")
            params.append(tenant_id)
        if recipient is not None:
            conditions.append("recipient = %s")
            params.append(recipient.strip().lower())
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT recipient, kind, status, subject, tenant_id, message_key, event_id, "
                    f"position, attempts, sent_at, last_error FROM {self.emails}{where} "
                    "ORDER BY position, recipient, kind"
                ),
                params,
            )
            rows = cur.fetchall()
        return [
            Delivery(
                recipient=r[0],
                kind=r[1],
                status=r[2],
                subject=r[3],
                tenant_id=r[4],
                message_key=UUID(str(r[5])),
                event_id=UUID(str(r[6])),
                position=int(r[7]),
                attempts=int(r[8]),
                sent_at=None if r[9] is None else float(r[9]),
                last_error=r[10],
            )
            for r in rows
        ]

    def status_counts(self) -> dict[str, int]:
        with self.transaction() as cur:
            cur.execute(f"SELECT status, count(*) FROM {self.emails} GROUP BY status")
            rows = cur.fetchall()
        return {r[0]: int(r[1]) for r in rows}


class _Postgres(NotifierStore):
    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self.schema = parse_qs(parts.query).get("schema", ["public"])[0]
        if not _IDENTIFIER.match(self.schema):
            raise ValueError(f"unsupported schema name {self.schema!r}")
        if self.schema != "public":
            ensure_schema(database_url, self.schema)
        self._conninfo = postgres_conninfo(database_url)
        self._pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True},
            name="notifier",
        )
        self._pool.open(wait=True, timeout=30)
        self._leader: psycopg.Connection[Any] | None = None
        super().__init__()

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _for_update(self) -> str:
        return " FOR UPDATE"

    def _ddl_lock(self, cur: _Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"notifier-ddl:{self.schema}",))

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%s)", [list(keys)]

    def _select_state(self, cur: _Cursor, keys: list[str]) -> dict[str, Json]:
        if not keys:
            return {}
        cur.execute(f"SELECT key, value FROM {self.state} WHERE key = ANY(%s)", (keys,))
        return {r[0]: json.loads(r[1]) for r in cur.fetchall()}

    # Planning's bulk writes (a replay writes ~10,000 email rows and state rows a page, a
    # 10,000-row mass invite as many emails) go through COPY into a temporary table of the
    # session, then one INSERT ... SELECT with the same ON CONFLICT clause as row by row:
    # psycopg builds COPY rows in C, while 13 array parameters of 10,000 values cost ~20x
    # more to dump and unnest (bench/README.md, "Store at scale"). ON COMMIT DELETE ROWS
    # empties the temporary table with each planning transaction.

    def _insert_emails(self, cur: _Cursor, rows: list[tuple[Any, ...]]) -> None:
        assert isinstance(cur, psycopg.Cursor)
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS notifier_emails_incoming ("
            "message_key TEXT, event_id TEXT, position BIGINT, kind TEXT, recipient TEXT, "
            "locale TEXT, tenant_id TEXT, context TEXT, invitation_id TEXT, "
            "link_generation INTEGER, temp_password_id TEXT, planned_at DOUBLE PRECISION, "
            "status TEXT) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY notifier_emails_incoming ({_PLANNED_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {self.emails} ({_PLANNED_COLUMNS}) SELECT {_PLANNED_COLUMNS} "
            "FROM notifier_emails_incoming ON CONFLICT (message_key) DO NOTHING"
        )

    def _put_state(self, cur: _Cursor, rows: list[tuple[str, str]]) -> None:
        assert isinstance(cur, psycopg.Cursor)
        cur.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS notifier_state_incoming "
            "(key TEXT, value TEXT) ON COMMIT DELETE ROWS"
        )
        with cur.copy("COPY notifier_state_incoming (key, value) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO {self.state} (key, value) SELECT key, value "
            "FROM notifier_state_incoming ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )

    def _record_sent(self, cur: _Cursor, sent: list[tuple[str, float, str, str]]) -> None:
        # The hot path at 1,000 emails/s: one statement, not one per email.
        subjects, moments, keys, _ = (list(c) for c in zip(*sent, strict=True))
        cur.execute(
            f"UPDATE {self.emails} AS e SET status = '{SENT}', subject = v.subject, "
            "sent_at = v.at, last_error = NULL FROM unnest(%s::text[], %s::float8[], "
            "%s::text[]) AS v(subject, at, key) WHERE e.message_key = v.key "
            f"AND e.status = '{SENDING}'",
            (subjects, moments, keys),
        )

    def _skip_superseded(self, cur: _Cursor, superseded: dict[UUID, int]) -> None:
        cur.execute(
            f"UPDATE {self.emails} AS e SET status = %s, last_error = %s "
            "FROM unnest(%s::text[], %s::bigint[]) AS s(invitation_id, position) "
            "WHERE e.invitation_id = s.invitation_id AND e.position < s.position "
            "AND e.status = %s AND e.kind = ANY(%s)",
            (
                SKIPPED,
                SUPERSEDED,
                [str(i) for i in superseded],
                list(superseded.values()),
                PENDING,
                sorted(map(str, INVITATION_KINDS)),
            ),
        )

    def _claim(self, cur: _Cursor, limit: int, now: float) -> list[Sequence[Any]]:
        cur.execute(
            f"UPDATE {self.emails} SET status = %s, attempts = attempts + 1 "
            f"WHERE message_key IN (SELECT message_key FROM {self.emails} "
            "WHERE status = %s AND next_attempt_at <= %s ORDER BY position LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) RETURNING {_EMAIL_COLUMNS}",
            (SENDING, PENDING, now, limit),
        )
        return list(cur.fetchall())

    def try_lead(self) -> bool:
        """A session advisory lock: held while this process lives, freed when it dies."""
        if self._leader is not None:
            return True
        conn = psycopg.connect(self._conninfo, autocommit=True)
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (f"notifier-leader:{self.schema}",)
        ).fetchone()
        if row is not None and row[0]:
            self._leader = conn
            return True
        conn.close()
        return False

    def resign(self) -> None:
        if self._leader is not None:
            self._leader.close()
            self._leader = None

    def close(self) -> None:
        self.resign()
        self._pool.close()


class _SQLite(NotifierStore):
    """One connection, serialised by a lock; BEGIN IMMEDIATE takes the file's write lock."""

    placeholder = "?"

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(
            path, timeout=15.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.Lock()
        super().__init__()

    def table(self, name: str) -> str:
        return name

    @contextmanager
    def transaction(self) -> Iterator[_Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _keys_clause(self, column: str, keys: Sequence[str]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join('?' * len(keys))})", list(keys)

    def _select_state(self, cur: _Cursor, keys: list[str]) -> dict[str, Json]:
        found: dict[str, Json] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            clause, params = self._keys_clause("key", chunk)
            cur.execute(f"SELECT key, value FROM {self.state} WHERE {clause}", params)
            found.update({r[0]: json.loads(r[1]) for r in cur.fetchall()})
        return found

    def _insert_emails(self, cur: _Cursor, rows: list[tuple[Any, ...]]) -> None:
        cur.executemany(
            f"INSERT INTO {self.emails} (message_key, event_id, position, kind, recipient, "
            "locale, tenant_id, context, invitation_id, link_generation, temp_password_id, "
            "planned_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (message_key) DO NOTHING",
            rows,
        )

    def _skip_superseded(self, cur: _Cursor, superseded: dict[UUID, int]) -> None:
        kinds, kind_params = self._keys_clause("kind", sorted(map(str, INVITATION_KINDS)))
        pairs = [(str(i), p) for i, p in superseded.items()]
        for start in range(0, len(pairs), 500):  # two parameters a pair, under SQLite's cap
            chunk = pairs[start : start + 500]
            values = ", ".join("(?, ?)" for _ in chunk)
            cur.execute(
                f"WITH s (invitation_id, position) AS (VALUES {values}) "
                f"UPDATE {self.emails} SET status = ?, last_error = ? "
                f"WHERE status = ? AND {kinds} AND EXISTS (SELECT 1 FROM s "
                f"WHERE s.invitation_id = {self.emails}.invitation_id "
                f"AND {self.emails}.position < s.position)",
                [*(v for pair in chunk for v in pair), SKIPPED, SUPERSEDED, PENDING, *kind_params],
            )

    def _claim(self, cur: _Cursor, limit: int, now: float) -> list[Sequence[Any]]:
        cur.execute(
            f"SELECT {_EMAIL_COLUMNS} FROM {self.emails} WHERE status = ? "
            "AND next_attempt_at <= ? ORDER BY position LIMIT ?",
            (PENDING, now, limit),
        )
        rows = cur.fetchall()
        if not rows:
            return []
        clause, params = self._keys_clause("message_key", [r[0] for r in rows])
        cur.execute(
            f"UPDATE {self.emails} SET status = ?, attempts = attempts + 1 WHERE {clause}",
            [SENDING, *params],
        )
        return [(*r[:11], int(r[11]) + 1, r[12]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_store(database_url: str) -> NotifierStore:
    """The store named by DATABASE_URL, tables created (`postgresql://` or `sqlite:///`)."""
    parts = urlsplit(database_url)
    store: NotifierStore
    if parts.scheme in ("postgresql", "postgres"):
        store = _Postgres(database_url)
    elif parts.scheme == "sqlite":
        store = _SQLite(unquote(parts.netloc + parts.path))
    else:
        raise ValueError(
            f"DATABASE_URL must be postgresql://... or sqlite:///...: {parts.scheme!r}"
        )
    store.create_tables()
    return store
