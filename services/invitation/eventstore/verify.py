"""The tamper check: recompute the hash chain (`chain.py`) and check the signed checkpoints."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from services.invitation.eventstore.chain import (
    GENESIS,
    AuditTables,
    Checkpoint,
    EventRow,
    link_hash,
)

_Row = TypeVar("_Row")
_BATCH = 10_000


@dataclass(frozen=True)
class Problem:
    position: int
    what: str


@dataclass
class Verification:
    events: int = 0
    last_position: int = 0
    head: bytes = GENESIS
    problems: list[Problem] = field(default_factory=list)
    checkpoints_checked: int = 0
    last_checkpoint: Checkpoint | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first_bad_position(self) -> int | None:
        return min((p.position for p in self.problems), default=None)


def _prefetched(
    read: Callable[[int, int, int], Sequence[_Row]], position: Callable[[_Row], int], upto: int
) -> Iterator[_Row]:
    """Rows in position order, the next batch read while this one is being hashed."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-read") as pool:
        future = pool.submit(read, 0, upto, _BATCH)
        while True:
            batch = future.result()
            if len(batch) == _BATCH:
                future = pool.submit(read, position(batch[-1]), upto, _BATCH)
            yield from batch
            if len(batch) < _BATCH:
                return


def _merged(tables: AuditTables, upto: int) -> Iterator[tuple[int, EventRow | None, bytes | None]]:
    """Events and chain links side by side, in position order."""
    events = _prefetched(tables.read_events, lambda r: r.position, upto)
    links = _prefetched(tables.read_links, lambda r: r[0], upto)
    event, link = next(events, None), next(links, None)
    while event is not None or link is not None:
        if link is None or (event is not None and event.position < link[0]):
            assert event is not None
            yield event.position, event, None
            event = next(events, None)
        elif event is None or link[0] < event.position:
            yield link[0], None, link[1]
            link = next(links, None)
        else:
            yield event.position, event, link[1]
            event, link = next(events, None), next(links, None)


def verify(
    tables: AuditTables,
    key: bytes,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Verification:
    """Recompute the chain over every row, compare it with the stored links and checkpoints.

    Linear in the number of events. Each problem is reported at its position: an altered
    or moved row breaks its own link; a removed row leaves its link without an event (or,
    if its link went too, breaks the next link); a rewritten chain disagrees with the next
    signed checkpoint; a truncated history ends before the last checkpoint.
    """
    result = Verification()
    checkpoints = tables.checkpoints()
    previous_mac = GENESIS
    for index, checkpoint in enumerate(checkpoints, start=1):
        if checkpoint.seq != index:
            result.problems.append(
                Problem(
                    checkpoint.position,
                    f"checkpoint #{index} is missing (found "
                    f"#{checkpoint.seq}): checkpoints were removed",
                )
            )
        if not hmac.compare_digest(checkpoint.mac, checkpoint.expected_mac(key, previous_mac)):
            result.problems.append(
                Problem(checkpoint.position, f"checkpoint #{checkpoint.seq} has a bad signature")
            )
        previous_mac = checkpoint.mac
    result.last_checkpoint = checkpoints[-1] if checkpoints else None
    pending = sorted(checkpoints, key=lambda c: c.position)

    events_max, links_max = tables.max_positions()
    upto = max(events_max, links_max)
    running = GENESIS  # the chain recomputed from the events alone
    stored_previous = GENESIS  # the stored link before the current row

    def check_checkpoints(through: int) -> None:
        nonlocal running
        while pending and pending[0].position <= through:
            checkpoint = pending.pop(0)
            result.checkpoints_checked += 1
            if checkpoint.head != running or checkpoint.events != result.events:
                result.problems.append(
                    Problem(
                        checkpoint.position,
                        f"history up to position {checkpoint.position} differs from checkpoint "
                        f"#{checkpoint.seq} signed {checkpoint.signed_at} (rows before it were "
                        "changed, removed or inserted, and the chain rewritten)",
                    )
                )
                running = checkpoint.head  # judge the next segment on its own

    for position, row, stored in _merged(tables, upto):
        check_checkpoints(position - 1)
        if row is not None:
            result.events += 1
            recomputed = link_hash(
                running, row.position, row.originator_id, row.version, row.topic, row.state
            )
            # Usually the stored chain and the recomputed one agree: hash once.
            local = (
                recomputed
                if stored_previous == running
                else link_hash(
                    stored_previous,
                    row.position,
                    row.originator_id,
                    row.version,
                    row.topic,
                    row.state,
                )
            )
            running = recomputed
            if stored is None:
                result.problems.append(
                    Problem(position, "event has no chain link: inserted outside the event store")
                )
            elif stored != local:
                result.problems.append(
                    Problem(
                        position,
                        "event does not match its chain link: "
                        "changed or moved, or a row before it "
                        "was removed",
                    )
                )
        else:
            result.problems.append(Problem(position, "event removed: its chain link remains"))
        if stored is not None:
            stored_previous = stored
        result.last_position = position
        if result.events % _BATCH == 0:
            progress(position, upto)
    check_checkpoints(upto)
    for checkpoint in pending:  # beyond the end of the history
        result.problems.append(
            Problem(
                checkpoint.position,
                f"history is truncated: checkpoint #{checkpoint.seq} covers position "
                f"{checkpoint.position} but the history ends at {result.last_position}",
            )
        )
    result.head = running
    progress(upto, upto)
    return result


def sign_checkpoint(
    tables: AuditTables, key: bytes, verification: Verification, now: datetime | None = None
) -> Checkpoint | None:
    """Sign the head of a history that was just verified intact; None if nothing is new."""
    if not verification.intact or verification.events == 0:
        return None
    last = verification.last_checkpoint
    if last is not None and last.position == verification.last_position:
        return None
    unsigned = Checkpoint(
        seq=(last.seq if last else 0) + 1,
        position=verification.last_position,
        head=verification.head,
        events=verification.events,
        signed_at=(now or datetime.now(UTC)).isoformat(),
        mac=b"",
    )
    signed = replace(unsigned, mac=unsigned.expected_mac(key, last.mac if last else GENESIS))
    tables.add_checkpoint(signed)
    return signed
