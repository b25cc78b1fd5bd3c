"""One quick deadlines run, in process and over the real services, measures every figure."""

from __future__ import annotations

import math

import pytest

from bench.core import Scale
from bench.deadlines import SUITE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_a_quick_deadlines_run_measures_every_figure() -> None:
    values = await SUITE.run(Scale(quick=True))

    for figure in SUITE.figures:
        assert math.isfinite(values[figure.key]), figure.key
        assert values[figure.key] >= 0, figure.key
