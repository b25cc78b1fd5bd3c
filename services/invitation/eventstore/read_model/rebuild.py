"""`invitations replay read-model`: the read model rebuilt from the event store (rule 28).

Every event the read model follows is folded into empty rows (the fold of projection.py,
the one the recorders run live), then the tables are emptied and refilled in one
transaction that first locks out writers and folds whatever they committed meanwhile.
Queries wait for that transaction (a few seconds on a million events) and never see a
half-built table. Nothing is sent or published.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.invitation.eventstore.envelopes import parse_state
from services.invitation.eventstore.read_model import Decode
from services.invitation.eventstore.read_model.projection import PROJECTED_TOPICS, Fold
from services.invitation.eventstore.store import InvitationStore, store_env
from shared.settings import ServiceSettings

_PAGE = 10_000


def rebuild(settings: ServiceSettings, progress: Callable[[int, int], None]) -> int:
    """The CLI's replay protocol (services/cli/replay.py): how many events were folded."""
    store = InvitationStore(env=store_env(settings.database_url))
    try:
        return rebuild_store(store, progress)
    finally:
        store.close()


def rebuild_store(
    store: InvitationStore, progress: Callable[[int, int], None] = lambda done, total: None
) -> int:
    recorder: Any = store.recorder
    tables, decode = recorder.read_model, recorder.decode_state
    last = int(recorder.max_notification_id() or 0)
    fold = Fold()
    after, applied = 0, 0
    # A rebuild allocates hundreds of thousands of rows and frees none: the cyclic GC
    # would walk them again and again for nothing (bench/README.md, "Store at scale").
    gc.disable()
    try:
        while True:
            rows = tables.read_events(after, _PAGE, PROJECTED_TOPICS)
            applied += _fold(fold, rows, decode)
            if len(rows) < _PAGE:
                break
            after = rows[-1][0]
            progress(after, last)
        after = max(after, rows[-1][0]) if rows else after
        with tables.exclusive() as cursor:
            while rows := tables.read_events(after, _PAGE, PROJECTED_TOPICS, cursor):
                applied += _fold(fold, rows, decode)
                after = rows[-1][0]
            tables.replace_all(cursor, fold)
    finally:
        gc.enable()
    progress(max(after, last), max(after, last))
    return applied


def _fold(fold: Fold, rows: list[tuple[int, Any, str, bytes]], decode: Decode | None) -> int:
    apply = fold.apply
    if decode is None:
        for position, origin, topic, state in rows:
            apply(position, topic, parse_state(state), origin)
        return len(rows)
    for position, origin, topic, state in rows:
        stored = StoredEvent(originator_id=origin, originator_version=0, topic=topic, state=state)
        apply(position, topic, decode(stored), origin)
    return len(rows)
