"""The benchmark harness: suites of figures, run several times, summarised as median/min/max.

A suite is one module under `bench/` exposing `SUITE = Suite(...)`: the figures it
measures (each with its target) and `run(scale)`, one complete run that returns a value
for every figure. Ratios (to a naive pipeline, to pgbench) are figures too, computed
inside one run, because this machine is shared and noisy: two runs minutes apart are
not comparable, two halves of one run are.

`Scale` lets the same code run in seconds (`--quick`, used by the smoke test that keeps
the suite from rotting) or at the sizes the targets are stated for.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Figure:
    key: str  # stable identifier, the key in results JSON
    label: str  # what is measured, for the table
    unit: str
    target: float | None = None  # None: reported, no target
    better: Better = "higher"

    def met(self, value: float) -> bool | None:
        if self.target is None:
            return None
        return value >= self.target if self.better == "higher" else value <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "report"
        sign = "≥" if self.better == "higher" else "≤"
        return f"{sign} {self.target:,g} {self.unit}".rstrip()


@dataclass(frozen=True)
class Scale:
    """How big a run is. `full` is the size the targets are stated for."""

    quick: bool = False

    def pick(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def seconds(self, full: float, quick: float) -> float:
        return quick if self.quick else full


RunOnce = Callable[[Scale], Awaitable[Mapping[str, float]]]


@dataclass(frozen=True)
class Suite:
    name: str
    figures: tuple[Figure, ...]
    run: RunOnce
    # Prepared once before the runs (a large store, say); returns nothing, may be slow.
    prepare: Callable[[Scale], Awaitable[None]] | None = None
    # Undoes `prepare` (drops its store) after the runs, whether they succeeded or not.
    finish: Callable[[], Awaitable[None]] | None = None
    notes: str = ""


@dataclass
class Summary:
    figure: Figure
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def met(self) -> bool | None:
        return self.figure.met(self.median) if self.values else None

    def as_json(self) -> dict[str, object]:
        return {
            "label": self.figure.label,
            "unit": self.figure.unit,
            "target": self.figure.target,
            "better": self.figure.better,
            "runs": self.values,
            "median": self.median if self.values else None,
            "min": self.low if self.values else None,
            "max": self.high if self.values else None,
            "met": self.met(),
        }


async def run_suite(suite: Suite, scale: Scale, runs: int) -> list[Summary]:
    summaries = {figure.key: Summary(figure) for figure in suite.figures}
    try:
        if suite.prepare is not None:
            await suite.prepare(scale)
        for _ in range(runs):
            values = await suite.run(scale)
            missing = set(summaries) - set(values)
            if missing:
                raise RuntimeError(f"suite {suite.name} did not measure {sorted(missing)}")
            for key, value in values.items():
                if key in summaries:
                    summaries[key].values.append(float(value))
    finally:
        if suite.finish is not None:
            await suite.finish()
    return list(summaries.values())
