"""Audit tables written beside the events, in the same transaction, and the tamper check.

- `<prefix>_chain (notification_id, hash)`: a hash chain over the stored rows.
  hash(row) = SHA-256(hash(previous row) | position | originator_id | version | topic | state),
  fixed-width integers and length-prefixed strings, the first row chained to 32 zero bytes.
  Changing, removing or reordering an event row breaks the link at its position.
- `<prefix>_chain_checkpoints`: the chain head at some position, HMAC-signed with a key
  derived from SECRETS_KEY, each signature covering the previous one. The chain itself is
  unkeyed (the recorder has no secret), so someone with write access could recompute it
  after an edit; the signed checkpoints are what catch that, up to the last checkpoint.
- `<prefix>_streams (originator_id, kind, tenant_id, email)`: one row per stream, written
  with its first event, so that the history of an email or a tenant is found by primary
  key instead of by scanning the store (the operator CLI's `audit` and `state`).

Writers are serialised by the events table lock (PostgreSQL) or the database write lock
(SQLite), so reading the chain head inside the insert transaction is race-free.
"""

# Table names are interpolated into SQL: fixed at construction, never input.
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import Notification, StoredEvent
from psycopg.sql import SQL, Composed, Identifier

GENESIS = bytes(32)
_Row = TypeVar("_Row")
_BATCH = 10_000


def link_hash(
    previous: bytes, position: int, originator_id: UUID, version: int, topic: str, state: bytes
) -> bytes:
    return hashlib.sha256(
        previous + position.to_bytes(8, "big") + _link_tail(originator_id, version, topic, state)
    ).digest()


