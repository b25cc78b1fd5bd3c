"""The invitation service's event store: the eventsourcing application and how to open it.

`DATABASE_URL` names PostgreSQL or an SQLite file; `store_env` turns it into the library's
settings, with this package's recorders (side tables and audit tables in the same
transaction as the events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import JSONTranscoder, Recording
from eventsourcing.utils import get_topic

# Importing the aggregates registers their explicit stored topics
# ("invitations:Invitation.Invited", ...), which decoding the store needs in every reader.
from services.invitation.domain import (  # noqa: F401
    account,
    administrators,
    batch,
    invitation,
    membership,
    notification_failure,
    tenant,
)
from services.invitation.eventstore.postgres import PostgresInvitationRecorder
from services.invitation.eventstore.sqlite import SQLiteInvitationRecorder
from shared.database import ensure_schema


class InvitationStore(Application[UUID]):
    """The event store of the invitation service (tables `invitations_*`)."""

    name = "Invitations"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env=env)
        mapper = self.mapper
        plain = (
            mapper.cipher is None
            and mapper.compressor is None
            and type(mapper.transcoder) is JSONTranscoder
            and set(mapper.transcoder.names) <= {"uuid_hex", "decimal_str", "datetime_iso"}
        )
        if not plain and hasattr(self.recorder, "decode_state"):
            # The read model reads stored JSON as is; an encrypted or compressed store's
            # events go through the mapper instead (slower, same fields).
            to_domain_event = mapper.to_domain_event
            self.recorder.decode_state = lambda stored: vars(to_domain_event(stored))

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """`Application.save`, without its per-object runtime-Protocol checks for aggregates.

        The library asks `isinstance(obj, DomainEventProtocol)` of every object, and an
        isinstance on a typing.Protocol walks its members: ~2 s for the ~30,000 aggregates
        of a 10,000-row mass invite. Ours are all `Aggregate`s, a plain class check; the
        rest (record, snapshots, notify) is the library's own sequence.
        """
        if not all(isinstance(obj, Aggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in objs:
            assert isinstance(aggregate, Aggregate)
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings


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
