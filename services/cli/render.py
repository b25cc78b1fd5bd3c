"""How the commands print: rich tables for people, JSON lines or CSV for tools."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from services.cli.report import MassInviteReport
from services.cli.state import TenantState
from shared.contract import EventEnvelope
from shared.csv_cells import spreadsheet_safe

# The data fields worth a column in the audit table, in this order.
_SUBJECT_FIELDS = ("email", "invitation_id", "batch_id", "account_id")


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S%z")


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


def audit_table(console: Console, envelopes: Iterable[EventEnvelope]) -> int:
    table = Table(show_lines=False, header_style="bold")
    for name in ("pos", "occurred at (UTC)", "tenant", "event", "actor", "subject", "details"):
        table.add_column(name, overflow="fold")
    count = 0
    for e in envelopes:
        subject = next((_short(e.data[f]) for f in _SUBJECT_FIELDS if e.data.get(f)), "")
        table.add_row(
            str(e.position),
            _time(e.occurred_at),
            e.tenant_id or "-",
            e.event_type,
            e.actor or "-",
            subject,
            _details(e),
        )
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


def state_tables(console: Console, as_of: datetime, tenants: dict[str, TenantState]) -> None:
    console.print(f"State as of {as_of.isoformat()}")
    if not tenants:
        console.print("no tenant had any invitation or member then")
    for tenant_id in sorted(tenants):
        state = tenants[tenant_id]
        members = Table(title=f"{tenant_id}: members", header_style="bold")
        for name in ("email", "role", "status", "member since", "access until", "invitation"):
            members.add_column(name, overflow="fold")
        for m in sorted(state.members.values(), key=lambda m: m.email):
            members.add_row(
                m.email,
                m.role,
                m.status,
                _time(m.member_since),
                _time(m.access_expires_at),
                _short(m.invitation_id),
            )
        console.print(members)
        pending = Table(title=f"{tenant_id}: pending invitations", header_style="bold")
        for name in (
            "email",
            "role",
            "invited by",
            "invited at",
            "link expires",
            "link valid",
            "access until",
            "invitation",
        ):
            pending.add_column(name, overflow="fold")
        for p in sorted(state.pending.values(), key=lambda p: (p.email, p.invited_at)):
            pending.add_row(
                p.email,
                p.role,
                p.invited_by,
                _time(p.invited_at),
                _time(p.link_expires_at),
                "yes" if p.link_valid else "no (expired)",
                _time(p.access_expires_at),
                _short(p.invitation_id),
            )
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


def report_table(console: Console, report: MassInviteReport) -> None:
    console.print(
        f"Mass invite {report.batch_id} in {report.tenant_id} by {report.actor} at "
        f"{report.completed_at.isoformat()}: {report.invited} invited, {report.refused} refused"
    )
    table = Table(header_style="bold")
    for name in _REPORT_COLUMNS:
        table.add_column(name, overflow="fold")
    for row in report.rows:
        values = row.to_json()
        table.add_row(
            *[
                _short(values[c])
                if c == "invitation_id"
                else ("" if values[c] is None else str(values[c]))
                for c in _REPORT_COLUMNS
            ]
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
        # Opened in a spreadsheet, a cell must never run as a formula (an email can).
        writer.writerow({k: spreadsheet_safe(v) for k, v in values.items()})


def report_json(out: IO[str], report: MassInviteReport) -> None:
    out.write(json.dumps(report.to_json(), indent=2))
    out.write("\n")