def _link_tail(originator_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    """What a link hashes after (previous, position): known before the row has a position."""
    topic_bytes = topic.encode()
    return b"".join(
        (
            originator_id.bytes,
            version.to_bytes(8, "big"),
            len(topic_bytes).to_bytes(4, "big"),
            topic_bytes,
            len(state).to_bytes(4, "big"),
            state,
        )
    )


@dataclass(frozen=True)
class PreparedRows:
    """The audit rows of a save, computed before its transaction opens.

    PostgreSQL ends a session idle in a transaction for more than
    POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT (5 s): Python work between statements
    counts as idle, and the former insert of a 50,000-event save was ended that way on
    a loaded machine.
    """

    tails: list[bytes]
    streams: list[tuple[UUID, str, str | None, str | None]]

    @classmethod
    def of(cls, stored_events: Sequence[StoredEvent]) -> PreparedRows:
        return cls(
            [
                _link_tail(
                    e.originator_id,  # type: ignore[arg-type]
                    e.originator_version,
                    e.topic,
                    e.state,
                )
                for e in stored_events
            ],
            [_stream_row(e) for e in stored_events if e.originator_version == 1],
        )


def checkpoint_key(secrets_key: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"invitations/chain-checkpoint/v1"
    ).derive(secrets_key)


@dataclass(frozen=True)
class EventRow:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    position: int
    head: bytes
    events: int
    signed_at: str
    mac: bytes

    def expected_mac(self, key: bytes, previous_mac: bytes) -> bytes:
        message = "|".join(
            (
                str(self.seq),
                str(self.position),
                self.head.hex(),
                str(self.events),
                self.signed_at,
                previous_mac.hex(),
            )
        ).encode()
        return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class StreamRow:
    originator_id: UUID
    kind: str
    tenant_id: str | None
    email: str | None


def _stream_row(stored: StoredEvent) -> tuple[UUID, str, str | None, str | None]:
    """The index row of a stream's first event: its kind, tenant and email, if it says them."""
    kind = stored.topic.rsplit(".", 1)[0]
    try:
        state = json.loads(stored.state)
    except ValueError:
        state = {}  # a compressed or encrypted store: the index cannot read it
    tenant_id = state.get("tenant_id") if isinstance(state, dict) else None
    email = state.get("email") if isinstance(state, dict) else None
    return (
        stored.originator_id,  # type: ignore[return-value]
        kind,
        tenant_id if isinstance(tenant_id, str) else None,
        email if isinstance(email, str) else None,
    )


class AuditTables(Protocol):
    """What the operator CLI reads and signs in the audit tables, per backend."""

    def read_events(self, after: int, upto: int, limit: int) -> list[EventRow]: ...

    def read_links(self, after: int, upto: int, limit: int) -> list[tuple[int, bytes]]: ...

    def max_positions(self) -> tuple[int, int]: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def streams(
        self, *, email: str | None = None, tenant_id: str | None = None
    ) -> list[StreamRow]: ...

    def notifications_of(self, originator_ids: Sequence[UUID]) -> list[Notification]: ...


# -- PostgreSQL ----------------------------------------------------------------------------


class PostgresAuditTables:
    def __init__(self, datastore: Any, events_table_name: str) -> None:
        self._datastore = datastore
        schema = Identifier(datastore.schema)
        prefix = events_table_name.removesuffix("_events")
        self._events = SQL("{}.{}").format(schema, Identifier(events_table_name))
        self._chain = SQL("{}.{}").format(schema, Identifier(f"{prefix}_chain"))
        self._checkpoints = SQL("{}.{}").format(schema, Identifier(f"{prefix}_chain_checkpoints"))
        self._streams = SQL("{}.{}").format(schema, Identifier(f"{prefix}_streams"))
        self._streams_email = Identifier(f"{prefix}_streams_email_idx")
        self._streams_tenant = Identifier(f"{prefix}_streams_tenant_idx")

    def create_statements(self) -> list[Composed]:
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (notification_id bigint PRIMARY KEY, "
                "hash bytea NOT NULL)"
            ).format(self._chain),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (seq bigint PRIMARY KEY, notification_id bigint "
                "NOT NULL, head bytea NOT NULL, events bigint NOT NULL, signed_at text NOT NULL, "
                "mac bytea NOT NULL)"
            ).format(self._checkpoints),
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (originator_id uuid PRIMARY KEY, "
                "kind text NOT NULL, tenant_id text, email text)"
            ).format(self._streams),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (email)").format(
                self._streams_email, self._streams
            ),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tenant_id)").format(
                self._streams_tenant, self._streams
            ),
        ]

    def append(self, curs: Any, rows: PreparedRows, positions: Sequence[int]) -> None:
        """Inside the insert transaction, after the events (and their table lock)."""
        curs.execute(
            SQL("SELECT hash FROM {} ORDER BY notification_id DESC LIMIT 1").format(self._chain)
        )
        row = curs.fetchone()
        previous = GENESIS if row is None else bytes(row["hash"])
        # COPY in binary: psycopg dumps a bytea[] parameter in Python, byte by byte.
        with curs.copy(
            SQL("COPY {} (notification_id, hash) FROM STDIN (FORMAT BINARY)").format(self._chain)
        ) as copy:
            copy.set_types(["int8", "bytea"])
            for position, tail in sorted(zip(positions, rows.tails, strict=True)):
                previous = hashlib.sha256(previous + position.to_bytes(8, "big") + tail).digest()
                copy.write_row((position, previous))
        if rows.streams:
            with curs.copy(
                SQL(
                    "COPY {} (originator_id, kind, tenant_id, email) FROM STDIN (FORMAT BINARY)"
                ).format(self._streams)
            ) as copy:
                copy.set_types(["uuid", "text", "text", "text"])
                for stream in rows.streams:
                    copy.write_row(stream)

    def _fetch(self, statement: Composed, params: Sequence[Any]) -> list[Any]:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(statement, params)
            return list(curs.fetchall())

    def read_events(self, after: int, upto: int, limit: int) -> list[EventRow]:
        rows = self._fetch(
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                "WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(self._events),
            (after, upto, limit),
        )
        return [
            EventRow(
                r["notification_id"],
                r["originator_id"],
                r["originator_version"],
                r["topic"],
                bytes(r["state"]),
            )
            for r in rows
        ]

    def read_links(self, after: int, upto: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._fetch(
            SQL(
                "SELECT notification_id, hash FROM {} WHERE notification_id > %s AND "
                "notification_id <= %s ORDER BY notification_id LIMIT %s"
            ).format(self._chain),
            (after, upto, limit),
        )
        return [(r["notification_id"], bytes(r["hash"])) for r in rows]

    def max_positions(self) -> tuple[int, int]:
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT max(notification_id) AS m FROM {}").format(self._events))
            events = curs.fetchone()["m"] or 0
            curs.execute(SQL("SELECT max(notification_id) AS m FROM {}").format(self._chain))
            links = curs.fetchone()["m"] or 0
        return int(events), int(links)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._fetch(
            SQL(
                "SELECT seq, notification_id, head, events, signed_at, mac FROM {} ORDER BY seq"
            ).format(self._checkpoints),
            (),
        )
        return [
            Checkpoint(
                r["seq"],
                r["notification_id"],
                bytes(r["head"]),
                r["events"],
                r["signed_at"],
                bytes(r["mac"]),
            )
            for r in rows
        ]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "INSERT INTO {} (seq, notification_id, head, events, signed_at, mac) "
                    "VALUES (%s, %s, %s, %s, %s, %s)"
                ).format(self._checkpoints),
                (
                    checkpoint.seq,
                    checkpoint.position,
                    checkpoint.head,
                    checkpoint.events,
                    checkpoint.signed_at,
                    checkpoint.mac,
                ),
            )

    def streams(self, *, email: str | None = None, tenant_id: str | None = None) -> list[StreamRow]:
        column, value = ("email", email) if email is not None else ("tenant_id", tenant_id)
        rows = self._fetch(
            SQL("SELECT originator_id, kind, tenant_id, email FROM {} WHERE {} = %s").format(
                self._streams, Identifier(column)
            ),
            (value,),
        )
        return [StreamRow(r["originator_id"], r["kind"], r["tenant_id"], r["email"]) for r in rows]

    def notifications_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        """Every event of these streams with its position, in position order (by primary key)."""
        if not originator_ids:
            return []
        rows = self._fetch(
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                "WHERE originator_id = ANY(%s) ORDER BY notification_id"
            ).format(self._events),
            (list(originator_ids),),
        )
        return [
            Notification(
                id=r["notification_id"],
                originator_id=r["originator_id"],
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]


# -- SQLite --------------------------------------------------------------------------------


class SQLiteAuditTables:
    def __init__(self, datastore: Any, events_table_name: str, prefix: str) -> None:
        self._datastore = datastore
        self._events = events_table_name
        self._chain = f"{prefix}_chain"
        self._checkpoints = f"{prefix}_chain_checkpoints"
        self._streams = f"{prefix}_streams"

    def create_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self._chain} (notification_id INTEGER PRIMARY KEY, "
            "hash BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self._checkpoints} (seq INTEGER PRIMARY KEY, "
            "notification_id INTEGER NOT NULL, head BLOB NOT NULL, events INTEGER NOT NULL, "
            "signed_at TEXT NOT NULL, mac BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self._streams} (originator_id TEXT PRIMARY KEY, "
            "kind TEXT NOT NULL, tenant_id TEXT, email TEXT)",
            f"CREATE INDEX IF NOT EXISTS {self._streams}_email_idx ON {self._streams} (email)",
            f"CREATE INDEX IF NOT EXISTS {self._streams}_tenant_idx ON {self._streams} (tenant_id)",
        ]

    def append(
        self, c: Any, stored_events: Sequence[StoredEvent], positions: Sequence[int]
    ) -> None:
        c.execute(f"SELECT hash FROM {self._chain} ORDER BY notification_id DESC LIMIT 1")
        row = c.fetchone()
        previous = GENESIS if row is None else bytes(row[0])
        links = []
        for position, e in sorted(zip(positions, stored_events, strict=True), key=lambda p: p[0]):
            previous = link_hash(
                previous,
                position,
                e.originator_id,  # type: ignore[arg-type]
                e.originator_version,
                e.topic,
                e.state,
            )
            links.append((position, previous))
        c.executemany(f"INSERT INTO {self._chain} (notification_id, hash) VALUES (?, ?)", links)
        streams = [_stream_row(e) for e in stored_events if e.originator_version == 1]
        c.executemany(
            f"INSERT INTO {self._streams} (originator_id, kind, tenant_id, email) "
            "VALUES (?, ?, ?, ?)",
            [(i.hex, kind, tenant, email) for i, kind, tenant, email in streams],
        )

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            return list(c.fetchall())

    def read_events(self, after: int, upto: int, limit: int) -> list[EventRow]:
        rows = self._fetch(
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self._events} "
            "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
            (after, upto, limit),
        )
        return [EventRow(r[0], UUID(r[1]), r[2], r[3], bytes(r[4])) for r in rows]

    def read_links(self, after: int, upto: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._fetch(
            f"SELECT notification_id, hash FROM {self._chain} WHERE notification_id > ? "
            "AND notification_id <= ? ORDER BY notification_id LIMIT ?",
            (after, upto, limit),
        )
        return [(r[0], bytes(r[1])) for r in rows]

    def max_positions(self) -> tuple[int, int]:
        with self._datastore.transaction(commit=False) as c:
            c.execute(f"SELECT max(rowid) FROM {self._events}")
            events = c.fetchone()[0] or 0
            c.execute(f"SELECT max(notification_id) FROM {self._chain}")
            links = c.fetchone()[0] or 0
        return int(events), int(links)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._fetch(
            f"SELECT seq, notification_id, head, events, signed_at, mac FROM {self._checkpoints} "
            "ORDER BY seq",
            (),
        )
        return [Checkpoint(r[0], r[1], bytes(r[2]), r[3], r[4], bytes(r[5])) for r in rows]

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {self._checkpoints} (seq, notification_id, head, events, "
                "signed_at, mac) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    checkpoint.seq,
                    checkpoint.position,
                    checkpoint.head,
                    checkpoint.events,
                    checkpoint.signed_at,
                    checkpoint.mac,
                ),
            )

    def streams(self, *, email: str | None = None, tenant_id: str | None = None) -> list[StreamRow]:
        column, value = ("email", email) if email is not None else ("tenant_id", tenant_id)
        rows = self._fetch(
            f"SELECT originator_id, kind, tenant_id, email FROM {self._streams} WHERE {column} = ?",
            (value,),
        )
        return [StreamRow(UUID(r[0]), r[1], r[2], r[3]) for r in rows]

    def notifications_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        ids = [i.hex for i in originator_ids]
        found: list[Notification] = []
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = self._fetch(
                f"SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self._events} WHERE originator_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.extend(
                Notification(
                    id=r[0],
                    originator_id=UUID(r[1]),
                    originator_version=r[2],
                    topic=r[3],
                    state=bytes(r[4]),
                )
                for r in rows
            )
        found.sort(key=lambda n: n.id)
        return found


