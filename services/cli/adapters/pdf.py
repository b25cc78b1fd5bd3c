"""One PDF per manual temporary password, for the administrator to forward (rule 5).

In the invitee's language (English or French, as their invitation), with the end of
validity written as a reader of that language writes a date (shared/locales.py). The
file is created (readable by its owner only, never over an existing one) before the
password is retrieved, and written after: nothing about the file can fail once the only
copy of the password is in hand, but the rendering.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from fpdf import FPDF

from services.cli.sheets import TempPasswordSheet
from shared.locales import NBSP, format_moment

_TEXT = {
    "en": {
        "title": "Your temporary password",
        "organisation": "Organisation",
        "name": "Name",
        "email": "Email",
        "valid_until": "Valid until",
        "password": "Temporary password:",
        "advice": "Sign in with this temporary password and choose your own password at "
        "your first sign-in. This sheet is issued once: keep it private and destroy it "
        "after use.",
    },
    "fr": {
        "title": "Votre mot de passe temporaire",
        "organisation": "Organisation",
        "name": "Nom",
        "email": "Adresse e-mail",
        "valid_until": "Valable jusqu'au",
        "password": f"Mot de passe temporaire{NBSP}:",
        "advice": (
            "Connectez-vous avec ce mot de passe temporaire : lors de votre première "
            "connexion, il vous sera demandé de le remplacer par un mot de passe de votre "
            "choix. Cette fiche n'est délivrée qu'une seule fois : gardez-la pour vous et "
            "détruisez-la après usage."
        ).replace(" :", f"{NBSP}:"),
    },
}


def _latin1(text: str) -> str:
    # The PDF core fonts are Latin-1; a name outside it must not stop the sheet.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_temp_password_pdf(sheet: TempPasswordSheet) -> bytes:
    # "fr-CA" reads French: the language, not the region, chooses the words.
    language = (sheet.locale or "en").split("-")[0].lower()
    locale = language if language in _TEXT else "en"
    text = _TEXT[locale]
    colon = f"{NBSP}:" if locale == "fr" else ":"
    pdf = FPDF()
    pdf.set_lang(locale)
    pdf.set_title(_latin1(text["title"]))
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(text=_latin1(text["title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    valid_until = "-" if sheet.valid_until is None else format_moment(sheet.valid_until, locale)
    lines = [(text["organisation"], sheet.tenant_id or "-")]
    if sheet.display_name:
        lines.append((text["name"], sheet.display_name))
    lines += [(text["email"], sheet.email), (text["valid_until"], valid_until)]
    for label, value in lines:
        pdf.cell(text=_latin1(f"{label}{colon} {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(text=_latin1(text["password"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", style="B", size=14)
    pdf.cell(text=sheet.temp_password, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(w=0, text=_latin1(text["advice"]))
    return bytes(pdf.output())


def reserve_sheet(path: Path) -> BinaryIO:
    """A new file readable by its owner only; FileExistsError rather than overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def write_sheet(out: BinaryIO, path: Path, sheet: TempPasswordSheet) -> None:
    """Render into the reserved file; never leave half a sheet behind."""
    try:
        with out:
            out.write(render_temp_password_pdf(sheet))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
