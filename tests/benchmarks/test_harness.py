"""The benchmark harness: medians over runs, targets judged on the median, results saved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from bench.core import Figure, Scale, Suite, run_suite
from bench.report import save


def counting_suite() -> Suite:
    values = iter([(900.0, 40.0), (1200.0, 60.0), (1100.0, 45.0)])

    async def run(scale: Scale) -> Mapping[str, float]:
        rate, latency = next(values)
        return {"rate": rate, "p99": latency}

    return Suite(
        "counting",
        (
            Figure("rate", "invites", "/s", target=1000),
            Figure("p99", "p99 reply", "ms", target=50, better="lower"),
        ),
        run,
    )


async def test_a_figure_is_the_median_of_its_runs_and_judged_on_it() -> None:
    rate, p99 = await run_suite(counting_suite(), Scale(quick=True), runs=3)

    assert (rate.median, rate.low, rate.high) == (1100.0, 900.0, 1200.0)
    assert rate.met() is True
    assert (p99.median, p99.low, p99.high) == (45.0, 40.0, 60.0)
    assert p99.met() is True


async def test_a_suite_that_leaves_a_figure_out_is_an_error() -> None:
    async def run(scale: Scale) -> Mapping[str, float]:
        return {"rate": 1.0}

    suite = Suite("partial", (Figure("rate", "r", "/s"), Figure("p99", "p", "ms")), run)
    with pytest.raises(RuntimeError, match="p99"):
        await run_suite(suite, Scale(quick=True), runs=1)


async def test_results_are_saved_as_json_with_a_chart(tmp_path: Path) -> None:
    summaries = await run_suite(counting_suite(), Scale(quick=True), runs=3)

    path = save([("counting", summaries)], runs=3, quick=True, directory=tmp_path)

    document = json.loads(path.read_text())
    assert document["suites"]["counting"]["rate"]["median"] == 1100.0
    assert document["suites"]["counting"]["rate"]["runs"] == [900.0, 1200.0, 1100.0]
    assert document["suites"]["counting"]["p99"]["met"] is True
    assert (tmp_path / "results.png").stat().st_size > 0


async def test_saving_one_suite_keeps_the_figures_of_the_others(tmp_path: Path) -> None:
    summaries = await run_suite(counting_suite(), Scale(quick=True), runs=3)
    save([("counting", summaries)], runs=3, quick=True, directory=tmp_path)

    async def run(scale: Scale) -> Mapping[str, float]:
        return {"rss": 300.0}

    other = Suite("memory", (Figure("rss", "RSS", "MB", target=500, better="lower"),), run)
    path = save(
        [("memory", await run_suite(other, Scale(quick=True), runs=1))],
        runs=1,
        quick=True,
        directory=tmp_path,
    )

    document = json.loads(path.read_text())
    assert set(document["suites"]) == {"counting", "memory"}
    assert document["suites"]["counting"]["rate"]["median"] == 1100.0
    assert document["measured"]["memory"]["runs"] == 1
