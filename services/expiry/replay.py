"""`invitations replay expiry`: rebuild the expiry service's schedule from the store (rule 28).

The protocol of services/cli/replay.py: `rebuild(settings, progress) -> events applied`.

The expiry service's only state is its in-memory schedule, which it rebuilds from the
event store every time it starts (entrypoints/deadline_loop.py). This runs the same rebuild
(`Expiry.apply` over the log, in position order) in the operator's process, to show
what a starting service would find: how many deadlines, how many already overdue (the
service would send those at once), and the next one. It opens no broker connection, so
it cannot send a command; a running expiry service is not disturbed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from services.expiry.application import Expiry
from services.expiry.domain.deadlines import command_name, describe, instant
from services.expiry.domain.timetable import EVENT_TYPES
from services.invitation.eventstore import EventLog
from shared.collector import paused_collector
from shared.settings import ServiceSettings

# Larger pages than the live follower's: fewer round trips over a large store.
PAGE = 5_000


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr)


def rebuild(
    settings: ServiceSettings,
    progress: Callable[[int, int], None],
    *,
    report: Callable[[str], None] = _stderr_line,
    clock: Callable[[], float] = time.time,
) -> int:
    events = EventLog(settings.database_url, event_types=EVENT_TYPES)
    try:
        with paused_collector():
            last = events.max_position()
            expiry = Expiry()
            applied = 0
            progress(0, last)
            while True:
                before = expiry.position
                envelopes, high_water = events.read_with_high_water(before, PAGE)
                expiry.apply(envelopes, high_water)
                applied += len(envelopes)
                if expiry.position <= before:
                    break
                progress(expiry.position, last)
            progress(last, last)
    finally:
        events.close()
    report(summary(expiry, clock()))
    return applied


def summary(expiry: Expiry, now: float) -> str:
    deadlines = expiry.deadlines()
    overdue = sum(1 for at in deadlines.values() if at <= now)
    text = (
        f"expiry schedule up to position {expiry.position}: {len(deadlines)} deadline(s) "
        f"for {expiry.timetable.contractors()} contractor(s), {overdue} overdue"
    )
    if deadlines:
        key, at = min(deadlines.items(), key=lambda item: (item[1], item[0]))
        text += f"; next: {command_name(key)} {describe(key)} at {instant(at).isoformat()}"
    return text
