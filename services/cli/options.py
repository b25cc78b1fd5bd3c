"""The CLI's option types: output formats, consumers, instants as operators write them."""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated

import typer

__all__ = [
    "Consumer",
    "Format",
    "InstantOption",
    "ReportFormat",
    "WideOption",
    "default_actor",
    "default_format",
    "optional_instant",
    "parse_instant",
]


class Format(StrEnum):
    table = "table"
    json = "json"


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class Consumer(StrEnum):
    notifier = "notifier"
    expiry = "expiry"
    read_model = "read-model"


def parse_instant(text: str) -> datetime:
    """ISO 8601; a date means its midnight UTC, a time without zone means UTC; or `now`."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {text!r}") from None
    if len(text.strip()) == 10:  # a bare date
        moment = datetime.combine(moment.date(), time(), UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def optional_instant(value: str | None) -> datetime | None:
    return None if value is None else parse_instant(value)


def default_format() -> Format:
    return Format.table if sys.stdout.isatty() else Format.json


InstantOption = Annotated[str | None, typer.Option(metavar="TIME", help="ISO 8601, UTC if no zone")]
WideOption = Annotated[
    bool, typer.Option("--wide", help="Every column (the default fits 80 columns).")
]


def default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"operator:{user}"
