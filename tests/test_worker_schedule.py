"""The worker's schedule and backoff: pure functions, table-driven."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from bm_sync.schedule import (
    BACKOFF_CAP_S,
    backoff_delay,
    latest_start,
    least_recently_started,
    most_in_window,
    next_start,
    offsets,
    starts_in_cycle,
)


def names(count: int) -> list[str]:
    return [f"tenant-{number}" for number in range(count)]


@pytest.mark.parametrize(("projects", "interval", "window", "most"), [
    (10, 30.0, 3.0, 2),    # the spec: 10 projects at 30 s, no 3-second window with 3 starts
    (15, 30.0, 2.0, 2),    # the spec's 15 tenants that all started at :00 and :30
    (6, 1.0, 1 / 6, 2),
    (100, 30.0, 0.3, 2),
    (3, 60.0, 20.0, 2),
    (1, 30.0, 27.0, 1),
])
def test_starts_are_spread(projects: int, interval: float, window: float, most: int) -> None:
    keys = names(projects)
    starts = sorted(start for cycle in range(1_000, 1_020)
                    for start in starts_in_cycle(keys, interval, cycle))
    assert most_in_window(starts, window) <= most
    # And the count a herd would give, for contrast: every start at :00.
    assert most_in_window(sorted(cycle * interval for cycle in range(20) for _key in keys),
                          window) == projects


def test_offsets_are_stable_and_order_free() -> None:
    keys = names(10)
    assert offsets(keys, 30.0) == offsets(list(reversed(keys)), 30.0)
    # One project more moves every other offset by less than one slot.
    before, after = offsets(keys, 30.0), offsets([*keys, "newcomer"], 30.0)
    assert all(abs(after[key] - before[key]) < 30.0 / 10 for key in keys)


@pytest.mark.parametrize("now", [1_000.0, 1_000.1, 1_013.9, 1_029.99, 1_030.0, 99_999.5])
def test_latest_and_next_start_bracket_now(now: float) -> None:
    spaced = offsets(names(10), 30.0)
    for key, offset in spaced.items():
        latest = latest_start(key, offset, 3.0, 30.0, now)
        upcoming = next_start(key, offset, 3.0, 30.0, now)
        assert latest <= now < upcoming
        assert 27.0 <= upcoming - latest <= 33.0  # one interval, give or take the jitter


@pytest.mark.parametrize(("failures", "interval", "low", "high"), [
    (0, 30.0, 0.0, 0.0),
    (1, 30.0, 22.5, 30.0),
    (2, 30.0, 45.0, 60.0),
    (3, 30.0, 90.0, 120.0),
    (7, 30.0, 1440.0, 1920.0),
    (8, 30.0, 2700.0, BACKOFF_CAP_S),     # capped at an hour
    (500, 30.0, 2700.0, BACKOFF_CAP_S),
    (2, 1.0, 1.5, 2.0),
])
def test_backoff_is_exponential_with_jitter_and_capped(failures: int, interval: float,
                                                       low: float, high: float) -> None:
    rng = random.Random(failures)
    delays = [backoff_delay(failures, interval, rng) for _ in range(200)]
    assert all(low <= delay <= high for delay in delays)
    if failures:
        assert len(set(delays)) > 100  # jittered: projects failing together spread out


@dataclass
class Started:
    name: str
    last_started_at: float | None


@pytest.mark.parametrize(("projects", "order"), [
    # A fleet's first cycle: the two synced first are due again, the rest never ran.
    ([("a", 100.0), ("b", 101.0), ("c", None), ("d", None)], ["c", "d", "a", "b"]),
    ([("a", 300.0), ("b", 100.0), ("c", 200.0)], ["b", "c", "a"]),
    ([("a", None)], ["a"]),
    ([], []),
])
def test_the_longest_waiting_are_claimed_first(projects: list[tuple[str, float | None]],
                                               order: list[str]) -> None:
    rows = [Started(name, started) for name, started in projects]
    assert [row.name for row in least_recently_started(rows)] == order
