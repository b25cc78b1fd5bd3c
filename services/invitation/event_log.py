"""The invitation service's event log, read as contract envelopes.

The notifier, the expiry service, the relay and the operator CLI read the system of
record through this one class, so none of them depends on the internal domain events.
"""

from __future__ import annotations

from collections.abc import Iterator

from services.invitation.adapters.store import store_env
from services.invitation.application import InvitationStore
from services.invitation.envelopes import PUBLISHED_TOPICS, to_envelope
from shared.contract import EventEnvelope


class EventLog:
    def __init__(self, database_url: str, *, store: InvitationStore | None = None) -> None:
        self._own_store = store is None
        self.store = store or InvitationStore(env=store_env(database_url))
        self._to_domain_event = self.store.mapper.to_domain_event

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
        """Like `read`, plus the last position examined (internal events included)."""
        notifications = self.store.recorder.select_notifications(
            start=after, limit=limit, topics=PUBLISHED_TOPICS, inclusive_of_start=False
        )
        envelopes = []
        for notification in notifications:
            envelope = to_envelope(self._to_domain_event(notification), notification.id)
            if envelope is not None:
                envelopes.append(envelope)
        last = notifications[-1].id if notifications else after
        return envelopes, last

    def iterate(self, after: int = 0, batch: int = 1000) -> Iterator[EventEnvelope]:
        while True:
            envelopes, last = self.read_with_high_water(after, batch)
            yield from envelopes
            if last == after:
                return
            after = last
