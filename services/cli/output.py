"""What every command of the CLI shares: where it prints, how it opens the store, and how a
configuration problem ends it (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from services.cli.bootstrap import ConfigurationError, Operator, load_settings, open_operator
from shared.settings import ServiceSettings


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def stdout() -> Console:
    """For message lines: never wrapped, so that scripts can grep them."""
    return Console(soft_wrap=True)


def settings_or_exit() -> ServiceSettings:
    try:
        return load_settings()
    except ConfigurationError as error:
        stderr().print(f"[red]configuration:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None


@contextmanager
def operator_or_exit() -> Iterator[Operator]:
    try:
        operator = open_operator(load_settings())
    except ConfigurationError as error:
        stderr().print(f"[red]configuration:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    try:
        yield operator
    finally:
        operator.close()
