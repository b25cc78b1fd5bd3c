"""`invitations`: the operator's console script. Thin: parse options, call, print.

Configured by the services' environment: DATABASE_URL (required), AMQP_URL (required to
publish or to retrieve a password), SECRETS_KEY or DEVELOPMENT_MODE=true for `verify`
only (manual passwords come sealed to a key pair of the run's own). It opens the event
store read-only and never creates it. Exit codes: 0 done; 1 a finding (a tampered history, a refused
retrieval); 2 a usage or configuration problem; 3 nothing matches what was named (an
unknown tenant, batch, event type or invitation); 4 the database cannot be used
(not reachable, authentication failed, no such database, no event store in it).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.markup import escape

from services.cli import render, sheet_commands
from services.cli.adapters.publisher import republish as publish_again
from services.cli.bootstrap import NotFoundError, Operator, checkpoint_secret, load_settings
from services.cli.history import History, HistoryFilter
from services.cli.options import (
    Consumer,
    Format,
    InstantOption,
    WideOption,
    default_format,
    optional_instant,
    parse_instant,
)
from services.cli.output import operator_or_exit, reported, stderr, stdout
from services.cli.replay import ConsumerUnavailableError, load_rebuild
from services.cli.state import state_at
from services.invitation.eventstore import (
    PUBLISHED_EVENT_TYPES,
    Checkpoint,
    Problem,
    checkpoint_key,
    sign_checkpoint,
    verify,
)

app = typer.Typer(
    name="invitations",
    help="Operate the invitation system: audit its history, check it, repair consumers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _check_named(
    operator: Operator,
    *,
    tenant: str | None = None,
    event_types: Iterable[str] = (),
) -> None:
    """A name that matches nothing is the operator's typo until shown otherwise: say so,
    rather than print an empty history that reads as "nothing happened"."""
    unknown = sorted(set(event_types) - PUBLISHED_EVENT_TYPES)
    if unknown:
        raise NotFoundError(
            f"unknown event type {', '.join(unknown)}; known: "
            f"{', '.join(sorted(PUBLISHED_EVENT_TYPES))}"
        )
    if tenant is not None and not operator.audit.streams(tenant_id=tenant):
        raise NotFoundError(f"no tenant {tenant!r} in this event store")


# -- audit ---------------------------------------------------------------------------------


@app.command()
def audit(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's events.")] = None,
    email: Annotated[str | None, typer.Option(help="Only this person's events.")] = None,
    invitation: Annotated[UUID | None, typer.Option(help="Only this invitation's events.")] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only this event type (repeatable).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only events caused by this actor.")] = None,
    sender: Annotated[
        str | None, typer.Option(help="Only events of commands this broker user sent.")
    ] = None,
    since: InstantOption = None,
    until: InstantOption = None,
    output: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="table (default on a terminal) or json (one envelope "
            "per line, as published on the broker).",
        ),
    ] = None,
    wide: WideOption = False,
) -> None:
    """The history in store order: who did what, when, to whom."""
    query = HistoryFilter(
        tenant_id=tenant,
        email=email,
        invitation_id=invitation,
        event_types=frozenset(event_type or ()),
        actor=actor,
        sender=sender,
        since=optional_instant(since),
        until=optional_instant(until),
    )
    with operator_or_exit() as operator:
        _check_named(operator, tenant=tenant, event_types=query.event_types)
        envelopes = History(operator.store, operator.audit).envelopes(query)
        if (output or default_format()) is Format.json:
            render.audit_json(sys.stdout, envelopes)
        else:
            count = render.audit_table(Console(), envelopes, wide=wide)
            if count == 0 and invitation is not None:
                raise NotFoundError(f"no invitation {invitation} in this event store")


# -- state ---------------------------------------------------------------------------------


@app.command()
def state(
    as_of: Annotated[
        str, typer.Option("--as-of", metavar="TIME", help="The instant (ISO 8601, or now).")
    ] = "now",
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    output: Annotated[Format | None, typer.Option("--format", help="table or json.")] = None,
    wide: WideOption = False,
) -> None:
    """Who had access at an instant (role, status, contractors' end dates) and what was pending."""
    instant = parse_instant(as_of)
    with operator_or_exit() as operator:
        _check_named(operator, tenant=tenant)
        history = History(operator.store, operator.audit)
        envelopes = history.envelopes(HistoryFilter(tenant_id=tenant, until=instant))
        tenants = state_at(envelopes, instant, tenant)
        if (output or default_format()) is Format.json:
            render.state_json(sys.stdout, instant, tenants)
        else:
            render.state_tables(Console(), instant, tenants, wide=wide)


# -- verify --------------------------------------------------------------------------------


@app.command(name="verify")
def verify_history(
    checkpoint: Annotated[
        bool, typer.Option(help="Sign a checkpoint at the head when the history is intact.")
    ] = True,
    expect_checkpoint: Annotated[
        int | None,
        typer.Option(
            metavar="SEQ",
            help="Fail unless checkpoint SEQ (as recorded outside "
            "the database) is still there: catches truncation back to an older one.",
        ),
    ] = None,
) -> None:
    """Prove the stored history was not altered: exit 0 if intact, 1 with positions if not."""
    console = stdout()
    with reported():  # before the store: a missing key is the first thing to say
        key = checkpoint_key(checkpoint_secret(load_settings()))
    with operator_or_exit() as operator:
        with render.progress("verifying") as bar:
            task = bar.add_task("verify", total=None)
            result = verify(
                operator.audit,
                key,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
        last = result.last_checkpoint
        if expect_checkpoint is not None and (last is None or last.seq < expect_checkpoint):
            result.problems.append(_missing_checkpoint(expect_checkpoint, last))
        if not result.intact:
            console.print(
                f"[red]TAMPERED[/red]: {len(result.problems)} problem(s); first bad "
                f"position {result.first_bad_position}"
            )
            for problem in sorted(result.problems, key=lambda p: p.position)[:50]:
                console.print(f"  position {problem.position}: {escape(problem.what)}")
            raise typer.Exit(1)
        console.print(
            f"intact: {result.events} events up to position {result.last_position}, "
            f"{result.checkpoints_checked} signed checkpoint(s) matched; chain head "
            f"{result.head.hex()}"
        )
        signed = sign_checkpoint(operator.audit, key, result) if checkpoint else None
        latest = signed or last
        if latest is not None:
            console.print(
                f"latest checkpoint #{latest.seq} at position {latest.position} "
                f"(record this number to detect truncation: --expect-checkpoint "
                f"{latest.seq})"
            )


def _missing_checkpoint(expected: int, last: Checkpoint | None) -> Problem:
    found, position = (last.seq, last.position) if last is not None else (0, 0)
    return Problem(
        position,
        f"checkpoint #{expected} was expected but the latest is #{found}: "
        "the history was truncated and its checkpoints removed",
    )


# -- replay --------------------------------------------------------------------------------


@app.command()
def replay(
    consumer: Annotated[Consumer, typer.Argument(help="The consumer to rebuild.")],
) -> None:
    """Rebuild a consumer's state from the event store, sending nothing again."""
    try:
        rebuild = load_rebuild(consumer.value)
    except ConsumerUnavailableError as error:
        stderr().print(f"[red]replay:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    with reported():
        settings = load_settings()
    started = datetime.now(UTC)
    with render.progress(f"replaying {consumer.value}") as bar:
        task = bar.add_task("replay", total=None)
        applied = rebuild(
            settings, lambda done, total: bar.update(task, completed=done, total=total)
        )
    seconds = max((datetime.now(UTC) - started).total_seconds(), 1e-9)
    stdout().print(
        f"{consumer.value} rebuilt from {applied} events in {seconds:.1f} s "
        f"({applied / seconds:,.0f} events/s)"
    )


# -- republish -----------------------------------------------------------------------------


@app.command(name="republish")
def republish_events(
    from_position: Annotated[
        int, typer.Option("--from-position", min=1, help="First position (inclusive).")
    ],
    to_position: Annotated[
        int | None, typer.Option("--to-position", min=1, help="Last position (inclusive).")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only this event type (repeatable).")
    ] = None,
) -> None:
    """Publish stored events again to invitations.events, with their original message ids."""
    types = frozenset(event_type or ())
    with operator_or_exit() as operator:
        amqp_url = operator.settings.require_amqp_url()
        _check_named(operator, event_types=types)
        history = History(operator.store, operator.audit)
        envelopes = (
            e
            for e in history.scan(after=from_position - 1, upto=to_position)
            if not types or e.event_type in types
        )
        with render.progress("republishing") as bar:
            task = bar.add_task("republish", total=None)
            count = asyncio.run(
                publish_again(
                    amqp_url,
                    envelopes,
                    progress=lambda e: bar.update(task, completed=e.position),
                )
            )
    stdout().print(f"republished {count} event(s) to invitations.events")


app.command()(sheet_commands.report)
app.command(name="temp-password")(sheet_commands.temp_password)


def main() -> None:
    app()
