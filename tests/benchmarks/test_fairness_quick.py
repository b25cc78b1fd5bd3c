"""The fairness suite runs end to end at its quick size and measures every figure."""

from __future__ import annotations

import math

import pytest

from bench.core import Scale
from bench.fairness import SUITE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_quick_fairness_measures_every_figure() -> None:
    values = await SUITE.run(Scale(quick=True))

    assert set(values) == {figure.key for figure in SUITE.figures}
    for key, value in values.items():
        assert math.isfinite(value) and value > 0, (key, value)
