"""Replays pause the cyclic garbage collector, and give it back as they found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.collector import paused_collector


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_the_collector_is_paused_inside_and_running_again_after(collector_enabled: None) -> None:
    with paused_collector():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failing_replay_still_gives_the_collector_back(collector_enabled: None) -> None:
    with pytest.raises(RuntimeError), paused_collector():
        raise RuntimeError("database down")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector_enabled: None) -> None:
    gc.disable()
    with paused_collector():
        pass
    assert not gc.isenabled()
