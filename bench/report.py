"""Printing and saving the results: a table on the terminal, JSON and a chart on disk."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.core import Figure, Summary

RESULTS = Path(__file__).parent / "results"


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.3g}"


def table(results: Sequence[tuple[str, Sequence[Summary]]], runs: int) -> Table:
    grid = Table(title=f"Benchmarks (median of {runs} run(s), min-max)")
    for column in ("suite", "figure", "median", "min-max", "unit", "target", "met"):
        grid.add_column(column, justify="right" if column in ("median", "min-max") else "left")
    for suite, summaries in results:
        for summary in summaries:
            met = summary.met()
            grid.add_row(
                suite,
                summary.figure.label,
                _number(summary.median),
                f"{_number(summary.low)}-{_number(summary.high)}",
                summary.figure.unit,
                summary.figure.target_text(),
                {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[met],
            )
    return grid


def machine() -> dict[str, object]:
    return {
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def save(
    results: Sequence[tuple[str, Sequence[Summary]]], runs: int, quick: bool, directory: Path
) -> Path:
    """Write the results; suites of an earlier invocation that were not re-run are kept.

    So one suite can be re-measured (`python -m bench expiry`) without losing the others;
    `measured` says when and how each suite was last run.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    earlier: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    suites: dict[str, Any] = dict(earlier.get("suites", {}))
    measured: dict[str, Any] = dict(earlier.get("measured", {}))
    for suite, summaries in results:
        suites[suite] = {summary.figure.key: summary.as_json() for summary in summaries}
        measured[suite] = {"when": now, "runs": runs, "quick": quick}
    document = {"machine": machine(), "measured": measured, "suites": suites}
    path.write_text(json.dumps(document, indent=2) + "\n")
    chart(summaries_from_json(suites), directory / "results.png")
    return path


def summaries_from_json(suites: dict[str, Any]) -> list[tuple[str, list[Summary]]]:
    loaded = []
    for suite, figures in suites.items():
        summaries = []
        for key, saved in figures.items():
            figure = Figure(key, saved["label"], saved["unit"], saved["target"], saved["better"])
            summaries.append(Summary(figure, [float(v) for v in saved["runs"]]))
        loaded.append((suite, summaries))
    return loaded


def chart(results: Sequence[tuple[str, Sequence[Summary]]], path: Path) -> None:
    """Each figure with a target as a share of it (1 = exactly on target, > 1 = met)."""
    import matplotlib  # imported here: only the full run draws, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[tuple[str, float, float, float]] = []
    for suite, summaries in results:
        for summary in summaries:
            target = summary.figure.target
            if target is None or not summary.values:
                continue

            def share(value: float, target: float = target, summary: Summary = summary) -> float:
                if summary.figure.better == "higher":
                    return value / target
                return target / value if value > 0 else float("inf")

            worst, best = sorted((share(summary.low), share(summary.high)))
            rows.append((f"{suite}: {summary.figure.label}", share(summary.median), worst, best))
    if not rows:
        return
    figure, axes = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    labels = [row[0] for row in rows]
    medians = [min(row[1], 100.0) for row in rows]
    errors = [
        [max(row[1] - row[2], 0) for row in rows],
        [max(min(row[3], 100.0) - min(row[1], 100.0), 0) for row in rows],
    ]
    colours = ["tab:green" if row[1] >= 1 else "tab:red" for row in rows]
    axes.barh(labels, medians, xerr=errors, color=colours, capsize=3)
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_xscale("log")
    axes.set_xlabel("median / target (log scale; ≥ 1 is met); whiskers: min-max")
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_table(results: Sequence[tuple[str, Sequence[Summary]]], runs: int) -> None:
    Console().print(table(results, runs))
