"""Mass invite: 10,000 rows in one command, to its reply and to every invitee's email.

One run: both services on a fresh schema and vhost (`bench/mass_stack.py`); a tenant
with contractors enabled; a tenth of the invitees already have an account (linked, no
password), the rest get an automatic temporary password; roles 70% user, 10%
administrator, 20% contractor. Then the clock starts at the publish of the one
`mass_invite` command:

- `mass_stored_s`: until its reply, i.e. every invitation and the report are stored;
- `mass_emails_s`: until the SMTP sink has accepted an email for every invitee;
  `mass_first_email_s` and `mass_email_rate` (report only) split it into the wait for
  the first email and the sending rate after it.

`mass_hash_floor_s` (report only) is what argon2 alone needs for the run's passwords on
all of this machine's cores, measured in the same run with the service's default cost:
no design of the rest can store the batch faster than that. `mass_stored_cpu_s` (report
only) is the CPU time the invitation process used from publish to reply, and
`mass_notifier_cpu_ms` (report only) the notifier's CPU time from publish to the last
email, per invitee: unlike the wall times, they hardly depend on what else the machine
is running.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.core import Figure, Scale, Suite
from bench.mass_stack import MassStack, mass_stack
from shared.secrets import TempPasswordHasher, generate_temp_password
from tests.support import wait_for

ACTOR = "admin@bench.example"
LINKED_SHARE = 10  # one invitee in ten already has an account
HASH_SAMPLES = 200


def _command(tenant: str | None, **fields: Any) -> dict[str, Any]:
    body = {"command_id": str(uuid.uuid4()), "actor": ACTOR, **fields}
    if tenant is not None:
        body["tenant_id"] = tenant
    return body


def invitees(count: int, tag: str) -> list[dict[str, Any]]:
    """Valid rows of mixed roles; every tenth email is one `register` will create first."""
    ends = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    rows: list[dict[str, Any]] = []
    for i in range(count):
        role = "contractor" if i % 5 == 1 else "administrator" if i % 10 == 2 else "user"
        row: dict[str, Any] = {"email": f"m{i}-{tag}@bench.example", "role": role}
        if role == "contractor":
            row["access_expires_at"] = ends
        if i % 7 == 0:
            row["display_name"] = f"Invitee {i}"
        rows.append(row)
    return rows


async def _setup_tenant(stack: MassStack, tenant: str, rows: list[dict[str, Any]]) -> None:
    reply = await stack.client.send("configure_tenant", _command(tenant, contractor_enabled=True))
    assert reply.status == "accepted", reply.error
    registrations = [
        stack.client.send("register_account", _command(None, email=row["email"]), within=120)
        for row in rows[::LINKED_SHARE]
    ]
    for reply in await asyncio.gather(*registrations):
        assert reply.status == "accepted", reply.error


def hash_floor(passwords: int) -> float:
    """Seconds argon2 alone needs for `passwords` hashes, spread over every core."""
    hasher = TempPasswordHasher()
    samples = [generate_temp_password() for _ in range(HASH_SAMPLES)]
    started = time.perf_counter()
    for password in samples:
        hasher.hash(password)
    per_hash = (time.perf_counter() - started) / HASH_SAMPLES
    return passwords * per_hash / (os.cpu_count() or 1)


async def run(scale: Scale) -> dict[str, float]:
    count = scale.pick(10_000, 500)
    tag = uuid.uuid4().hex[:8]
    tenant = f"mass-{tag}"
    rows = invitees(count, tag)
    async with mass_stack() as stack:
        await _setup_tenant(stack, tenant, rows)
        floor = hash_floor(count - len(rows[::LINKED_SHARE]))
        body = json.dumps(_command(tenant, invitees=rows)).encode()
        cpu_before = stack.cpu_seconds("invitation")
        notifier_cpu_before = stack.cpu_seconds("notifier")
        published_at = time.time()  # the sink stamps emails with epoch seconds
        started = time.perf_counter()
        pending = await stack.client.publish_raw("mass_invite", body)
        assert pending is not None
        reply = await asyncio.wait_for(pending, timeout=scale.seconds(300, 60))
        stored = time.perf_counter() - started
        stored_cpu = stack.cpu_seconds("invitation") - cpu_before
        assert reply.status == "accepted", reply.error
        assert reply.result is not None
        assert reply.result["invited"] == count, reply.result["refused"]
        emails = [row["email"] for row in rows]
        await wait_for(
            lambda: stack.arrivals.last_of(emails),
            timeout=scale.seconds(600, 60),
            interval=0.2,
            what=f"an email to each of the {count} invitees",
        )
        notifier_cpu = stack.cpu_seconds("notifier") - notifier_cpu_before
        first, last = stack.arrivals.first_of(emails), stack.arrivals.last_of(emails)
        assert first is not None
        assert last is not None
        return {
            "mass_stored_s": stored,
            "mass_emails_s": last - published_at,
            "mass_hash_floor_s": floor,
            "mass_stored_cpu_s": stored_cpu,
            "mass_notifier_cpu_ms": notifier_cpu * 1000 / count,
            "mass_first_email_s": first - published_at,
            "mass_email_rate": count / max(last - first, 1e-3),
        }


SUITE = Suite(
    name="mass_invite",
    figures=(
        Figure(
            "mass_stored_s",
            "10,000-row mass invite: publish → reply (all stored)",
            "s",
            target=5,
            better="lower",
        ),
        Figure(
            "mass_emails_s",
            "10,000-row mass invite: publish → every invitee's email accepted",
            "s",
            target=20,
            better="lower",
        ),
        Figure(
            "mass_hash_floor_s",
            "argon2 alone for its temporary passwords, on every core",
            "s",
            better="lower",
        ),
        Figure(
            "mass_stored_cpu_s",
            "CPU the invitation process used from publish to reply",
            "s",
            better="lower",
        ),
        Figure(
            "mass_notifier_cpu_ms",
            "notifier CPU per invitee email, publish → last email",
            "ms",
            better="lower",
        ),
        Figure("mass_first_email_s", "publish → first invitee's email", "s", better="lower"),
        Figure("mass_email_rate", "emails/s from the first to the last", "/s"),
    ),
    run=run,
)
