"""The expiry benchmark runs end to end at a tiny size (figures present, never judged)."""

from __future__ import annotations

import math

import pytest

from bench import expiry
from bench.core import Scale

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_the_expiry_suite_measures_every_figure_over_the_real_services() -> None:
    scale = Scale(quick=True)
    await expiry.prepare(scale)
    try:
        values = await expiry.run(scale)
    finally:
        await expiry.finish()

    assert set(values) == {figure.key for figure in expiry.SUITE.figures}
    assert all(math.isfinite(v) and v >= 0 for v in values.values()), values
    assert values["expiry_deadlines"] == 300 * expiry.DEADLINES_PER_CONTRACTOR
    assert values["expiry_rss_mb"] > 0
