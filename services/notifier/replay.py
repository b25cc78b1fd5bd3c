"""`invitations replay notifier`: rebuild the notifier's state from the event store (rule 28).

The protocol of services/cli/replay.py: `rebuild(settings, progress) -> events applied`.

The notifier's state (administrators, invitations, pending halves, batch counts) is
dropped and rebuilt from position 0 up to where the notifier had got to. No email is
sent and no command published: every email row that exists is kept as it is (sent,
failed, skipped, or pending: the notifier sends it afterwards), and an email that
history implies but that has no row (the rules changed, or rows were deleted) is
recorded `replayed`, never sent. Events after that position are left to the notifier,
which sends them as usual. Run it with the notifier stopped; a running notifier would
carry on the rebuild itself, sending any missing email.
"""

from __future__ import annotations

from collections.abc import Callable

from services.invitation.eventstore import EventLog
from services.notifier.adapters.ledger import open_ledger
from services.notifier.domain.delivery import REPLAYED
from services.notifier.domain.planning import EVENT_TYPES
from services.notifier.planner import Planner
from shared.collector import paused_collector
from shared.settings import ServiceSettings

# Larger pages than the live notifier's: fewer transactions over a large store.
PAGE = 5_000


def rebuild(settings: ServiceSettings, progress: Callable[[int, int], None]) -> int:
    ledger = open_ledger(settings.database_url)
    # Only the types planning reads: the rest (internal events, deliveries recorded...)
    # cannot change the state nor imply an email, so they are not even fetched.
    events = EventLog(settings.database_url, event_types=EVENT_TYPES)
    try:
        with paused_collector():
            until = ledger.position()
            ledger.reset_for_replay()
            # The state was just emptied and nothing else plans meanwhile (see above):
            # the planner holds it all in memory instead of reading it back every page.
            planner = Planner(events, ledger, batch_size=PAGE, resident_state={})
            applied = 0
            progress(0, until)
            while (step := planner.plan_once(until=until, status=REPLAYED)) is not None:
                applied += step.events
                progress(step.position, until)
            return applied
    finally:
        events.close()
        ledger.close()


def reset(database_url: str) -> None:
    """Forget the state and position, keep every email row: the next notifier pass
    re-plans the whole log, and sends only emails that were never planned."""
    ledger = open_ledger(database_url)
    try:
        ledger.reset_for_replay()
    finally:
        ledger.close()
