"""The invitation service's event log, read as contract envelopes.

The notifier, the expiry service, the relay and the operator CLI read the system of
record through this one class, so none of them depends on the internal domain events.

A consumer that follows only some event types names them (`event_types=`): the others
are then skipped in SQL, never fetched nor decoded, which is most of what a replay of a
large store costs (see bench/README.md, "Store at scale").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from services.invitation.adapters.store import store_env
from services.invitation.application import InvitationStore
from services.invitation.envelopes import PUBLISHED_TOPICS, to_envelope, topics_of
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
        notifications = self._notifications(after, last_stored, limit)
        envelopes = []
        to_domain_event = self._to_domain_event
        for notification in notifications:
            envelope = to_envelope(to_domain_event(notification), notification.id)
            if envelope is not None:
                envelopes.append(envelope)
        if len(notifications) == limit:
            return envelopes, notifications[-1].id
        return envelopes, max(after, last_stored)

    def _notifications(self, after: int, upto: int, limit: int) -> Sequence[Notification]:
        if self._select is None:
            return self.store.recorder.select_notifications(
                start=after, limit=limit, stop=upto, topics=self.topics, inclusive_of_start=False
            )
        with (
            self._datastore.get_connection() as conn,
            conn.cursor(binary=True, row_factory=tuple_row) as cursor,
        ):
            cursor.execute(self._select, (after, upto, list(self.topics), limit))
            rows = cursor.fetchall()
        return [
            Notification(
                id=row[0],
                originator_id=row[1],
                originator_version=row[2],
                topic=row[3],
                state=row[4],
            )
            for row in rows
        ]

    def iterate(self, after: int = 0, batch: int = 1000) -> Iterator[EventEnvelope]:
        while True:
            envelopes, last = self.read_with_high_water(after, batch)
            yield from envelopes
            if last == after:
                return
            after = last
