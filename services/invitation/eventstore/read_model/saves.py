"""A live save's share of the read model: as much as possible folded before its transaction.

PostgreSQL ends a session that stays idle in a transaction for more than 5 s, and Python
work between statements counts as idle (the insert of a 10,000-row mass invite, ~50,000
events, was ended that way on a loaded machine). So a save is folded in two parts:

- before the transaction: every event whose row the save itself creates (a new
  invitation, membership or batch, and what follows to it in the same save), into a
  fresh fold, with the events' indexes in the save standing in for their positions;
- inside it, after the events got their positions: the positions put in, the rows the
  other events touch loaded, and those events folded (`deferred`), in the save's order.

The two parts never touch the same row: a row is created by the first event of its
stream, so an event on a row this save did not create can only be deferred. A
`PasswordChanged` is always deferred (it touches every row of its account); no event of
the same save can follow it on that account's rows (a password of one's own is never
followed by a temporary one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from services.invitation.eventstore.envelopes import field_uuid
from services.invitation.eventstore.read_model.projection import (
    ACCOUNT,
    CREATING,
    INVITATION,
    MEMBERSHIP,
    NOTIFICATION_FAILED,
    PASSWORD_CHANGED,
    Fold,
)

Event = tuple[int, str, Mapping[str, Any], UUID]  # (index in the save, topic, fields, origin)


@dataclass(frozen=True)
class Keys:
    """The existing rows a live save's deferred events need loaded."""

    invitations: list[UUID]
    accounts: list[UUID]  # whose invitations PasswordChanged may touch
    members: list[UUID]

    def __bool__(self) -> bool:
        return bool(self.invitations or self.accounts or self.members)


@dataclass
class PreparedSave:
    fold: Fold = field(default_factory=Fold)
    deferred: list[Event] = field(default_factory=list)
    empty: bool = True


def _target(topic: str, fields: Mapping[str, Any], origin: UUID) -> tuple[str, UUID] | None:
    """The row an event changes: ("invitation" | "member", key); None for PasswordChanged."""
    if topic == PASSWORD_CHANGED:
        return None
    if topic.startswith(INVITATION):
        return "invitation", origin
    if topic.startswith(ACCOUNT):
        return "invitation", field_uuid(fields["invitation_id"])
    if topic.startswith(MEMBERSHIP):
        return "member", origin
    if topic == NOTIFICATION_FAILED:  # an email of an invitation, or of nothing to show
        invitation_id = fields.get("invitation_id")
        return None if invitation_id is None else ("invitation", field_uuid(invitation_id))
    return None


def prepare_save(events: Iterable[Event]) -> PreparedSave:
    prepared = PreparedSave()
    fold = prepared.fold
    for event in events:
        prepared.empty = False
        index, topic, fields, origin = event
        if topic in CREATING:
            fold.apply(index, topic, fields, origin)
            continue
        target = _target(topic, fields, origin)
        known = target is not None and (
            target[1] in (fold.invitations if target[0] == "invitation" else fold.members)
        )
        if known:
            fold.apply(index, topic, fields, origin)
        else:
            prepared.deferred.append(event)
    return prepared


def keys_of(events: Iterable[Event]) -> Keys:
    invitations: dict[UUID, None] = {}
    accounts: dict[UUID, None] = {}
    members: dict[UUID, None] = {}
    for _, topic, fields, origin in events:
        if topic == PASSWORD_CHANGED:
            accounts[origin] = None
            continue
        target = _target(topic, fields, origin)
        if target is not None:
            (invitations if target[0] == "invitation" else members)[target[1]] = None
    return Keys(list(invitations), list(accounts), list(members))
