"""When a worker syncs each project: pure functions of the project keys, the interval and the
clock, so every worker of a fleet computes the same schedule without talking to the others.

Spread: the projects are ordered by a hash of their key and spaced evenly over the interval
(project i of n starts at i/n of it), plus a jitter of at most `JITTER_SHARE` of one slot. An
offset depends only on the key and the set of keys, so it is stable from cycle to cycle and
across restarts; adding or removing a project moves the others by at most one slot. Evenly
spaced slots keep any window of `interval / n` seconds to at most two starts (a hash alone,
like random offsets, puts three of 10 projects in some 3-second window of 30 most of the time).

Backoff: a project whose sync failed waits `interval * 2**(failures - 1)`, capped at an hour,
scaled by a random factor in [1 - BACKOFF_JITTER, 1] so that projects failing together (a
database outage) do not come back together.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

JITTER_SHARE = 0.1  # the jitter: at most a tenth of one project's slot
BACKOFF_CAP_S = 3600.0
BACKOFF_JITTER = 0.25


def _unit(text: str) -> float:
    """A stable number in [0, 1) from `text` (the same on every machine and Python run)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def offsets(keys: Iterable[str], interval: float) -> dict[str, float]:
    """Each key's start offset within the interval, in seconds (see the module doc)."""
    ordered = sorted(set(keys), key=lambda key: (_unit(key), key))
    slot = interval / len(ordered) if ordered else interval
    return {key: position * slot for position, key in enumerate(ordered)}


def _start(key: str, offset: float, slot: float, interval: float, cycle: int) -> float:
    """The start of `key` in cycle `cycle` (cycles counted from the epoch)."""
    return cycle * interval + offset + JITTER_SHARE * slot * _unit(f"{key}:{cycle}")


def latest_start(key: str, offset: float, slot: float, interval: float, now: float) -> float:
    """The latest scheduled start of `key` at or before `now`: a project whose last sync began
    before it is due."""
    cycle = math.floor((now - offset) / interval)
    start = _start(key, offset, slot, interval, cycle)
    return start if start <= now else _start(key, offset, slot, interval, cycle - 1)


def next_start(key: str, offset: float, slot: float, interval: float, now: float) -> float:
    """The first scheduled start of `key` after `now`."""
    cycle = math.floor((now - offset) / interval)
    start = _start(key, offset, slot, interval, cycle)
    return start if start > now else _start(key, offset, slot, interval, cycle + 1)


def starts_in_cycle(keys: Iterable[str], interval: float, cycle: int) -> list[float]:
    """Every key's start in one cycle, sorted (what the spread check counts)."""
    spaced = offsets(keys, interval)
    slot = interval / len(spaced) if spaced else interval
    return sorted(_start(key, offset, slot, interval, cycle) for key, offset in spaced.items())


def most_in_window(starts: list[float], window: float) -> int:
    """The largest number of `starts` (sorted) within any half-open window of `window` s."""
    most, first = 0, 0
    for last, start in enumerate(starts):
        while start - starts[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


class _Started(Protocol):
    @property
    def last_started_at(self) -> float | None: ...


StartedT = TypeVar("StartedT", bound=_Started)


def least_recently_started(projects: Sequence[StartedT]) -> list[StartedT]:
    """The order in which a worker claims due projects when its slots are few: never synced
    first, then the longest waiting, so projects kept waiting while the slots were busy (a
    fleet's first cycle) go before one synced a moment ago."""
    return sorted(projects, key=lambda project: (project.last_started_at is not None,
                                                 project.last_started_at or 0.0))


def backoff_delay(failures: int, interval: float, rng: random.Random | None = None) -> float:
    """How long a project waits after its `failures`-th failure in a row (see the module doc);
    0 for none."""
    if failures <= 0:
        return 0.0
    delay = min(BACKOFF_CAP_S, interval * 2.0 ** min(failures - 1, 32))
    return delay * (1.0 - BACKOFF_JITTER * (rng or random).random())
