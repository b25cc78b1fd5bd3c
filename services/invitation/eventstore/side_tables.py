"""Side tables, written by the store's recorders in the same transaction as the events.

- `<prefix>_commands`: the first reply to each command id (idempotency across restarts).
  Written atomically with the command's events: a reply exists iff its events do.
- `<prefix>_sealed_secrets`: the sealed copy of each live temporary password. Deleting a
  row is crypto-shredding: the events never held the plaintext or the sealed copy, so
  once the row is gone the password cannot be recovered from anything (rule 13).
- `<prefix>_trace_contexts`: the W3C `traceparent` of each traced command whose events
  were stored, by correlation id (= command id, what every event's envelope carries).
  The relay publishes it as a header and the notifier copies it onto its emails, so one
  trace runs from the command to the email. Kept beside the events, not in them: the
  stored events, their hash chain and every replay stay exactly as they were.

Both recorders (postgres.py, sqlite.py) write them in the insert transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from eventsourcing.persistence import StoredEvent

from shared.secrets import Sealer


@dataclass(frozen=True)
class StoredReply:
    command_id: str
    fingerprint: str
    reply_json: str


@dataclass
class SideWrites:
    """What a unit of work writes beside its events, in the same transaction."""

    replies: list[StoredReply] = field(default_factory=list)
    sealed: list[tuple[UUID, bytes]] = field(default_factory=list)
    shredded: list[UUID] = field(default_factory=list)
    trace_contexts: dict[str, str] = field(default_factory=dict)  # correlation id -> traceparent


class SideTables(Protocol):
    def select_streams(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]: ...

    def lookup_replies(self, command_ids: Sequence[str]) -> dict[str, StoredReply]: ...

    def read_sealed(self, temp_password_id: UUID) -> bytes | None: ...

    def read_sealed_many(self, temp_password_ids: Sequence[UUID]) -> dict[UUID, bytes]: ...

    def count_sealed(self) -> int: ...

    def lookup_trace_contexts(self, correlation_ids: Sequence[str]) -> dict[str, str]: ...


class SealedPasswords:
    """Opens the sealed copies of live temporary passwords (the notifier, the CLI, tests).

    A copy lives in the side table until its password is delivered, expires or is
    replaced (rule 13); then there is nothing left to open. Never log a result.
    """

    def __init__(self, tables: SideTables, secrets_key: bytes) -> None:
        self._tables = tables
        self._sealer = Sealer(secrets_key)

    def open(self, temp_password_id: UUID) -> str | None:
        """The plaintext, or None once the copy was destroyed (delivered, expired, ...)."""
        sealed = self._tables.read_sealed(temp_password_id)
        return None if sealed is None else self._sealer.unseal(temp_password_id, sealed)

    def open_many(self, temp_password_ids: Sequence[UUID]) -> dict[UUID, str | InvalidTag | None]:
        """Each plaintext; None once its sealed copy is gone; InvalidTag if it does not
        open with this key. One query for the lot."""
        sealed = self._tables.read_sealed_many(temp_password_ids)
        opened: dict[UUID, str | InvalidTag | None] = {}
        for temp_password_id in temp_password_ids:
            copy = sealed.get(temp_password_id)
            try:
                opened[temp_password_id] = (
                    None if copy is None else self._sealer.unseal(temp_password_id, copy)
                )
            except InvalidTag as error:
                opened[temp_password_id] = error
        return opened
