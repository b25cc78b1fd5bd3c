"""The read model's tables and the SQL both databases share: keeping them, and reading them.

Tables (prefix `<store>_rm_`, e.g. `invitations_rm_invitations` on PostgreSQL):

- `invitations`: one row per invitation (InvitationRow), newest first by the position of
  its `Invited` event;
- `members`: one row per (tenant, email) that was ever offered membership (MemberRow); a
  member once its `status` is set;
- `batches`, `batch_rows`: each mass invite's counts and the rows of its reply;
- `position`: the last store position folded in.

`ReadModelTables.apply` runs inside the recorders' insert transaction (after the events
got their positions, under the events table's lock, so writers never interleave); the
query methods open read transactions of their own. postgres.py and sqlite.py supply the
differences: placeholders, types, bulk writes.
"""

# Table names are interpolated into SQL: fixed at construction, never input.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from services.invitation.eventstore.envelopes import parse_state
from services.invitation.eventstore.read_model.projection import (
    PROJECTED_TOPICS,
    BatchRow,
    Fold,
    InvitationRow,
    MemberRow,
)
from services.invitation.eventstore.read_model.saves import (
    Event,
    Keys,
    PreparedSave,
    keys_of,
    prepare_save,
)

# A stored event's fields: its JSON state as stored, unless the store encrypts or
# compresses (then the store's mapper decodes it; see store.py).
Decode = Callable[[StoredEvent], Mapping[str, Any]]
_TOPICS = frozenset(PROJECTED_TOPICS)


def events_of(stored_events: Sequence[StoredEvent], decode: Decode | None = None) -> list[Event]:
    """The events of a save the read model follows, decoded, with their index in the save.

    `decode` None: the states are the library's plain JSON (no cipher, no compression)."""
    return [
        (
            index,
            e.topic,
            parse_state(e.state) if decode is None else decode(e),
            e.originator_id,  # type: ignore[misc]
        )
        for index, e in enumerate(stored_events)
        if e.topic in _TOPICS
    ]


INVITATION_COLUMNS = tuple(f.name for f in fields(InvitationRow))
MEMBER_COLUMNS = tuple(f.name for f in fields(MemberRow))
BATCH_COLUMNS = tuple(f.name for f in fields(BatchRow) if f.name != "rows")
BATCH_ROW_COLUMNS = ("batch_id", "row_index", "invitation_id", "row_json")


@dataclass(frozen=True)
class BatchSummary:
    batch_id: UUID
    tenant_id: str
    invited: int
    refused: int


@dataclass(frozen=True)
class ReportLine:
    index: int
    row: dict[str, Any]  # the row of the mass_invite reply
    invitation: InvitationRow | None


def batch_tuples(batch: BatchRow) -> list[tuple[Any, ...]]:
    return [
        (batch.batch_id, index, invitation_id, json.dumps(row, sort_keys=True))
        for index, invitation_id, row in batch.rows
    ]


