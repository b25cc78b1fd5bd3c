"""Dates and durations as a reader of each supported language writes them (en, fr).

Shared by the notifier's emails and the operator CLI's password sheets (PDF), so that
both say a moment the same way. UTC throughout: the contract's times are UTC, and a
reader in another zone sees the zone named.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["NBSP", "format_day", "format_duration", "format_moment"]

# French typography: a space no line may break, inside "9 h 00" and before ":;!?".
NBSP = "\u00a0"

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
_UNITS = {
    "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes"), ("second", "seconds")),
    "fr": (("jour", "jours"), ("heure", "heures"), ("minute", "minutes"), ("seconde", "secondes")),
}


def _moment(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC)


def format_day(value: str | datetime, locale: str) -> str:
    """`7 January 2030` / `7 janvier 2030` (`1er janvier`)."""
    moment = _moment(value)
    month = _MONTHS.get(locale, _MONTHS["en"])[moment.month - 1]
    day = "1er" if locale == "fr" and moment.day == 1 else str(moment.day)
    return f"{day} {month} {moment.year}"


def format_moment(value: str | datetime, locale: str) -> str:
    """`7 January 2030, 09:00 UTC` / `7 janvier 2030 à 9 h 00 UTC`."""
    moment = _moment(value)
    if locale == "fr":
        return f"{format_day(moment, locale)} à {moment.hour}{NBSP}h{NBSP}{moment:%M} UTC"
    return f"{format_day(moment, locale)}, {moment:%H:%M} UTC"


def format_duration(seconds: float, locale: str) -> str:
    """`7 days`, `1 day 6 hours`, `90 seconds` -> the two largest non-zero units."""
    units = _UNITS.get(locale, _UNITS["en"])
    remaining = round(seconds)
    parts: list[str] = []
    for size, (one, many) in zip((86400, 3600, 60, 1), units, strict=True):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return " ".join(parts[:2]) or f"0 {units[3][1]}"
