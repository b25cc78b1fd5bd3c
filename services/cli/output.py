"""What every command of the CLI shares: where it prints, how it opens the store, and how
an operator's problem ends it: one line on stderr and its exit code (bootstrap.CliError)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from services.cli.bootstrap import CliError, Operator, load_settings, open_operator


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def stdout() -> Console:
    """For message lines: never wrapped, so that scripts can grep them."""
    return Console(soft_wrap=True)


@contextmanager
def operator_or_exit() -> Iterator[Operator]:
    """The opened store for a command; any `CliError` inside becomes one line and its code."""
    with reported():
        operator = open_operator(load_settings())
        try:
            yield operator
        finally:
            operator.close()


@contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except CliError as error:
        kind = {2: "configuration", 3: "not found", 4: "database"}.get(error.exit_code, "error")
        stderr().print(f"[red]{kind}:[/red] {escape(str(error))}")
        raise typer.Exit(error.exit_code) from None
