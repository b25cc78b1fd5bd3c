"""One PDF per manual temporary password, for the administrator to forward (rule 5)."""

from __future__ import annotations

import os
from pathlib import Path

from fpdf import FPDF

from services.cli.report import TempPasswordSheet


def _latin1(text: str) -> str:
    # The PDF core fonts are Latin-1; a name outside it must not stop the sheet.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_temp_password_pdf(sheet: TempPasswordSheet) -> bytes:
    pdf = FPDF()
    pdf.set_title("Temporary password")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(text="Your temporary password", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    for label, value in (
        ("Organisation", sheet.tenant_id or "-"),
        ("Email", sheet.email),
        ("Valid until", sheet.valid_until or "-"),
    ):
        pdf.cell(text=_latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(text="Temporary password:", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", style="B", size=14)
    pdf.cell(text=sheet.temp_password, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(
        w=0,
        text="Sign in with this temporary password and choose your own password at your "
        "first sign-in. This sheet is issued once: keep it private and destroy it after use.",
    )
    return bytes(pdf.output())


def write_temp_password_pdf(path: Path, sheet: TempPasswordSheet) -> None:
    """A new file readable by its owner only; FileExistsError rather than overwrite one."""
    data = render_temp_password_pdf(sheet)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave half a sheet behind
        raise
