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

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import Notification, StoredEvent

GENESIS = bytes(32)


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
            [stream_row(e) for e in stored_events if e.originator_version == 1],
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


def stream_row(stored: StoredEvent) -> tuple[UUID, str, str | None, str | None]:
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
