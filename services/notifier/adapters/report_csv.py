"""The mass-invite report as a CSV attachment of the "mass invite finished" email (rule 25).

Read at send time from the invitation store's read model (the rows `get_mass_invite_report`
answers, all of them): per invitee the outcome, the refusal's reason, and the state of
the invitation, of its email and of its temporary password. There is no password in it:
the read model never holds one. Every cell is formula-escaped (shared/csv_cells.py),
since an address or a refusal message is shown as is by a spreadsheet.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from uuid import UUID

from services.invitation.eventstore import ReadModelTables
from shared.csv_cells import spreadsheet_safe

COLUMNS = (
    "index",
    "email",
    "status",
    "role",
    "invitation_id",
    "outcome",
    "temp_password_delivery",
    "error_code",
    "error_message",
    "invitation_status",
    "invitation_email",
    "temp_password",
)
_MAX_ROWS = 10_000  # a mass invite's own limit (rule 9)


@dataclass(frozen=True)
class Attachment:
    file_name: str
    content_type: str
    content: bytes


class MassInviteReports:
    def __init__(self, tables: ReadModelTables) -> None:
        self._tables = tables

    def attachment(self, batch_id: str) -> Attachment | None:
        """The batch's report as CSV, or None when the read model does not know it."""
        batch = UUID(batch_id)
        if self._tables.batch(batch) is None:
            return None
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for line in self._tables.report_lines(batch, -1, _MAX_ROWS):
            row, invitation = line.row, line.invitation
            error = row.get("error") or {}
            values = (
                row["index"],
                row["email"],
                row["status"],
                row.get("role"),
                row.get("invitation_id"),
                row.get("outcome"),
                row.get("temp_password_delivery"),
                error.get("code"),
                error.get("message"),
                None if invitation is None else invitation.status,
                None if invitation is None else invitation.invitation_email,
                None if invitation is None else invitation.temp_password,
            )
            writer.writerow([spreadsheet_safe(v) for v in values])
        # With a byte-order mark: spreadsheets then read the UTF-8 (accented names) right.
        return Attachment(
            f"mass-invite-{batch}.csv", "text/csv", out.getvalue().encode("utf-8-sig")
        )
