"""A walkthrough of the running system, as an administrator and the login front end see it.

Starts the services (each in its own process, each with a broker user of its own) on a
fresh PostgreSQL schema and RabbitMQ vhost, with a local SMTP sink, then sends a
realistic sequence of commands and queries as a backend (a fourth broker user;
scripts/walkthrough_read_side.py) and prints the replies, the events seen on
`invitations.events`, the emails each person received, and the operator's audit trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import glob
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiosmtpd.controller import Controller
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scripts.walkthrough_members import REFUSED, members_and_mail
from scripts.walkthrough_read_side import read_side
from shared.command_client import CommandClient
from shared.contract import Reply
from shared.senders import broker_user
from tests.support import (
    TEST_SECRETS_KEY,
    EventTap,
    ServiceProcess,
    service_env,
    temporary_broker_user,
    temporary_schema,
    temporary_vhost,
    wait_for,
)

console = Console(width=120)
ADMIN = "root.admin@acme.example"


class Sink:
    """A local SMTP server (with SMTPUTF8) that keeps what it is handed, and refuses the
    recipients of `REFUSED` as a real server refuses an unknown mailbox."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in REFUSED:
            return REFUSED[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_string(envelope.content.decode(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is not there
        return False


def show(step: str, reply: Reply) -> Reply:
    colour = "green" if reply.status == "accepted" else "yellow"
    detail = reply.result if reply.error is None else reply.error.model_dump()
    if isinstance(detail, dict) and "rows" in detail:
        detail = {**detail, "rows": f"{len(detail['rows'])} rows (see the report below)"}
    console.print(f"[bold]{escape(step)}[/] → [{colour}]{reply.status}[/] {escape(str(detail))}")
    return reply


def command(tenant: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"command_id": str(uuid.uuid4()), "actor": ADMIN} | fields
    if tenant is not None:
        body["tenant_id"] = tenant
    return body


async def walk(database_url: str, users: dict[str, str], log_dir: Path) -> None:
    """`users`: the AMQP_URL of each service's broker user, and the backend's."""
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port, enable_SMTPUTF8=True)
    controller.start()
    internal = f"{broker_user(users['notifier'])},{broker_user(users['expiry'])}"
    envs = {
        name: service_env(
            database_url,
            users[name],
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp_port),
            SMTP_FROM="invitations@acme.example",
            PUBLIC_BASE_URL="https://vault.acme.example",
            LOG_LEVEL="WARNING",
            # The delivery reports and the expiry commands: from those two users only.
            INTERNAL_SENDERS=internal,
        )
        for name in ("invitation", "notifier", "expiry")
    }
    services = start_services(envs, log_dir)
    console.rule("Services")
    console.print(", ".join(s.name for s in services), f"(logs in {log_dir})")
    console.print(
        "broker users: "
        + ", ".join(f"{name} = {broker_user(url)}" for name, url in users.items())
        + f"; INTERNAL_SENDERS={internal}"
    )
    tenant = f"acme-{uuid.uuid4().hex[:6]}"
    backend = users["backend"]
    try:
        async with CommandClient(backend) as client, EventTap(backend) as tap:
            await wait_for(lambda: _answers(client), timeout=30, what="the invitation service")
            middle, batch_id = await scenario(client, tenant)
            members_changed = middle
            await forged_delivery_report(client, tap)
            await wait_for(
                lambda: any(e.event_type == "MassInviteCompleted" for e in tap.envelopes),
                what="the events",
            )
            await accept(client, tenant, sink)
            if has("services.notifier.__main__"):
                await read_side(console, client, tenant, batch_id, lambda: sink.messages, ADMIN)
                await members_and_mail(
                    client, tenant, sink.messages, tap, console=console, show=show, command=command
                )
                members_changed = datetime.now(UTC)
            if has("services.expiry.__main__"):
                console.rule("Waiting for the contractor's reminder and expiry (live)")
                await wait_for(
                    lambda: tap.of_type("ContractorExpired"),
                    timeout=40,
                    interval=0.2,
                    what="ContractorExpired",
                )
                if libfaketime() is not None:
                    await eight_days_later(services, envs, log_dir, tap)
                else:
                    console.print("(faketime is not installed: skipping 'eight days later')")
            await settled(sink)
            print_events(
                [
                    e
                    for e in tap.envelopes
                    if e.tenant_id == tenant
                    or e.data.get("email") == "bob@partner.example"
                    or e.data.get("email") == "josé@bücher.example"
                ]
            )
        print_emails(sink.messages)
        audit(database_url, tenant, middle, members_changed)
    finally:
        for service in services:
            service.stop()
        controller.stop()


def start_services(envs: dict[str, dict[str, str]], log_dir: Path) -> list[ServiceProcess]:
    names = ["invitation"] + [n for n in ("notifier", "expiry") if has(f"services.{n}.__main__")]
    return [ServiceProcess(name, envs[name], log_dir).start() for name in names]


async def forged_delivery_report(client: CommandClient, tap: EventTap) -> None:
    """The backend forges the notifier's report for alice's password: it would destroy
    the sealed copy, and her invitation email would never go out."""
    console.rule("A backend forging the notifier's delivery report")
    issued = await wait_for(
        lambda: [
            e
            for e in tap.of_type("TempPasswordIssued")
            if e.data.get("email") == "alice@acme.example"
        ],
        what="alice's temporary password",
    )
    show(
        "backend: record_temp_password_delivered for alice, claiming service:notifier",
        await client.send(
            "record_temp_password_delivered",
            command(
                actor="service:notifier",
                email="alice@acme.example",
                temp_password_id=issued[0].data["temp_password_id"],
            ),
        ),
    )


def libfaketime() -> str | None:
    """Debian's libfaketime (package faketime), preloaded into a service to shift its clock.

    Preloaded directly rather than through the `faketime` wrapper, which runs the service
    as its child: a SIGTERM to the wrapper would leave the service running.
    """
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


async def accept(client: CommandClient, tenant: str, sink: Sink) -> None:
    """Alice follows the link in her email, and the login front end reports her password."""
    if not has("services.notifier.__main__"):
        return
    console.rule("Alice accepts, with the link from her email")

    def token() -> str | None:
        for message in sink.messages:
            if "alice@acme.example" in str(message["To"]):
                body = message.get_body(("plain",))
                found = re.search(r"[?&]token=([^\s&]+)", body.get_content() if body else "")
                if found:
                    return unquote(found.group(1))
        return None

    link_token = await wait_for(token, what="alice's invitation email")
    alice = "alice@acme.example"
    show(
        "alice accepts her invitation (the token from her email's link)",
        await client.send(
            "accept_invitation", command(tenant, actor=alice, email=alice, token=link_token)
        ),
    )
    show(
        "the login front end: alice replaced her temporary password",
        await client.send("record_password_changed", command(actor="login-frontend", email=alice)),
    )


async def eight_days_later(
    services: list[ServiceProcess], envs: dict[str, dict[str, str]], log_dir: Path, tap: EventTap
) -> None:
    """Restart the services under faketime, eight days on: what time does on its own.

    The temporary passwords nobody used and the links nobody followed (7 days by
    default) are overdue; the restarted expiry service rebuilds its schedule from the
    store, finds them and fires; the notifier tells the administrators.
    """
    console.rule("Eight days later (faketime): the services restart and catch up")
    for service in services:
        service.stop()
    later = {
        name: {
            **env,
            "LD_PRELOAD": str(libfaketime()),
            "FAKETIME": "+8d",
            # Timeouts and sleeps keep real durations; only the calendar moves.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        for name, env in envs.items()
    }
    services[:] = start_services(later, log_dir)
    await wait_for(
        lambda: any(
            e.event_type == "TempPasswordExpired" and e.data.get("email") == "eve@acme.example"
            for e in tap.envelopes
        ),
        timeout=60,
        interval=0.2,
        what="eve's unused temporary password to expire",
    )


async def settled(sink: Sink, quiet: float = 1.5) -> None:
    """Until no email has arrived for `quiet` seconds (the last ones are on their way)."""
    seen = -1
    while seen != len(sink.messages):
        seen = len(sink.messages)
        await asyncio.sleep(quiet)


async def _answers(client: CommandClient) -> bool:
    try:
        await client.send("register_account", command(email="probe@acme.example"), within=1)
    except TimeoutError:
        return False
    return True


async def scenario(client: CommandClient, tenant: str) -> tuple[datetime, str | None]:
    console.rule(f"Commands for tenant {tenant}")
    show(
        "register bob's existing account",
        await client.send("register_account", command(email="Bob@Partner.example")),
    )
    show(
        "configure: notify security@, remind contractors 5 s before the end",
        await client.send(
            "configure_tenant",
            command(
                tenant,
                admin_notification_emails=["security@acme.example"],
                expiry_reminders=["PT5S"],
            ),
        ),
    )
    show(
        "invite alice as administrator (new account: automatic temporary password)",
        await client.send(
            "invite_user",
            command(tenant, email="alice@acme.example", role="administrator", locale="en"),
        ),
    )
    show(
        "invite bob (existing account: linked, no password)",
        await client.send(
            "invite_user", command(tenant, email=" BOB@partner.example ", role="user")
        ),
    )
    show(
        "invite chloé, manual temporary password, in French",
        await client.send(
            "invite_user",
            command(
                tenant,
                email="chloe@acme.example",
                role="user",
                temp_password_delivery="manual",
                locale="fr",
            ),
        ),
    )
    ends = datetime.now(UTC) + timedelta(seconds=12)
    show(
        "invite dave as contractor (contractors are disabled)",
        await client.send(
            "invite_user",
            command(
                tenant,
                email="dave@contractor.example",
                role="contractor",
                access_expires_at=ends.isoformat(),
            ),
        ),
    )
    show(
        "enable contractors",
        await client.send("configure_tenant", command(tenant, contractor_enabled=True)),
    )
    middle = datetime.now(UTC)
    dave = command(
        tenant,
        email="dave@contractor.example",
        role="contractor",
        access_expires_at=ends.isoformat(),
    )
    show("invite dave as contractor, access ends in 12 s", await client.send("invite_user", dave))
    show(
        "the same command again (same command_id): the first reply, nothing new",
        await client.send("invite_user", dave),
    )
    show(
        "invite alice again: refused, with the pending invitation",
        await client.send("invite_user", command(tenant, email="alice@acme.example", role="user")),
    )
    batch = show(
        "mass invite: 4 rows, one bad email and one duplicate",
        await client.send(
            "mass_invite",
            command(
                tenant,
                invitees=[
                    {"email": "eve@acme.example", "role": "user"},
                    {"email": "not-an-email", "role": "user"},
                    {"email": "frank@acme.example", "role": "administrator"},
                    {"email": "EVE@acme.example", "role": "user"},
                ],
            ),
        ),
    )
    if batch.result:
        for row in batch.result["rows"]:
            console.print(
                f"   row {row['index']}: {row['email']:<22} {row['status']:<8} "
                f"{row.get('outcome') or row.get('error', {}).get('code')}"
            )
    return middle, None if batch.result is None else str(batch.result["batch_id"])


def print_events(envelopes: list[Any]) -> None:
    console.rule("Events seen on invitations.events")
    table = Table("pos", "event", "actor", "sender", "data")
    for e in sorted(envelopes, key=lambda e: e.position):
        data = {k: v for k, v in e.data.items() if k not in ("settings",) and v is not None}
        text = ", ".join(f"{k}={v}" for k, v in data.items())
        # Cut here, not by the table: a column that may not wrap takes the others' width.
        text = text if len(text) <= 70 else text[:69] + "…"
        table.add_row(
            str(e.position),
            e.event_type,
            escape(e.actor or ""),
            escape(e.sender or ""),
            escape(text),
        )
    console.print(table)


def print_emails(messages: list[EmailMessage]) -> None:
    console.rule(f"Emails handed to the SMTP server ({len(messages)})")
    if not messages:
        console.print("(the notifier is not part of this build yet)")
    for message in messages:
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        # The walkthrough is a demo: mask the temporary passwords it prints anyway.
        text = re.sub(r"(?im)^(.*(password|mot de passe).*:\s*)(\S{16,})$", r"\1••••••••", text)
        console.print(
            f"[bold]To:[/] {escape(str(message['To']))}  "
            f"[bold]Subject:[/] {escape(str(message['Subject']))}"
        )
        console.print("   " + "\n   ".join(text.strip().splitlines()[:6]), markup=False)


def audit(database_url: str, tenant: str, middle: datetime, members_changed: datetime) -> None:
    cli = shutil.which("invitations", path=str(Path(sys.executable).parent))
    if cli is None:
        return
    # COLUMNS: the CLI's tables are as wide as the walkthrough's (not a terminal's 80).
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRETS_KEY": TEST_SECRETS_KEY,
        "COLUMNS": str(console.width),
    }
    console.rule("Operator: invitations audit --tenant")
    subprocess.run([cli, "audit", "--tenant", tenant, "--format", "table"], env=env, check=False)
    console.rule(f"Operator: invitations state --as-of {middle.isoformat()}")
    subprocess.run(
        [cli, "state", "--tenant", tenant, "--as-of", middle.isoformat(), "--format", "table"],
        env=env,
        check=False,
    )
    after = members_changed.isoformat()
    console.rule(f"Operator: invitations state --as-of {after} (removed members, roles held)")
    subprocess.run(
        [cli, "state", "--tenant", tenant, "--as-of", after, "--format", "table", "--wide"],
        env=env,
        check=False,
    )
    console.rule("Operator: invitations verify")
    subprocess.run([cli, "verify"], env=env, check=False)


def main() -> None:
    log_dir = Path("var/walkthrough")
    log_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(temporary_schema())
        amqp_url = stack.enter_context(temporary_vhost())
        # A broker user per service and one for the backend, on this vhost only.
        users = {
            name: stack.enter_context(temporary_broker_user(amqp_url, f"walk-{name}"))
            for name in ("invitation", "notifier", "expiry", "backend")
        }
        stack.enter_context(contextlib.suppress(KeyboardInterrupt))
        asyncio.run(walk(database_url, users, log_dir))


if __name__ == "__main__":
    main()
