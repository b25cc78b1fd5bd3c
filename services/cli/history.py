"""The history as contract envelopes, selected by tenant, email or invitation without a scan.

An email's streams (its account, its memberships, its invitations) and a tenant's streams
are listed in the stream index written with the events (eventstore/chain.py), then read by
primary key with their positions. Only a query with none of those keys reads the whole
log, in position order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import Notification

from services.invitation.eventstore import (
    PUBLISHED_TOPICS,
    AuditTables,
    DomainError,
    InvitationStore,
    account_uuid,
    membership_uuid,
    normalise_email,
    to_envelope,
)
from shared.contract import EventEnvelope

_PUBLISHED = frozenset(PUBLISHED_TOPICS)
_SCAN_BATCH = 2_000


@dataclass(frozen=True)
class HistoryFilter:
    """Every given criterion must hold; `since` and `until` are inclusive."""

    tenant_id: str | None = None
    email: str | None = None
    invitation_id: UUID | None = None
    event_types: frozenset[str] = field(default_factory=frozenset)
    actor: str | None = None
    sender: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, envelope: EventEnvelope) -> bool:
        if self.tenant_id is not None and envelope.tenant_id != self.tenant_id:
            return False
        if self.event_types and envelope.event_type not in self.event_types:
            return False
        if self.actor is not None and envelope.actor != self.actor:
            return False
        if self.sender is not None and envelope.sender != self.sender:
            return False
        if self.since is not None and envelope.occurred_at < self.since:
            return False
        if self.until is not None and envelope.occurred_at > self.until:
            return False
        return self.invitation_id is None or (
            envelope.aggregate_id == self.invitation_id
            or envelope.data.get("invitation_id") == str(self.invitation_id)
        )


class History:
    def __init__(self, store: InvitationStore, audit: AuditTables) -> None:
        self._store = store
        self._audit = audit
        self._to_domain_event = store.mapper.to_domain_event

    def envelopes(self, query: HistoryFilter) -> Iterator[EventEnvelope]:
        """The matching contract events, in position order."""
        query = _normalised(query)
        streams = self.candidate_streams(query)
        source = self.scan() if streams is None else self.of_streams(streams)
        return (e for e in source if query.matches(e))

    def candidate_streams(self, query: HistoryFilter) -> list[UUID] | None:
        """The streams that can hold a match, or None when only a full read can tell."""
        if query.invitation_id is not None:
            return self._invitation_streams(query.invitation_id, query.email)
        if query.email is not None:
            rows = self._audit.streams(email=query.email)
            if query.tenant_id is not None:
                rows = [
                    r
                    for r in rows
                    if r.tenant_id in (None, query.tenant_id) or r.kind == "invitations:Account"
                ]
            return list(
                dict.fromkeys([account_uuid(query.email), *(r.originator_id for r in rows)])
            )
        if query.tenant_id is not None:
            rows = self._audit.streams(tenant_id=query.tenant_id)
            accounts = {account_uuid(r.email) for r in rows if r.email is not None}
            return list(dict.fromkeys([*(r.originator_id for r in rows), *accounts]))
        return None

    def _invitation_streams(self, invitation_id: UUID, email: str | None) -> list[UUID]:
        """The invitation, and the account and membership streams that tell its story."""
        for envelope in self.of_streams([invitation_id]):
            if envelope.event_type == "UserInvited" and envelope.tenant_id is not None:
                invited = str(envelope.data["email"])
                if email is not None and email != invited:
                    return []
                return [
                    invitation_id,
                    account_uuid(invited),
                    membership_uuid(envelope.tenant_id, invited),
                ]
        return []

    def of_streams(self, stream_ids: Iterable[UUID]) -> Iterator[EventEnvelope]:
        return self._envelopes(self._audit.notifications_of(list(stream_ids)))

    def scan(self, after: int = 0, upto: int | None = None) -> Iterator[EventEnvelope]:
        """Every contract event with a position in (after, upto], in position order."""
        recorder = self._store.recorder
        while True:
            batch = recorder.select_notifications(
                start=after,
                limit=_SCAN_BATCH,
                stop=upto,
                topics=PUBLISHED_TOPICS,
                inclusive_of_start=False,
            )
            if not batch:
                return
            yield from self._envelopes(batch)
            after = batch[-1].id

    def _envelopes(self, notifications: Iterable[Notification]) -> Iterator[EventEnvelope]:
        for notification in notifications:
            if notification.topic not in _PUBLISHED:
                continue
            envelope = to_envelope(self._to_domain_event(notification), notification.id)
            if envelope is not None:
                yield envelope


def _normalised(query: HistoryFilter) -> HistoryFilter:
    if query.email is None:
        return query
    try:
        email = normalise_email(query.email)
    except DomainError:  # an operator's typo still gets "nothing found", not a traceback
        email = query.email.strip().lower()
    return replace(query, email=email)