class ReadModelTables:
    """What the dialects share. Subclasses set `names` and implement the hooks."""

    placeholder = "%s"
    names: dict[str, str]  # logical name -> table as written in SQL

    # -- dialect hooks -------------------------------------------------------------------

    def _fetch(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of `query` in a read transaction of its own."""
        raise NotImplementedError

    def _execute(self, cursor: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows of `query` run on the insert transaction's `cursor`."""
        raise NotImplementedError

    def _write(self, cursor: Any, fold: Fold) -> None:
        raise NotImplementedError

    def _in(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`IN (...)` for `values` (never empty), and its parameters."""
        marks = ", ".join([self.placeholder] * len(values))
        return f"IN ({marks})", [self._value(v) for v in values]

    def _value(self, value: Any) -> Any:
        return value

    def _invitation(self, values: Sequence[Any]) -> InvitationRow:
        return InvitationRow(*values)

    def _member(self, values: Sequence[Any]) -> MemberRow:
        return MemberRow(*values)

    def _sql(self, query: str) -> str:
        query = query.format(**self.names)
        return query if self.placeholder == "%s" else query.replace("%s", self.placeholder)

    # -- live: inside the insert transaction ---------------------------------------------

    def prepare(self, stored_events: Sequence[StoredEvent], decode: Decode | None) -> PreparedSave:
        """Before the transaction: the save's events decoded, and folded as far as they
        can be without reading the tables (saves.py)."""
        return prepare_save(events_of(stored_events, decode))

    def apply(self, cursor: Any, prepared: PreparedSave, positions: Sequence[int]) -> None:
        """Inside the transaction, with the save's positions: the rest of the fold, written."""
        if prepared.empty:
            return
        fold = prepared.fold
        fold.relocate(positions)
        keys = keys_of(prepared.deferred)
        if keys:
            self._load(cursor, keys, fold)
        for index, topic, fields_, origin in prepared.deferred:
            fold.apply(positions[index], topic, fields_, origin)
        self._write(cursor, fold)

    def _load(self, cursor: Any, keys: Keys, fold: Fold) -> None:
        columns = ", ".join(INVITATION_COLUMNS)
        wanted: list[str] = []
        params: list[Any] = []
        for column, ids in (("invitation_id", keys.invitations), ("account_id", keys.accounts)):
            if ids:
                clause, values = self._in(ids)
                wanted.append(f"{column} {clause}")
                params += values
        if wanted:
            for row in self._execute(
                cursor,
                self._sql(f"SELECT {columns} FROM {{invitations}} WHERE {' OR '.join(wanted)}"),
                params,
            ):
                fold.add_invitation(self._invitation(row))
        if keys.members:
            clause, member_ids = self._in(keys.members)
            query = f"SELECT {', '.join(MEMBER_COLUMNS)} FROM {{members}} WHERE membership_id "
            for row in self._execute(cursor, self._sql(query + clause), member_ids):
                member = self._member(row)
                fold.members[member.membership_id] = member

    # -- reading -------------------------------------------------------------------------

    def position(self) -> int:
        rows = self._fetch(self._sql("SELECT position FROM {position} WHERE name = 'live'"), [])
        return int(rows[0][0]) if rows else 0

    def invitation(self, invitation_id: UUID) -> InvitationRow | None:
        return self._one_invitation("invitation_id = %s", [self._value(invitation_id)])

    def latest_invitation(self, tenant_id: str, email: str) -> InvitationRow | None:
        """The newest invitation of `email` in the tenant (the pending one, if any)."""
        return self._one_invitation("tenant_id = %s AND email = %s", [tenant_id, email])

    def _one_invitation(self, where: str, params: list[Any]) -> InvitationRow | None:
        rows = self._fetch(
            self._sql(
                f"SELECT {', '.join(INVITATION_COLUMNS)} FROM {{invitations}} WHERE {where} "
                "ORDER BY invited_position DESC LIMIT 1"
            ),
            params,
        )
        return self._invitation(rows[0]) if rows else None

    def invitations(
        self,
        tenant_id: str,
        *,
        statuses: Sequence[str] = (),
        role: str | None = None,
        email: str | None = None,
        batch_id: UUID | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[InvitationRow]:
        """Newest first; `before`: an `invited_position` the page starts below."""
        where: list[str] = ["tenant_id = %s"]
        params: list[Any] = [tenant_id]
        if statuses:
            clause, values = self._in(statuses)
            where.append(f"status {clause}")
            params += values
        for column, value in (("role", role), ("email", email), ("batch_id", batch_id)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(self._value(value))
        if before is not None:
            where.append("invited_position < %s")
            params.append(before)
        rows = self._fetch(
            self._sql(
                f"SELECT {', '.join(INVITATION_COLUMNS)} FROM {{invitations}} "
                f"WHERE {' AND '.join(where)} ORDER BY invited_position DESC LIMIT %s"
            ),
            [*params, limit],
        )
        return [self._invitation(r) for r in rows]

    def members(
        self,
        tenant_id: str,
        *,
        role: str | None = None,
        statuses: Sequence[str] = (),
        after_email: str | None = None,
        limit: int = 100,
    ) -> list[MemberRow]:
        """Members (a `status` set) by email; `after_email`: where the page starts."""
        where = ["tenant_id = %s", "status IS NOT NULL"]
        params: list[Any] = [tenant_id]
        if statuses:
            clause, values = self._in(statuses)
            where.append(f"status {clause}")
            params += values
        if role is not None:
            where.append("role = %s")
            params.append(role)
        if after_email is not None:
            where.append("email > %s")
            params.append(after_email)
        rows = self._fetch(
            self._sql(
                f"SELECT {', '.join(MEMBER_COLUMNS)} FROM {{members}} "
                f"WHERE {' AND '.join(where)} ORDER BY email LIMIT %s"
            ),
            [*params, limit],
        )
        return [self._member(r) for r in rows]

    def batch(self, batch_id: UUID) -> BatchSummary | None:
        rows = self._fetch(
            self._sql(
                "SELECT batch_id, tenant_id, invited, refused FROM {batches} WHERE batch_id = %s"
            ),
            [self._value(batch_id)],
        )
        if not rows:
            return None
        _, tenant_id, invited, refused = rows[0]
        return BatchSummary(batch_id, tenant_id, int(invited), int(refused))

    def report_lines(self, batch_id: UUID, after_index: int, limit: int) -> list[ReportLine]:
        """The batch's rows from `after_index + 1`, each with its invitation's live row."""
        columns = ", ".join(f"i.{c}" for c in INVITATION_COLUMNS)
        rows = self._fetch(
            self._sql(
                f"SELECT r.row_index, r.row_json, {columns} FROM {{batch_rows}} r "
                "LEFT JOIN {invitations} i ON i.invitation_id = r.invitation_id "
                "WHERE r.batch_id = %s AND r.row_index > %s ORDER BY r.row_index LIMIT %s"
            ),
            [self._value(batch_id), after_index, limit],
        )
        return [
            ReportLine(
                int(r[0]),
                json.loads(r[1]),
                None if r[2] is None else self._invitation(r[2:]),
            )
            for r in rows
        ]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, as comparable tuples in key order (tests, rebuilds)."""
        invitations = self._fetch(
            self._sql(
                f"SELECT {', '.join(INVITATION_COLUMNS)} FROM {{invitations}} "
                "ORDER BY invited_position"
            ),
            [],
        )
        members = self._fetch(
            self._sql(f"SELECT {', '.join(MEMBER_COLUMNS)} FROM {{members}} ORDER BY email"), []
        )
        return {
            "invitations": [astuple(self._invitation(r)) for r in invitations],
            "members": sorted(
                (astuple(self._member(r)) for r in members), key=lambda m: (m[1], m[2])
            ),
            "batches": [
                tuple(_plain(v) for v in r)
                for r in self._fetch(
                    self._sql(
                        f"SELECT {', '.join(BATCH_COLUMNS)} FROM {{batches}} "
                        "ORDER BY completed_position"
                    ),
                    [],
                )
            ],
            "batch_rows": [
                (str(r[0]), int(r[1]), None if r[2] is None else str(r[2]), json.loads(r[3]))
                for r in self._fetch(
                    self._sql(
                        f"SELECT {', '.join(BATCH_ROW_COLUMNS)} FROM {{batch_rows}} "
                        "ORDER BY batch_id, row_index"
                    ),
                    [],
                )
            ],
        }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, UUID) else value


# A row's values in column order (dataclasses.astuple deep-copies: too slow for writes).
invitation_values = attrgetter(*INVITATION_COLUMNS)
member_values = attrgetter(*MEMBER_COLUMNS)
