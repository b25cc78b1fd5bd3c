"""The read side: queries on a big tenant, the read model's rebuild, and what it costs.

Over one store (bench/read_side_store.py: a tenant with 100,000 invitations in a store
of 1,000,000 events, kept between invocations; `--quick`: 600 in 6,000, built per run):

- cost per invite, with and without the read model: batches of 100 single invites
  through `InvitationService.handle_batch` (the batcher's call) with the production hash
  cost, alternating a service that keeps the read model with one whose recorder skips it
  (decoding and folding included), in tenants of their own. CPU = this process (deciding,
  hashing, the recorder's Python) + the PostgreSQL backend serving it (one connection,
  read from /proc), per invite;
- the rebuild from scratch (`invitations replay read-model`'s code): every event of the
  store over the seconds it takes; it also restores the rows the "without" runs skipped;
- the queries as a backend sees them: `python -m services.invitation` on the store (relay
  off), one request at a time over the broker, reply awaited: `list_invitations` 100 per
  page filtered by each status, walking pages with their tokens; `get_invitation` of
  random invitations of the big tenant. The same queries in process (the query service
  alone, no broker) are reported beside them.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from bench import big_store, read_side_store
from bench.core import Figure, Scale, Suite
from bench.services import LOG_DIR
from services.invitation.application import InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from services.invitation.eventstore.read_model.rebuild import rebuild_store
from shared import contract as c
from shared.command_client import CommandClient
from shared.database import postgres_conninfo
from tests.support import ServiceProcess, service_env, temporary_schema, temporary_vhost

FULL = (100_000, 1_000_000)
QUICK = (600, 6_000)
STATUSES = ("pending", "accepted", "revoked", "lapsed")

FIGURES = (
    Figure("list_invitations_p99_ms", "list_invitations p99, broker", "ms", 20, "lower"),
    Figure("get_invitation_p99_ms", "get_invitation p99, broker", "ms", 5, "lower"),
    Figure("list_invitations_p50_ms", "list_invitations p50, broker", "ms", better="lower"),
    Figure("get_invitation_p50_ms", "get_invitation p50, broker", "ms", better="lower"),
    Figure("list_invitations_db_p99_ms", "list_invitations p99, in process", "ms", better="lower"),
    Figure("get_invitation_db_p99_ms", "get_invitation p99, in process", "ms", better="lower"),
    Figure("rebuild_events_per_s", "read model rebuilt from scratch", "events/s", 50_000),
    Figure("cpu_per_invite_ms_without", "CPU per invite, no read model", "ms", better="lower"),
    Figure("cpu_per_invite_ms_with", "CPU per invite, read model kept", "ms", better="lower"),
    Figure("read_model_cpu_added_pct", "CPU per invite added by the read model", "%"),
    Figure("read_side_store_events", "events in the store", "events"),
)


def _say(line: str) -> None:
    print(f"  read_side: {line}", flush=True)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- cost per invite -----------------------------------------------------------------------


class _NoReadModel:
    """Stands in for the recorder's read model: nothing decoded, nothing written."""

    def prepare(self, stored_events: Any, decode: Any) -> list[Any]:
        return []

    def apply(self, cursor: Any, events: Any, positions: Any) -> None:
        pass


def _service(url: str, *, read_model: bool) -> tuple[InvitationService, int]:
    """A service on one pooled connection (so its backend's CPU can be read), and that pid."""
    env = {**store_env(url), "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}
    service = InvitationService(InvitationStore(env=env), secrets_key=big_store.SECRETS_KEY)
    recorder: Any = service.store.recorder
    if not read_model:
        recorder.read_model = _NoReadModel()
    with recorder.datastore.get_connection() as conn:
        pid = int(conn.info.backend_pid)
    return service, pid


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_cost_per_invite(url: str, batches: int) -> tuple[float, float]:
    """(without, with) ms of CPU per invite, summed over alternated batches of 100."""
    services = [_service(url, read_model=False), _service(url, read_model=True)]
    cpu, invites = [0.0, 0.0], [0, 0]
    try:
        for round_ in range(batches + 1):
            for which, (service, pid) in enumerate(services):
                run = uuid.uuid4().hex[:8]
                batch = big_store.single_invites(f"cost-{run}", 100, f"p{run}-")
                before = time.process_time() + _cpu_seconds(pid)
                replies = service.handle_batch(batch)
                spent = time.process_time() + _cpu_seconds(pid) - before
                assert all(r.status == "accepted" for r in replies), replies[0]
                if round_ > 0:  # the first batch of each warms its connection and caches
                    cpu[which] += spent
                    invites[which] += len(batch)
    finally:
        for service, _ in services:
            service.close()
    without, with_ = (cpu[i] * 1000 / invites[i] for i in (0, 1))
    _say(f"CPU per invite: {without:.2f} ms without the read model, {with_:.2f} ms with it")
    return without, with_


# -- rebuild -------------------------------------------------------------------------------


def measure_rebuild(url: str) -> float:
    events = big_store.count_events(url)
    store = InvitationStore(env=store_env(url))
    try:
        started = time.perf_counter()
        rebuild_store(store)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    _say(f"rebuild: {events:,} events in {seconds:.1f} s")
    return events / seconds


# -- queries -------------------------------------------------------------------------------


def _sample_invitations(url: str, tenant: str, count: int) -> list[UUID]:
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT invitation_id FROM {}.invitations_rm_invitations WHERE tenant_id = %s"
            ).format(sql.Identifier(schema)),
            (tenant,),
        ).fetchall()
    ids = [r[0] for r in rows]
    return random.Random(7).sample(ids, min(count, len(ids)))


Ask = Callable[[str, dict[str, Any]], Any]


