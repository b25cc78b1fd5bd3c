"""The million-event store: replaying consumers, auditing one email, and the cost per invite.

All figures of one run are taken over the same store (bench/big_store.py): a million
events built through the real application code, kept between invocations in its own
schema. `--quick` builds a small store in a temporary schema instead, and drops it.

- replay: the `invitations replay notifier|expiry` code paths (`rebuild`) over the whole
  store; every stored event up to where the consumer had got to counts, whether the
  consumer applied it or skipped it.
- audit: `invitations audit --email X` on a person with several invitations, timed in
  process (the CLI's own query and JSON rendering, connection opened beforehand), and as
  a whole `invitations` process (Python start-up included, report only).
- cost per invite: batches of single invites through `InvitationService.handle_batch`
  (what the service's batcher calls), with the production hash cost, alternated between
  a fresh 10,000-event store and the big one, in the same run.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

from bench import big_store
from bench.core import Figure, Scale, Suite
from services.cli import render
from services.cli.bootstrap import OperatorSettings, open_operator
from services.cli.history import History, HistoryFilter
from services.expiry import replay as expiry_replay
from services.invitation.application import InvitationService
from services.invitation.eventstore import InvitationStore, store_env
from services.notifier import replay as notifier_replay
from services.notifier.adapters.ledger import open_ledger
from shared.settings import ServiceSettings
from tests.support import ROOT, TEST_SECRETS_KEY, temporary_schema

BIG = 1_000_000
SMALL = 10_000
QUICK_BIG = 2_000
QUICK_SMALL = 500

FIGURES = (
    Figure(
        "replay_notifier_events_per_s",
        "replay notifier over the big store",
        "events/s",
        50_000,
        "higher",
    ),
    Figure("replay_expiry_events_per_s", "replay expiry over the big store", "events/s", 50_000),
    Figure("audit_one_email_ms", "audit one email (in process)", "ms", 200, "lower"),
    Figure("audit_one_email_cli_process_ms", "audit one email (whole CLI process)", "ms"),
    Figure("cost_per_invite_ms_10k", "cost per invite, 10k-event store", "ms"),
    Figure("cost_per_invite_ms_1m", "cost per invite, big store", "ms"),
    Figure("cost_per_invite_ratio", "cost per invite, big / 10k store", "x", 1.2, "lower"),
    Figure("store_events", "events in the big store", "events"),
)


def _say(line: str) -> None:
    print(f"  scale: {line}", flush=True)


def _settings(url: str) -> ServiceSettings:
    return ServiceSettings(database_url=url, secrets_key=TEST_SECRETS_KEY)


def measure_replay_notifier(store: big_store.BigStore) -> float:
    notifier = open_ledger(store.url)
    try:
        until = notifier.position()
    finally:
        notifier.close()
    events = big_store.count_events(store.url, upto=until)
    started = time.perf_counter()
    notifier_replay.rebuild(_settings(store.url), lambda done, total: None)
    seconds = time.perf_counter() - started
    _say(f"replay notifier: {events:,} events in {seconds:.1f} s")
    return events / seconds


def measure_replay_expiry(store: big_store.BigStore) -> float:
    events = big_store.count_events(store.url)
    found: list[str] = []
    started = time.perf_counter()
    expiry_replay.rebuild(_settings(store.url), lambda done, total: None, report=found.append)
    seconds = time.perf_counter() - started
    _say(f"replay expiry: {events:,} events in {seconds:.1f} s; {found[0]}")
    return events / seconds


def measure_audit(store: big_store.BigStore) -> tuple[float, float]:
    """(in-process ms, whole-process ms), each the median of a few lookups."""
    operator = open_operator(OperatorSettings(database_url=store.url, secrets_key=TEST_SECRETS_KEY))
    try:
        history = History(operator.store, operator.audit)

        def audit_once() -> int:
            out = io.StringIO()
            render.audit_json(out, history.envelopes(HistoryFilter(email=store.needle_email)))
            return out.getvalue().count("\n")

        lines = audit_once()  # connects the pool, warms the plan cache
        assert lines > 0, f"{store.needle_email} has no history in {store.schema}"
        in_process = []
        for _ in range(7):
            started = time.perf_counter()
            audit_once()
            in_process.append((time.perf_counter() - started) * 1000)
    finally:
        operator.close()
    script = Path(sys.executable).parent / "invitations"
    env = {**os.environ, "DATABASE_URL": store.url, "SECRETS_KEY": TEST_SECRETS_KEY}
    whole = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(
            [str(script), "audit", "--email", store.needle_email, "--format", "json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
        )
        whole.append((time.perf_counter() - started) * 1000)
        assert done.stdout.count(b"\n") == lines
    _say(
        f"audit {store.needle_email}: {lines} events, {statistics.median(in_process):.1f} ms "
        f"in process, {statistics.median(whole):.0f} ms as a process"
    )
    return statistics.median(in_process), statistics.median(whole)


def measure_cost_per_invite(small_url: str, big_url: str, batches: int) -> tuple[float, float]:
    """Median ms per invite in batches of 100 new people, alternating the two stores."""
    key = big_store.SECRETS_KEY
    services = [
        InvitationService(InvitationStore(env=store_env(url)), secrets_key=key)
        for url in (small_url, big_url)
    ]
    costs: list[list[float]] = [[], []]
    try:
        for round_ in range(batches + 1):
            for which, service in enumerate(services):
                run = uuid4().hex[:8]
                batch = big_store.single_invites(f"cost-{run}", 100, f"p{run}-")
                started = time.perf_counter()
                replies = service.handle_batch(batch)
                elapsed = time.perf_counter() - started
                assert all(r.status == "accepted" for r in replies), replies[0]
                if round_ > 0:  # the first batch of each warms its connection pool
                    costs[which].append(elapsed * 1000 / len(batch))
    finally:
        for service in services:
            service.close()
    small, big = (statistics.median(c) for c in costs)
    _say(f"cost per invite: {small:.2f} ms (small store), {big:.2f} ms (big store)")
    return small, big


def _measure(store: big_store.BigStore, small_url: str, scale: Scale) -> dict[str, float]:
    notifier = measure_replay_notifier(store)
    expiry = measure_replay_expiry(store)
    audit_ms, audit_process_ms = measure_audit(store)
    small, big = measure_cost_per_invite(small_url, store.url, scale.pick(8, 2))
    return {
        "replay_notifier_events_per_s": notifier,
        "replay_expiry_events_per_s": expiry,
        "audit_one_email_ms": audit_ms,
        "audit_one_email_cli_process_ms": audit_process_ms,
        "cost_per_invite_ms_10k": small,
        "cost_per_invite_ms_1m": big,
        "cost_per_invite_ratio": big / small,
        "store_events": float(big_store.count_events(store.url)),
    }


def _quiet(_: str) -> None:
    pass


def run_once(scale: Scale, progress: Callable[[str], None] = _say) -> dict[str, float]:
    with temporary_schema() as small_url:
        small_schema = small_url.rsplit("schema=", 1)[1]
        big_store.build(small_schema, scale.pick(SMALL, QUICK_SMALL), _quiet)
        if not scale.quick:
            return _measure(big_store.ensure(BIG, progress), small_url, scale)
        with temporary_schema() as big_url:
            schema = big_url.rsplit("schema=", 1)[1]
            return _measure(big_store.build(schema, QUICK_BIG, _quiet), small_url, scale)


async def run(scale: Scale) -> dict[str, float]:
    return await asyncio.to_thread(run_once, scale)


async def prepare(scale: Scale) -> None:
    if not scale.quick:  # the kept store; a quick run builds a small one per run
        await asyncio.to_thread(big_store.ensure, BIG, _say)


SUITE = Suite(
    name="scale",
    figures=FIGURES,
    run=run,
    prepare=prepare,
    notes="big store kept in schema bench_store_v1_1000000 (python -m bench.big_store "
    "1000000 --drop to remove it)",
)
