"""How the commands print: rich tables for people, JSON lines or CSV for tools."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.cli.report import MassInviteReport
from services.cli.state import TenantState
from shared.contract import EventEnvelope
from shared.csv_cells import spreadsheet_safe

# The data fields worth a column in the audit table, in this order.
_SUBJECT_FIELDS = ("email", "invitation_id", "batch_id", "account_id")


# Control characters (escape sequences included) in stored text: shown, never obeyed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def cell(value: Any) -> str:
    """Stored text as a table cell: rich markup escaped, control characters made visible.

    Anything in the store came from outside (an actor, a display name, a reason): it must
    not be read as markup ("[/]" raised MarkupError) nor reach the terminal as escape codes.
    """
    text = "" if value is None else str(value)
    return escape(_CONTROL.sub(lambda m: repr(m.group())[1:-1], text))


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text[:8] if len(text) == 36 and text.count("-") == 4 else text


def _details(envelope: EventEnvelope) -> str:
    skip = {"email", "invitation_id", "account_id", "temp_password_id"}
    parts = []
    for key, value in envelope.data.items():
        if key in skip or value is None:
            continue
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        parts.append(f"{key}={_short(value)}")
    return " ".join(parts)


def audit_table(console: Console, envelopes: Iterable[EventEnvelope], *, wide: bool = False) -> int:
    """At 80 columns: position, time, event, actor, sender, subject; `wide` adds tenant and
    details."""
    table = Table(show_lines=False, header_style="bold")
    columns = ["pos", "occurred at (UTC)", "event", "actor", "sender", "subject"]
    if wide:
        columns[2:2] = ["tenant"]
        columns.append("details")
    for name in columns:
        fixed = name in ("pos", "occurred at (UTC)")
        table.add_column(name, overflow="fold", no_wrap=fixed, min_width=None if fixed else 10)
    count = 0
    for e in envelopes:
        subject = next((_short(e.data[f]) for f in _SUBJECT_FIELDS if e.data.get(f)), "")
        values = {
            "pos": str(e.position),
            "occurred at (UTC)": _time(e.occurred_at),
            "tenant": e.tenant_id or "-",
            "event": e.event_type,
            "actor": e.actor or "-",
            "sender": e.sender or "-",
            "subject": subject,
            "details": _details(e),
        }
        table.add_row(*(cell(values[c]) for c in columns))
        count += 1
    console.print(table)
    console.print(f"{count} event(s)")
    return count


def audit_json(out: IO[str], envelopes: Iterable[EventEnvelope]) -> int:
    """One envelope per line, exactly the JSON body the relay publishes."""
    count = 0
    for envelope in envelopes:
        out.write(envelope.model_dump_json())
        out.write("\n")
        count += 1
    out.flush()
    return count


def state_json(out: IO[str], as_of: datetime, tenants: dict[str, TenantState]) -> None:
    document = {
        "as_of": as_of.isoformat(),
        "tenants": [tenants[t].to_json() for t in sorted(tenants)],
    }
    out.write(json.dumps(document, indent=2))
    out.write("\n")


def state_tables(
    console: Console, as_of: datetime, tenants: dict[str, TenantState], *, wide: bool = False
) -> None:
    """At 80 columns the essentials; `wide` adds since when, by whom and the ids."""
    console.print(f"State as of {as_of.isoformat()}")
    if not tenants:
        console.print("no tenant had any invitation or member then")
    for tenant_id in sorted(tenants):
        state = tenants[tenant_id]
        member_columns = ["email", "role", "status", "access until"]
        if wide:
            member_columns += ["member since", "earlier roles", "invitation"]
        members = Table(title=f"{cell(tenant_id)}: members", header_style="bold")
        for name in member_columns:
            members.add_column(name, overflow="fold", min_width=8)
        for m in sorted(state.members.values(), key=lambda m: m.email):
            member = {
                "email": m.email,
                "role": m.role,
                "status": m.status if m.removed_at is None else f"removed {_time(m.removed_at)}",
                "access until": _time(m.access_expires_at),
                "member since": _time(m.member_since),
                "earlier roles": ", ".join(f"{h.role} from {_time(h.since)}" for h in m.roles[:-1]),
                "invitation": _short(m.invitation_id),
            }
            members.add_row(*(cell(member[c]) for c in member_columns))
        console.print(members)
        pending_columns = ["email", "role", "link expires", "access until"]
        if wide:
            pending_columns += ["invited by", "invited at", "link valid", "invitation"]
        pending = Table(title=f"{cell(tenant_id)}: pending invitations", header_style="bold")
        for name in pending_columns:
            pending.add_column(name, overflow="fold", min_width=8)
        for p in sorted(state.pending.values(), key=lambda p: (p.email, p.invited_at)):
            invitation = {
                "email": p.email,
                "role": p.role,
                "link expires": _time(p.link_expires_at) + ("" if p.link_valid else " (expired)"),
                "access until": _time(p.access_expires_at),
                "invited by": p.invited_by,
                "invited at": _time(p.invited_at),
                "link valid": "yes" if p.link_valid else "no (expired)",
                "invitation": _short(p.invitation_id),
            }
            pending.add_row(*(cell(invitation[c]) for c in pending_columns))
        console.print(pending)


_REPORT_COLUMNS = (
    "index",
    "email",
    "status",
    "role",
    "outcome",
    "invitation_state",
    "delivery_mode",
    "temp_password",
    "delivered_at",
    "delivered_by",
    "invitation_email",
    "invitation_email_sent_at",
    "invitation_id",
    "error",
)


# What fits 80 columns; `--wide` shows every column.
_REPORT_NARROW = ("index", "email", "status", "invitation_state", "temp_password", "error")


def report_table(console: Console, report: MassInviteReport, *, wide: bool = False) -> None:
    console.print(
        f"Mass invite {report.batch_id} in {cell(report.tenant_id)} by {cell(report.actor)} at "
        f"{report.completed_at.isoformat()}: {report.invited} invited, {report.refused} refused"
    )
    columns = _REPORT_COLUMNS if wide else _REPORT_NARROW
    table = Table(header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold", min_width=None if name == "index" else 8)
    for row in report.rows:
        values = row.to_json()
        table.add_row(
            *[cell(_short(values[c]) if c == "invitation_id" else values[c]) for c in columns]
        )
    console.print(table)


def report_csv(out: IO[str], report: MassInviteReport) -> None:
    writer = csv.DictWriter(
        out,
        fieldnames=["batch_id", *_REPORT_COLUMNS, "temp_password_id"],
        extrasaction="ignore",
        lineterminator="\n",
    )
    writer.writeheader()
    for row in report.rows:
        values = {"batch_id": report.batch_id, **row.to_json()}
        writer.writerow({name: csv_cell(value) for name, value in values.items()})


def report_json(out: IO[str], report: MassInviteReport) -> None:
    out.write(json.dumps(report.to_json(), indent=2))
    out.write("\n")


def progress(description: str) -> Progress:
    """A progress bar on stderr, shown only on a terminal (scripts read stdout)."""
    console = Console(stderr=True, soft_wrap=True)
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