async def _timed_queries(
    ask: Ask, tenant: str, ids: list[UUID], walks: int, depth: int
) -> tuple[list[float], list[float]]:
    """(list_invitations ms, get_invitation ms) of one request at a time."""
    listing: list[float] = []
    for _ in range(walks):
        for status in STATUSES:
            token = None
            for _ in range(depth):
                fields: dict[str, Any] = {"tenant_id": tenant, "status": [status], "page_size": 100}
                if token is not None:
                    fields["page_token"] = token
                started = time.perf_counter()
                result = await ask("list_invitations", fields)
                listing.append((time.perf_counter() - started) * 1000)
                token = result["next_page_token"]
                if token is None:
                    break
    getting: list[float] = []
    for invitation_id in ids:
        started = time.perf_counter()
        await ask("get_invitation", {"tenant_id": tenant, "invitation_id": str(invitation_id)})
        getting.append((time.perf_counter() - started) * 1000)
    return listing, getting


def _body(fields: dict[str, Any]) -> dict[str, Any]:
    return {"command_id": str(uuid.uuid4()), "actor": "backend@bench.example", **fields}


async def measure_queries_over_broker(
    url: str, tenant: str, ids: list[UUID], walks: int, depth: int
) -> tuple[list[float], list[float]]:
    with temporary_vhost() as amqp_url:
        env = service_env(url, amqp_url, RELAY_ENABLED="false", LOG_LEVEL="WARNING")
        process = ServiceProcess("invitation", env, LOG_DIR).start()
        try:
            async with CommandClient(amqp_url) as client:

                async def ask(name: str, fields: dict[str, Any]) -> Any:
                    reply = await client.send(name, _body(fields), within=60.0)
                    assert reply.result is not None, reply.error
                    return reply.result

                await _until_answering(ask, tenant, ids[0])
                await _timed_queries(ask, tenant, ids[:50], 1, 3)  # warm-up, not counted
                return await _timed_queries(ask, tenant, ids, walks, depth)
        finally:
            await asyncio.to_thread(process.stop)


async def _until_answering(ask: Ask, tenant: str, invitation_id: UUID) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            await asyncio.wait_for(
                ask("get_invitation", {"tenant_id": tenant, "invitation_id": str(invitation_id)}),
                2.0,
            )
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise RuntimeError("the invitation service did not answer") from None


async def measure_queries_in_process(
    url: str, tenant: str, ids: list[UUID], walks: int, depth: int
) -> tuple[list[float], list[float]]:
    service = InvitationService(
        InvitationStore(env=store_env(url)), secrets_key=big_store.SECRETS_KEY
    )

    async def ask(name: str, fields: dict[str, Any]) -> Any:
        reply = service.queries.ask(c.COMMANDS[name].model_validate(_body(fields)))
        assert reply.result is not None, reply.error
        return reply.result

    try:
        await _timed_queries(ask, tenant, ids[:50], 1, 3)  # warm-up
        return await _timed_queries(ask, tenant, ids, walks, depth)
    finally:
        service.close()


# -- the suite -----------------------------------------------------------------------------


async def _measure(store: read_side_store.ReadSideStore, scale: Scale) -> dict[str, float]:
    without, with_ = await asyncio.to_thread(measure_cost_per_invite, store.url, scale.pick(10, 2))
    rebuild = await asyncio.to_thread(measure_rebuild, store.url)
    ids = await asyncio.to_thread(
        _sample_invitations, store.url, store.tenant, scale.pick(1000, 50)
    )
    walks, depth = scale.pick(5, 1), scale.pick(25, 3)
    listing, getting = await measure_queries_over_broker(store.url, store.tenant, ids, walks, depth)
    db_listing, db_getting = await measure_queries_in_process(
        store.url, store.tenant, ids, walks, depth
    )
    _say(
        f"list_invitations p50/p99 {_percentile(listing, 0.5):.1f}/"
        f"{_percentile(listing, 0.99):.1f} ms over {len(listing)} pages; get_invitation "
        f"{_percentile(getting, 0.5):.1f}/{_percentile(getting, 0.99):.1f} ms over {len(getting)}"
    )
    return {
        "list_invitations_p99_ms": _percentile(listing, 0.99),
        "get_invitation_p99_ms": _percentile(getting, 0.99),
        "list_invitations_p50_ms": _percentile(listing, 0.5),
        "get_invitation_p50_ms": _percentile(getting, 0.5),
        "list_invitations_db_p99_ms": _percentile(db_listing, 0.99),
        "get_invitation_db_p99_ms": _percentile(db_getting, 0.99),
        "rebuild_events_per_s": rebuild,
        "cpu_per_invite_ms_without": without,
        "cpu_per_invite_ms_with": with_,
        "read_model_cpu_added_pct": (with_ - without) * 100 / without,
        "read_side_store_events": float(big_store.count_events(store.url)),
    }


async def run(scale: Scale) -> dict[str, float]:
    if not scale.quick:
        store = await asyncio.to_thread(read_side_store.ensure, *FULL, _say)
        return await _measure(store, scale)
    with temporary_schema() as url:
        schema = url.rsplit("schema=", 1)[1]
        store = await asyncio.to_thread(read_side_store.build, schema, *QUICK, lambda _: None)
        return await _measure(store, scale)


async def prepare(scale: Scale) -> None:
    if not scale.quick:  # the kept store; a quick run builds a small one per run
        await asyncio.to_thread(read_side_store.ensure, *FULL, _say)


SUITE = Suite(
    name="read_side",
    figures=FIGURES,
    run=run,
    prepare=prepare,
    notes="store kept in schema bench_readside_v1_100000_1000000 (python -m "
    "bench.read_side_store 100000 1000000 --drop to remove it)",
)
