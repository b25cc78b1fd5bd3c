"""The read-side suite runs end to end on a tiny store: every figure measured, none asserted."""

from __future__ import annotations

import math

import pytest

from bench.core import Scale
from bench.read_side import SUITE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_read_side_suite_measures_every_figure_on_a_tiny_store() -> None:
    values = await SUITE.run(Scale(quick=True))

    for figure in SUITE.figures:
        value = values[figure.key]
        assert math.isfinite(value), (figure.key, value)
        if figure.key != "read_model_cpu_added_pct":  # noise may make it negative
            assert value > 0, (figure.key, value)
