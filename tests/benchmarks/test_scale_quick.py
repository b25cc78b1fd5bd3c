"""The scale suite runs end to end on a small store: every figure measured, none asserted."""

from __future__ import annotations

import math

import pytest

from bench.core import Scale
from bench.scale import SUITE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_scale_suite_measures_every_figure_on_a_small_store() -> None:
    values = await SUITE.run(Scale(quick=True))

    for figure in SUITE.figures:
        value = values[figure.key]
        assert math.isfinite(value) and value > 0, (figure.key, value)
