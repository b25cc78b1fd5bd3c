"""The commands that write temporary-password sheets (`report --temp-passwords`,
`temp-password`) and the report itself.

Each manual password is retrieved with `retrieve_temp_password` over the broker, sealed
to a key pair made for the run, like any backend would: the CLI needs no SECRETS_KEY for
it, and the service records who retrieved what (sheets.py: the order of the steps).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.markup import escape

from services.cli import render
from services.cli.adapters.commands import Retrieved, SealedRetrieval
from services.cli.adapters.pdf import reserve_sheet, write_sheet
from services.cli.adapters.sent_emails import invitation_emails
from services.cli.bootstrap import NotFoundError, load_retrieval_settings
from services.cli.options import ReportFormat, WideOption, default_actor
from services.cli.output import operator_or_exit, reported, stderr, stdout
from services.cli.report import add_invitation_emails, build_report, wanted_sheets
from services.cli.sheets import Retrieval, WantedSheet, sheet_file_name
from services.cli.sheets import write_sheet as one_sheet
from shared.contract import ReplyError


def report(
    batch_id: Annotated[UUID, typer.Argument(help="The mass invite's batch_id.")],
    output: Annotated[
        ReportFormat | None, typer.Option("--format", help="table, csv or json.")
    ] = None,
    temp_passwords: Annotated[
        Path | None,
        typer.Option(
            "--temp-passwords",
            metavar="DIR",
            file_okay=False,
            help="Write one PDF per manual temporary password not yet retrieved "
            "(each can be retrieved once: retrieve_temp_password, sealed to this run's key).",
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who retrieves the passwords [default: operator:$USER].")
    ] = None,
    wide: WideOption = False,
) -> None:
    """The mass-invite report: per invitee the outcome, the invitation's state, the delivery."""
    with operator_or_exit() as operator:
        found = build_report(operator.store, operator.audit, batch_id)
        if found is None:
            raise NotFoundError(f"no mass invite with batch id {batch_id}")
        invitation_ids = [r.invitation_id for r in found.rows if r.invitation_id]
        add_invitation_emails(found, invitation_emails(operator.store.recorder, invitation_ids))
        fmt = output or (ReportFormat.table if sys.stdout.isatty() else ReportFormat.json)
        if temp_passwords is None:
            if fmt is ReportFormat.json:
                render.report_json(sys.stdout, found)
            elif fmt is ReportFormat.csv:
                render.report_csv(sys.stdout, found)
            else:
                render.report_table(Console(), found, wide=wide)
            return
        wanted, refused = wanted_sheets(found)
        amqp_url = operator.settings.require_amqp_url() if wanted else ""
    if not wanted:
        _report(refused)
        return
    with _connected(amqp_url, actor) as retrieval:
        results = refused + _write_sheets(retrieval, wanted, temp_passwords)
    _report(results)


def temp_password(
    tenant: Annotated[str, typer.Option(help="The invitation's tenant.")],
    pdf: Annotated[
        Path,
        typer.Option("--pdf", metavar="DIR", file_okay=False, help="Where to write the sheet."),
    ],
    invitation: Annotated[UUID | None, typer.Option(help="The invitation's id.")] = None,
    email: Annotated[str | None, typer.Option(help="Or the invitee's email.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who retrieves the password [default: operator:$USER].")
    ] = None,
) -> None:
    """Retrieve one manual temporary password, once, as a PDF sheet to forward."""
    if (invitation is None) == (email is None):
        stderr().print("[red]temp-password:[/red] give exactly one of --invitation or --email")
        raise typer.Exit(2)
    with reported():
        settings = load_retrieval_settings()
    with _connected(settings.amqp_url, actor) as retrieval:
        found = retrieval.invitation(tenant, invitation_id=invitation, email=email)
        if not isinstance(found, dict):
            _report([Retrieval(email or str(invitation), None, found.code, found.message)])
            return
        wanted = WantedSheet(
            tenant_id=tenant,
            invitation_id=UUID(found["invitation_id"]),
            email=found["email"],
            display_name=found.get("display_name"),
            locale=found.get("locale"),
            file_name=sheet_file_name(found["email"]),
        )
        results = _write_sheets(retrieval, [wanted], pdf)
    _report(results)


@contextmanager
def _connected(amqp_url: str, actor: str | None) -> Iterator[SealedRetrieval]:
    try:
        retrieval = SealedRetrieval(amqp_url, actor or default_actor()).__enter__()
    except (OSError, ConnectionError) as error:
        stderr().print(f"[red]broker:[/red] cannot connect: {escape(str(error))}")
        raise typer.Exit(2) from None
    try:
        yield retrieval
    finally:
        retrieval.__exit__(None, None, None)


def _write_sheets(
    retrieval: SealedRetrieval, wanted: list[WantedSheet], directory: Path
) -> list[Retrieval]:
    """Each wanted sheet written (its password retrieved once, sealed to this run's key)."""

    def retrieve(sheet: WantedSheet) -> Retrieved | ReplyError:
        return retrieval.retrieve(sheet.tenant_id, invitation_id=sheet.invitation_id)

    return [one_sheet(sheet, directory, retrieve, reserve_sheet, write_sheet) for sheet in wanted]


def _report(results: list[Retrieval]) -> None:
    console, errors = stdout(), stderr()
    for result in results:
        if result.ok:
            console.print(f"wrote {escape(str(result.path))}")
        else:
            errors.print(f"[red]{result.code}[/red]: {escape(result.message or '')}")
    written = sum(1 for r in results if r.ok)
    console.print(
        f"{written} temporary password sheet(s) written, {len(results) - written} refused"
    )
    if written < len(results):
        raise typer.Exit(1)
