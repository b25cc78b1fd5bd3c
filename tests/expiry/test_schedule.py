"""The schedule: time order, moves and cancellations by lazy invalidation, a million keys."""

from __future__ import annotations

import random

from services.expiry.domain.schedule import Schedule


def test_keys_come_out_in_time_order_and_only_once_due() -> None:
    schedule: Schedule[str] = Schedule()
    schedule.set("late", 30.0)
    schedule.set("early", 10.0)
    schedule.set("middle", 20.0)

    assert schedule.next_at() == 10.0
    assert schedule.pop_due(5.0) == []
    assert schedule.pop_due(20.0) == [("early", 10.0), ("middle", 20.0)]
    assert schedule.pop_due(100.0) == [("late", 30.0)]
    assert schedule.next_at() is None
    assert len(schedule) == 0


def test_a_key_moved_later_fires_only_at_its_new_time() -> None:
    schedule: Schedule[str] = Schedule()
    schedule.set("bob", 10.0)
    schedule.set("bob", 50.0)

    assert schedule.pop_due(20.0) == []
    assert schedule.next_at() == 50.0
    assert schedule.pop_due(50.0) == [("bob", 50.0)]


def test_a_key_moved_earlier_fires_at_its_new_time_and_never_again_at_the_old() -> None:
    schedule: Schedule[str] = Schedule()
    schedule.set("bob", 50.0)
    schedule.set("bob", 10.0)

    assert schedule.pop_due(10.0) == [("bob", 10.0)]
    assert schedule.pop_due(100.0) == []


def test_a_key_moved_away_and_back_fires_once() -> None:
    schedule: Schedule[str] = Schedule()
    schedule.set("bob", 10.0)
    schedule.set("bob", 20.0)
    schedule.set("bob", 10.0)
    schedule.cancel("bob")
    schedule.set("bob", 10.0)

    assert schedule.pop_due(100.0) == [("bob", 10.0)]


def test_a_cancelled_key_never_fires() -> None:
    schedule: Schedule[str] = Schedule()
    schedule.set("bob", 10.0)
    schedule.set("ann", 11.0)
    schedule.cancel("bob")
    schedule.cancel("nobody")

    assert "bob" not in schedule
    assert schedule.next_at() == 11.0
    assert schedule.pop_due(100.0) == [("ann", 11.0)]


def test_keys_due_at_the_same_instant_come_out_in_key_order() -> None:
    schedule: Schedule[tuple[int, str]] = Schedule()
    for key in [(2, "b"), (0, "z"), (1, "a")]:
        schedule.set(key, 5.0)

    assert [key for key, _ in schedule.pop_due(5.0)] == [(0, "z"), (1, "a"), (2, "b")]


def test_pop_due_takes_at_most_the_limit() -> None:
    schedule: Schedule[int] = Schedule()
    for key in range(10):
        schedule.set(key, float(key))

    assert [key for key, _ in schedule.pop_due(100.0, limit=3)] == [0, 1, 2]
    assert len(schedule) == 7


def test_stale_entries_are_compacted_so_the_heap_stays_near_the_live_size() -> None:
    schedule: Schedule[int] = Schedule()
    for key in range(100):
        schedule.set(key, 1000.0)
    for move in range(50_000):
        schedule.set(move % 100, 1000.0 + move)

    assert len(schedule) == 100
    assert schedule.heap_size() <= 2 * 100 + 1024 + 1
    assert sorted(key for key, _ in schedule.pop_due(1e9)) == list(range(100))


def test_a_hundred_thousand_deadlines_can_be_pushed_moved_and_popped_in_order() -> None:
    # Ten batches of pops among moved and cancelled (stale) entries: no different at a
    # million. A million deadlines (memory, lateness) are figures of bench/expiry.py.
    rng = random.Random(7)
    schedule: Schedule[int] = Schedule()
    count = 100_000
    for key in range(count):
        schedule.set(key, rng.uniform(0.0, 1e6))
    for key in range(0, count, 10):  # a tenth move, a tenth of those are cancelled
        schedule.set(key, rng.uniform(0.0, 1e6))
    for key in range(0, count, 100):
        schedule.cancel(key)

    live = count - count // 100
    assert len(schedule) == live
    popped = 0
    previous = -1.0
    while batch := schedule.pop_due(1e6, limit=10_000):
        for _, at in batch:
            assert at >= previous
            previous = at
        popped += len(batch)
    assert popped == live
    assert schedule.next_at() is None


def test_due_keys_are_the_live_keys_due_by_then_and_stay_scheduled() -> None:
    schedule: Schedule[str] = Schedule()
    for name, at in [("a", 1.0), ("b", 5.0), ("c", 2.0), ("d", 9.0), ("e", 3.0)]:
        schedule.set(name, at)
    schedule.set("d", 4.0)  # moved earlier: its stale entry at 9.0 must not count
    schedule.set("c", 8.0)  # moved later: not due by 4.0 any more
    schedule.cancel("e")

    assert sorted(schedule.due_keys(4.0)) == ["a", "d"]
    assert sorted(schedule.due_keys(100.0)) == ["a", "b", "c", "d"]
    assert len(schedule) == 4