# -- the check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    position: int
    what: str


@dataclass
class Verification:
    events: int = 0
    last_position: int = 0
    head: bytes = GENESIS
    problems: list[Problem] = field(default_factory=list)
    checkpoints_checked: int = 0
    last_checkpoint: Checkpoint | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_bad_position(self) -> int | None:
        return min((p.position for p in self.problems), default=None)


def _prefetched(
    read: Callable[[int, int, int], Sequence[_Row]], position: Callable[[_Row], int], upto: int
) -> Iterator[_Row]:
    """Rows in position order, the next batch read while this one is being hashed."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-read") as pool:
        future = pool.submit(read, 0, upto, _BATCH)
        while True:
            batch = future.result()
            if len(batch) == _BATCH:
                future = pool.submit(read, position(batch[-1]), upto, _BATCH)
            yield from batch
            if len(batch) < _BATCH:
                return


def _merged(tables: AuditTables, upto: int) -> Iterator[tuple[int, EventRow | None, bytes | None]]:
    """Events and chain links side by side, in position order."""
    events = _prefetched(tables.read_events, lambda r: r.position, upto)
    links = _prefetched(tables.read_links, lambda r: r[0], upto)
    event, link = next(events, None), next(links, None)
    while event is not None or link is not None:
        if link is None or (event is not None and event.position < link[0]):
            assert event is not None
            yield event.position, event, None
            event = next(events, None)
        elif event is None or link[0] < event.position:
            yield link[0], None, link[1]
            link = next(links, None)
        else:
            yield event.position, event, link[1]
            event, link = next(events, None), next(links, None)


def verify(
    tables: AuditTables,
    key: bytes,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Verification:
    """Recompute the chain over every row, compare it with the stored links and checkpoints.

    Linear in the number of events. Each problem is reported at its position: an altered
    or moved row breaks its own link; a removed row leaves its link without an event (or,
    if its link went too, breaks the next link); a rewritten chain disagrees with the next
    signed checkpoint; a truncated history ends before the last checkpoint.
    """
    result = Verification()
    checkpoints = tables.checkpoints()
    previous_mac = GENESIS
    for index, checkpoint in enumerate(checkpoints, start=1):
        if checkpoint.seq != index:
            result.problems.append(
                Problem(
                    checkpoint.position,
                    f"checkpoint #{index} is missing (found "
                    f"#{checkpoint.seq}): checkpoints were removed",
                )
            )
        if not hmac.compare_digest(checkpoint.mac, checkpoint.expected_mac(key, previous_mac)):
            result.problems.append(
                Problem(checkpoint.position, f"checkpoint #{checkpoint.seq} has a bad signature")
            )
        previous_mac = checkpoint.mac
    result.last_checkpoint = checkpoints[-1] if checkpoints else None
    pending = sorted(checkpoints, key=lambda c: c.position)

    events_max, links_max = tables.max_positions()
    upto = max(events_max, links_max)
    running = GENESIS  # the chain recomputed from the events alone
    stored_previous = GENESIS  # the stored link before the current row

    def check_checkpoints(through: int) -> None:
        nonlocal running
        while pending and pending[0].position <= through:
            checkpoint = pending.pop(0)
            result.checkpoints_checked += 1
            if checkpoint.head != running or checkpoint.events != result.events:
                result.problems.append(
                    Problem(
                        checkpoint.position,
                        f"history up to position {checkpoint.position} differs from checkpoint "
                        f"#{checkpoint.seq} signed {checkpoint.signed_at} (rows before it were "
                        "changed, removed or inserted, and the chain rewritten)",
                    )
                )
                running = checkpoint.head  # judge the next segment on its own

    for position, row, stored in _merged(tables, upto):
        check_checkpoints(position - 1)
        if row is not None:
            result.events += 1
            recomputed = link_hash(
                running, row.position, row.originator_id, row.version, row.topic, row.state
            )
            # Usually the stored chain and the recomputed one agree: hash once.
            local = (
                recomputed
                if stored_previous == running
                else link_hash(
                    stored_previous,
                    row.position,
                    row.originator_id,
                    row.version,
                    row.topic,
                    row.state,
                )
            )
            running = recomputed
            if stored is None:
                result.problems.append(
                    Problem(position, "event has no chain link: inserted outside the event store")
                )
            elif stored != local:
                result.problems.append(
                    Problem(
                        position,
                        "event does not match its chain link: "
                        "changed or moved, or a row before it "
                        "was removed",
                    )
                )
        else:
            result.problems.append(Problem(position, "event removed: its chain link remains"))
        if stored is not None:
            stored_previous = stored
        result.last_position = position
        if result.events % _BATCH == 0:
            progress(position, upto)
    check_checkpoints(upto)
    for checkpoint in pending:  # beyond the end of the history
        result.problems.append(
            Problem(
                checkpoint.position,
                f"history is truncated: checkpoint #{checkpoint.seq} covers position "
                f"{checkpoint.position} but the history ends at {result.last_position}",
            )
        )
    result.head = running
    progress(upto, upto)
    return result


def sign_checkpoint(
    tables: AuditTables, key: bytes, verification: Verification, now: datetime | None = None
) -> Checkpoint | None:
    """Sign the head of a history that was just verified intact; None if nothing is new."""
    if not verification.intact or verification.events == 0:
        return None
    last = verification.last_checkpoint
    if last is not None and last.position == verification.last_position:
        return None
    unsigned = Checkpoint(
        seq=(last.seq if last else 0) + 1,
        position=verification.last_position,
        head=verification.head,
        events=verification.events,
        signed_at=(now or datetime.now(UTC)).isoformat(),
        mac=b"",
    )
    signed = replace(unsigned, mac=unsigned.expected_mac(key, last.mac if last else GENESIS))
    tables.add_checkpoint(signed)
    return signed
