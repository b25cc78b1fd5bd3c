"""Dates and times as people read them, in English or French, always in UTC.

Shared by what people read: the notifier's emails and the CLI's temporary-password sheets.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_day", "format_moment"]

_MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
    "fr": (
        "janvier", "février", "mars", "avril", "mai", "juin",
        "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ),
}  # fmt: skip


def _moment(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


def format_day(value: str | datetime, locale: str) -> str:
    """`7 January 2030` / `1er janvier 2030`."""
    moment = _moment(value)
    month = _MONTHS.get(locale, _MONTHS["en"])[moment.month - 1]
    day = "1er" if locale == "fr" and moment.day == 1 else str(moment.day)
    return f"{day} {month} {moment.year}"


def format_moment(value: str | datetime, locale: str) -> str:
    """`7 January 2030, 09:00 UTC` / `7 janvier 2030 à 09:00 UTC`."""
    moment = _moment(value)
    joint = " à " if locale == "fr" else ", "
    return f"{format_day(moment, locale)}{joint}{moment:%H:%M} UTC"
