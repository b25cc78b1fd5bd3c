"""The invitation service's event log, read as contract envelopes.

The notifier, the expiry service, the relay and the operator CLI read the system of
record through this one class, so none of them depends on the internal domain events.

A consumer that follows only some event types names them (`event_types=`): the others
are then skipped in SQL, never fetched nor decoded, which is most of what a replay of a
large store costs (see bench/README.md, "Store at scale").

Rows are decoded straight from their stored JSON (`envelopes.stored_envelope`), not
through eventsourcing's mapper and domain-event objects, whenever the store writes the
plain form that function reads: the library's JSON transcoder with its default
transcodings, no cipher, no compression, no upcasting. Otherwise (say a cipher is
configured one day) every row goes through the mapper as before: slower, same envelopes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from services.invitation.eventstore.envelopes import (
    PUBLISHED_TOPICS,
    STORED_TRANSCODER,
    stored_envelope,
    to_envelope,
)
from services.invitation.eventstore.event_types import topics_of
from services.invitation.eventstore.store import InvitationStore, store_env
from shared.contract import EventEnvelope


class EventLog:
    def __init__(
        self,
        database_url: str,
        *,
        store: InvitationStore | None = None,
        event_types: Iterable[str] | None = None,
    ) -> None:
        self._own_store = store is None
        self.store = store or InvitationStore(env=store_env(database_url))
        self._to_domain_event = self.store.mapper.to_domain_event
        self.topics: tuple[str, ...] = (
            PUBLISHED_TOPICS if event_types is None else topics_of(event_types)
        )
        self.reads_stored_form = reads_stored_form(self.store, self.topics)
        recorder = self.store.recorder
        self._select: Any = None
        # Undecorated reads straight from the events table: plain tuples in binary
        # format, about five times cheaper per row than the library's dict rows.
        if isinstance(recorder, PostgresApplicationRecorder):
            self._datastore = recorder.datastore
            self._select = SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {}.{} WHERE notification_id > %s AND notification_id <= %s "
                "AND topic = ANY(%s) ORDER BY notification_id LIMIT %s"
            ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))

    def close(self) -> None:
        if self._own_store:
            self.store.close()

    def max_position(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def read(self, after: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """Up to `limit` contract events with position > `after`, in position order."""
        return self.read_with_high_water(after, limit)[0]

    def read_with_high_water(
        self, after: int = 0, limit: int = 1000
    ) -> tuple[list[EventEnvelope], int]:
        """Like `read`, plus the position up to which the log was examined.

        That covers the rows not fetched (internal events, types the reader does not
        follow): a reader that stores it never reads them again, and its position reaches
        the store's last one even when that event is of no interest to it.
        """
        # The store's last position first, then the page up to it: a row is committed
        # under the events table's lock, so once the last position is visible every
        # earlier one is too, and a page shorter than `limit` examined all of them.
        last_stored = self.max_position()
        rows = self._rows(after, last_stored, limit)
        envelopes = []
        if self.reads_stored_form:
            for position, aggregate_id, version, topic, state in rows:
                envelope = stored_envelope(topic, state, aggregate_id, version, position)
                if envelope is not None:
                    envelopes.append(envelope)
        else:
            to_domain_event = self._to_domain_event
            for position, aggregate_id, version, topic, state in rows:
                notification = Notification(
                    id=position,
                    originator_id=aggregate_id,
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
                envelope = to_envelope(to_domain_event(notification), position)
                if envelope is not None:
                    envelopes.append(envelope)
        if len(rows) == limit:
            return envelopes, rows[-1][0]
        return envelopes, max(after, last_stored)

    def _rows(self, after: int, upto: int, limit: int) -> list[_Row]:
        """(position, aggregate id, version, topic, stored state) in position order."""
        if self._select is None:
            return [
                (n.id, _uuid(n.originator_id), n.originator_version, n.topic, n.state)
                for n in self.store.recorder.select_notifications(
                    start=after,
                    limit=limit,
                    stop=upto,
                    topics=self.topics,
                    inclusive_of_start=False,
                )
            ]
        with (
            self._datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as cursor,
        ):
            cursor.execute(self._select, (after, upto, list(self.topics), limit))
            return cursor.fetchall()

    def trace_contexts(self, envelopes: Iterable[EventEnvelope]) -> dict[str, str]:
        """{correlation id: W3C traceparent} of the commands behind `envelopes` that were
        traced (side_tables.py); one query. Not part of the envelope: the contract's
        events stay as they are, and the context travels as an AMQP header."""
        ids = {e.correlation_id for e in envelopes if e.correlation_id is not None}
        if not ids:
            return {}
        lookup = getattr(self.store.recorder, "lookup_trace_contexts", None)
        if lookup is None:  # a recorder without the side tables (the library's own)
            return {}
        found: dict[str, str] = lookup(sorted(ids))
        return found

    def iterate(self, after: int = 0, batch: int = 1000) -> Iterator[EventEnvelope]:
        while True:
            envelopes, last = self.read_with_high_water(after, batch)
            yield from envelopes
            if last == after:
                return
            after = last


_Row = tuple[int, UUID, int, str, bytes]


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def reads_stored_form(store: InvitationStore, topics: Iterable[str]) -> bool:
    """Whether `stored_envelope` can read this store's states of these topics as stored."""
    mapper = store.mapper
    transcoder = mapper.transcoder
    return (
        mapper.cipher is None
        and mapper.compressor is None
        and type(transcoder) is JSONTranscoder
        and all(
            type(STORED_TRANSCODER.names.get(name)) is type(transcoding)
            for name, transcoding in transcoder.names.items()
        )
        and all(getattr(resolve_topic(t), "class_version", 1) == 1 for t in topics)
    )
