"""A large event store built through the real application code, kept between bench runs.

The store is written by `InvitationService.handle_batch`, the service's own unit of work
and recorder, so every event carries its hash-chain link, its stream-index row, its
command reply and its sealed secret exactly as in production; only the broker is skipped
(commands go in batches of about a thousand, as the batcher would group them under load).

The mix, tenant by tenant: settings (contractors on or off, manual or automatic delivery,
reminder offsets, extra admin addresses), registered accounts that later invitations link
to, single invites of users, administrators and contractors with end dates, acceptances,
revocations, resends, contractor end dates moved, passwords changed, and a mass invite
every few rounds. One person, `NEEDLE_EMAIL`, is invited in several tenants (the audit
figure looks them up).

A complete store is kept in the schema `bench_store_v<VERSION>_<events>` and reused: it is
complete when its `bench_store_meta` row says so, which is written last, after the
notifier has planned the whole log. Anything else found under that name is dropped and
rebuilt. Drop a kept store with
`psql postgresql://root@127.0.0.1:5432/test -c 'DROP SCHEMA bench_store_v1_1000000 CASCADE'`
(or `python -m bench.big_store --drop 1000000`).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

from services.invitation.application import IncomingCommand, InvitationService
from services.invitation.eventstore import EventLog, InvitationStore, store_env
from services.notifier.adapters.ledger import open_ledger
from services.notifier.domain.delivery import REPLAYED
from services.notifier.planner import Planner
from shared import contract as c
from shared.database import postgres_conninfo
from shared.secrets import HashCost, TempPasswordHasher, TokenSigner
from tests.support import POSTGRES, TEST_SECRETS_KEY

# Bump when the mix changes: a kept store of another version is never reused.
VERSION = 1
NEEDLE_EMAIL = "needle.person@bench.example"
SECRETS_KEY = base64.b64decode(TEST_SECRETS_KEY)
_META = "bench_store_meta"
BATCH = 256

Progress = Callable[[str], None]


def schema_name(events: int) -> str:
    return f"bench_store_v{VERSION}_{events}"


def url_of(schema: str) -> str:
    return f"{POSTGRES}?schema={schema}"


@dataclass(frozen=True)
class BigStore:
    url: str
    schema: str
    events: int  # stored events when it was completed
    notifier_position: int  # where the notifier's planning had got to
    needle_email: str


def cheap_hasher() -> TempPasswordHasher:
    """argon2id at its minimum memory: the store's shape, not its hash cost, is measured
    here (cost per invite uses the production cost), and it saves minutes of build."""
    return TempPasswordHasher(HashCost(time_cost=1, memory_kib=64))


def drop(schema: str) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _meta(schema: str) -> dict[str, Any] | None:
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, _META),
        ).fetchone()
        if found is None:
            return None
        row = conn.execute(
            sql.SQL("SELECT value FROM {}.{} WHERE key = 'complete'").format(
                sql.Identifier(schema), sql.Identifier(_META)
            )
        ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def _write_meta(schema: str, meta: dict[str, Any]) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(_META))
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text)").format(
                table
            )
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} VALUES ('complete', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ).format(table),
            (json.dumps(meta),),
        )


def count_events(url: str, upto: int | None = None) -> int:
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_conninfo(url), autocommit=True) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.invitations_events").format(sql.Identifier(schema))
        if upto is None:
            row = conn.execute(query).fetchone()
        else:
            row = conn.execute(query + sql.SQL(" WHERE notification_id <= %s"), (upto,)).fetchone()
    return int(row[0]) if row else 0


def ensure(events: int, progress: Progress = print) -> BigStore:
    """The kept store of `events` events: reused when complete, else (re)built."""
    schema = schema_name(events)
    meta = _meta(schema)
    if meta is not None and meta.get("version") == VERSION and meta["events"] >= events:
        progress(f"store {schema}: complete ({meta['events']:,} events), reused")
        return BigStore(
            url_of(schema), schema, meta["events"], meta["notifier_position"], NEEDLE_EMAIL
        )
    drop(schema)  # absent, of another version, or interrupted half-way: start again
    return build(schema, events, progress)


def build(schema: str, events: int, progress: Progress = print) -> BigStore:
    """Build `events` events (a little more: a round is finished) into `schema`."""
    url = url_of(schema)
    started = time.monotonic()
    service = InvitationService(
        InvitationStore(env=store_env(url)), secrets_key=SECRETS_KEY, hasher=cheap_hasher()
    )
    try:
        # A reproducible mix; small stores (quick runs) get smaller rounds.
        writer = _Writer(service, random.Random(events), small=events < 100_000)
        stored = 0
        while stored < events:
            writer.round()
            stored = int(service.store.recorder.max_notification_id() or 0)
            rate = stored / max(time.monotonic() - started, 1e-9)
            progress(f"store {schema}: {stored:,}/{events:,} events ({rate:,.0f}/s)")
    finally:
        service.close()
    notifier_position = plan_notifier(url, progress)
    total = count_events(url)
    _analyze(schema)
    _write_meta(
        schema,
        {"version": VERSION, "events": total, "notifier_position": notifier_position},
    )
    progress(f"store {schema}: {total:,} events built in {time.monotonic() - started:.0f} s")
    return BigStore(url, schema, total, notifier_position, NEEDLE_EMAIL)


def plan_notifier(url: str, progress: Progress = print) -> int:
    """Run the notifier's planning over the whole log, as the live notifier would have.

    New rows are recorded `replayed`, not `pending`: nothing is ever sent from this store.
    """
    ledger = open_ledger(url)
    events = EventLog(url)
    try:
        planner = Planner(events, ledger)
        last = events.max_position()
        while (step := planner.plan_once(status=REPLAYED)) is not None:
            if step.position // 100_000 != (step.position - step.events) // 100_000:
                progress(f"notifier planning: {step.position:,}/{last:,}")
        return ledger.position()
    finally:
        events.close()
        ledger.close()


def _analyze(schema: str) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(sql.SQL("ANALYZE {}.invitations_events").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("ANALYZE {}.invitations_streams").format(sql.Identifier(schema)))


def command(name: str, **fields: Any) -> IncomingCommand:
    fields.setdefault("actor", "admin@bench.example")
    return IncomingCommand(name, c.COMMANDS[name](command_id=uuid4(), **fields))


def single_invites(tenant_id: str, count: int, prefix: str) -> list[IncomingCommand]:
    """`count` invites of new people in one tenant: what cost-per-invite sends."""
    return [
        command("invite_user", tenant_id=tenant_id, email=f"{prefix}{i}@cost.example", role="user")
        for i in range(count)
    ]


class _Writer:
    """One round = a handful of tenants set up, invited into, and followed up."""

    def __init__(self, service: InvitationService, rng: random.Random, *, small: bool) -> None:
        self.tenants_per_round = 2 if small else 12
        self.mass_invite_rows = 150 if small else 1500
        self._service = service
        self._rng = rng
        self._signer = TokenSigner(SECRETS_KEY)
        self._round = 0
        self._people = 0
        self._known: list[str] = []  # emails with an account someone can sign in to

    def _run(self, batch: Sequence[IncomingCommand]) -> list[c.Reply]:
        replies: list[c.Reply] = []
        # The service's own BATCH_MAX: a unit of work's cost grows faster than its size.
        for start in range(0, len(batch), BATCH):
            replies += self._service.handle_batch(batch[start : start + BATCH])
        return replies

    def _email(self) -> str:
        self._people += 1
        return f"person{self._people}@bench.example"

    def round(self) -> None:
        rng = self._rng
        tenants = [f"tenant-{self._round}-{i}" for i in range(self.tenants_per_round)]
        # 1. Settings, and people who already have an account elsewhere.
        setup: list[IncomingCommand] = []
        contractors_on: set[str] = set()
        for tenant_id in tenants:
            fields: dict[str, Any] = {"contractor_enabled": rng.random() < 0.7}
            if fields["contractor_enabled"]:
                contractors_on.add(tenant_id)
            if rng.random() < 0.2:
                fields["temp_password_delivery"] = "manual"
            if rng.random() < 0.3:
                fields["expiry_reminders"] = [timedelta(days=14), timedelta(days=3)]
            if rng.random() < 0.3:
                fields["admin_notification_emails"] = [f"security@{tenant_id}.example"]
            setup.append(command("configure_tenant", tenant_id=tenant_id, **fields))
        registered = [self._email() for _ in range(rng.randint(20, 60))]
        setup += [command("register_account", email=e) for e in registered]
        self._run(setup)
        self._known += registered

        # 2. Single invites: an administrator first, then a mix of roles and modes.
        invites: list[IncomingCommand] = []
        now = datetime.now(UTC)
        for tenant_id in tenants:
            people = rng.randint(30, 130)
            for index in range(people):
                if index > 0 and self._known and rng.random() < 0.15:
                    email = rng.choice(self._known)  # someone already known: linked
                else:
                    email = self._email()
                role = "administrator" if index == 0 or rng.random() < 0.08 else "user"
                fields = {}
                if tenant_id in contractors_on and rng.random() < 0.2:
                    role = "contractor"
                    fields["access_expires_at"] = now + timedelta(
                        days=rng.randint(2, 400), seconds=rng.randint(0, 86_399)
                    )
                if rng.random() < 0.1:
                    fields["temp_password_delivery"] = "manual"
                if rng.random() < 0.2:
                    fields["locale"] = "fr"
                invites.append(
                    command(
                        "invite_user",
                        tenant_id=tenant_id,
                        email=email,
                        role=role,
                        display_name=f"Person {self._people}",
                        **fields,
                    )
                )
        if self._round % 40 == 0:
            invites.append(
                command("invite_user", tenant_id=tenants[0], email=NEEDLE_EMAIL, role="user")
            )
        replies = self._run(invites)

        # 3. What happens next: acceptances, revocations, resends, end dates moved.
        follow: list[IncomingCommand] = []
        accepted: list[str] = []
        for item, reply in zip(invites, replies, strict=True):
            if reply.status != "accepted" or reply.result is None:
                continue  # refused (already a member, say): the refusal is history too
            invite = item.command
            assert isinstance(invite, c.InviteUser)
            invitation_id = UUID(reply.result["invitation_id"])
            roll = rng.random()
            if roll < 0.45 or invite.email == NEEDLE_EMAIL:
                token = self._signer.token(invitation_id, 1)
                follow.append(
                    command(
                        "accept_invitation",
                        tenant_id=invite.tenant_id,
                        token=token,
                        email=invite.email,
                        actor=invite.email,
                    )
                )
                if reply.result["outcome"] == "temp_password_issued":
                    accepted.append(invite.email)
                if invite.role == "contractor" and rng.random() < 0.3:
                    assert invite.access_expires_at is not None
                    follow.append(
                        command(
                            "set_contractor_expiry",
                            tenant_id=invite.tenant_id,
                            email=invite.email,
                            access_expires_at=invite.access_expires_at
                            + timedelta(days=rng.randint(-1, 60)),
                        )
                    )
            elif roll < 0.55:
                follow.append(
                    command(
                        "revoke_invitation",
                        tenant_id=invite.tenant_id,
                        invitation_id=invitation_id,
                        reason="no longer needed",
                    )
                )
            elif roll < 0.60:
                follow.append(
                    command(
                        "resend_invitation", tenant_id=invite.tenant_id, invitation_id=invitation_id
                    )
                )
        self._run(follow)

        # 4. Half of those who accepted with a temporary password set their own.
        changed = [e for e in dict.fromkeys(accepted) if rng.random() < 0.5]
        self._run([command("record_password_changed", email=e, actor=e) for e in changed])
        self._known += changed

        # 5. A mass invite, with a bad row and a repeated one.
        tenant_id = tenants[-1]
        rows: list[dict[str, Any]] = [
            {"email": self._email(), "role": "user"} for _ in range(self.mass_invite_rows)
        ]
        rows += [{"email": "not-an-email", "role": "user"}, dict(rows[0])]
        invitees = [c.MassInvitee(**row) for row in rows]
        self._run([command("mass_invite", tenant_id=tenant_id, invitees=invitees)])
        self._round += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.big_store", description=__doc__)
    parser.add_argument("events", type=int, help="how many events (e.g. 1000000)")
    parser.add_argument("--drop", action="store_true", help="drop the kept store instead")
    args = parser.parse_args(argv)
    if args.drop:
        drop(schema_name(args.events))
        print(f"dropped {schema_name(args.events)}")
    else:
        ensure(args.events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
