"""The read side's store: one tenant with many invitations, in a store of many events.

Built through `InvitationService.handle_batch` (the service's own unit of work, recorder
and read model), like bench/big_store.py, whose rounds of mixed tenants fill the store
up to its size. The big tenant gets its invitations by mass invites of up to 10,000 rows
(automatic passwords), eight days ago by the service's clock, then a mix of what follows:
40% accepted, 10% revoked, 5% resent, and, now, 10% lapsed; the rest (40%, the resent
ones included) stays pending.

`python -m bench.read_side_store INVITATIONS EVENTS [--drop]` builds (or drops) the kept
store `bench_readside_v<VERSION>_<invitations>_<events>`; the full size (100,000 in a
million events) takes about ten minutes here. A store is reused once its meta row says
it is complete.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
from psycopg import sql

from bench import big_store
from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from shared import contract as c
from shared.secrets import TokenSigner
from tests.support import POSTGRES

VERSION = 1
TENANT = "bench-big"
_MASS = 10_000
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReadSideStore:
    url: str
    schema: str
    events: int
    invitations: int
    tenant: str = TENANT


def schema_name(invitations: int, events: int) -> str:
    return f"bench_readside_v{VERSION}_{invitations}_{events}"


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ensure(invitations: int, events: int, progress: Progress = print) -> ReadSideStore:
    """The kept store of that size: reused when complete, else (re)built."""
    schema = schema_name(invitations, events)
    meta = big_store._meta(schema)
    if meta is not None and meta.get("version") == VERSION:
        progress(f"store {schema}: complete ({meta['events']:,} events), reused")
        return ReadSideStore(big_store.url_of(schema), schema, meta["events"], invitations)
    big_store.drop(schema)
    return build(schema, invitations, events, progress)


def build(schema: str, invitations: int, events: int, progress: Progress = print) -> ReadSideStore:
    url = big_store.url_of(schema)
    started = time.monotonic()
    now = datetime.now(UTC)
    clock = _Clock(now - timedelta(days=8))
    service = InvitationService(
        InvitationStore(env=store_env(url)),
        secrets_key=big_store.SECRETS_KEY,
        hasher=big_store.cheap_hasher(),
        clock=clock,
    )
    rng = random.Random(invitations)
    try:
        ids = _big_tenant(service, invitations, progress)
        _follow_up(service, rng, ids, clock, now)
        writer = big_store._Writer(service, rng, small=events < 100_000)
        stored = int(service.store.recorder.max_notification_id() or 0)
        while stored < events:
            writer.round()
            stored = int(service.store.recorder.max_notification_id() or 0)
            progress(f"store {schema}: {stored:,}/{events:,} events")
    finally:
        service.close()
    total = big_store.count_events(url)
    _analyze(schema)
    big_store._write_meta(schema, {"version": VERSION, "events": total})
    progress(f"store {schema}: {total:,} events built in {time.monotonic() - started:.0f} s")
    return ReadSideStore(url, schema, total, invitations)


def _run(service: InvitationService, batch: Sequence[IncomingCommand]) -> list[c.Reply]:
    replies: list[c.Reply] = []
    for start in range(0, len(batch), big_store.BATCH):
        replies += service.handle_batch(batch[start : start + big_store.BATCH])
    return replies


def _big_tenant(service: InvitationService, invitations: int, progress: Progress) -> list[UUID]:
    ids: list[UUID] = []
    while len(ids) < invitations:
        count = min(_MASS, invitations - len(ids))
        rows = [
            c.MassInvitee(email=f"member{len(ids) + i}@big.example", role="user")
            for i in range(count)
        ]
        (reply,) = _run(
            service, [big_store.command("mass_invite", tenant_id=TENANT, invitees=rows)]
        )
        assert reply.result is not None, reply.error
        ids += [UUID(r["invitation_id"]) for r in reply.result["rows"]]
        progress(f"{TENANT}: {len(ids):,}/{invitations:,} invitations")
    return ids


def _follow_up(
    service: InvitationService,
    rng: random.Random,
    ids: list[UUID],
    clock: _Clock,
    now: datetime,
) -> None:
    """Still eight days ago: acceptances, revocations, resends; then, now, some lapse."""
    order = list(range(len(ids)))
    rng.shuffle(order)
    tenth = len(ids) // 10
    accept, revoke = order[: 4 * tenth], order[4 * tenth : 5 * tenth]
    resend, lapse = order[5 * tenth : 5 * tenth + tenth // 2], order[6 * tenth : 7 * tenth]
    signer = TokenSigner(big_store.SECRETS_KEY)
    follow = [
        big_store.command(
            "accept_invitation",
            tenant_id=TENANT,
            token=signer.token(ids[i], 1),
            email=f"member{i}@big.example",
        )
        for i in accept
    ]
    follow += [
        big_store.command("revoke_invitation", tenant_id=TENANT, invitation_id=ids[i])
        for i in revoke
    ]
    follow += [
        big_store.command("resend_invitation", tenant_id=TENANT, invitation_id=ids[i])
        for i in resend
    ]
    _run(service, follow)
    clock.now = now
    _run(
        service,
        [
            big_store.command(
                "lapse_invitation", tenant_id=TENANT, invitation_id=ids[i], actor="service:expiry"
            )
            for i in lapse
        ],
    )


def _analyze(schema: str) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        for table in ("invitations_events", "invitations_rm_invitations", "invitations_rm_members"):
            conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.read_side_store", description=__doc__)
    parser.add_argument("invitations", type=int, help="invitations of the big tenant")
    parser.add_argument("events", type=int, help="events in the store")
    parser.add_argument("--drop", action="store_true", help="drop the kept store instead")
    args = parser.parse_args(argv)
    if args.drop:
        big_store.drop(schema_name(args.invitations, args.events))
    else:
        ensure(args.invitations, args.events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
