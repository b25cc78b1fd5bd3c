"""CSV cells that a spreadsheet shows as text, never runs as a formula.

A cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
spreadsheets skip before them) is a formula to Excel, LibreOffice and Google Sheets: an
invitee's display name or email could then run in the administrator's spreadsheet (OWASP
"CSV injection"). Such a cell gets a leading apostrophe, which spreadsheets hide.
"""

from __future__ import annotations

__all__ = ["spreadsheet_safe"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_TRIGGERS) else text
