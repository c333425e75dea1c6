"""What a sync reports (`SyncReport`, `SyncProgress`) and what it tracks per path on the way
(`PathOutcomes`): the records the engine fills, kept apart from the engine itself."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bm_sync.changes import Change, Failure
from bm_sync.consistency import stat_signature
from bm_sync.detector import StatusReport
from bm_sync.roots import narrow

FAILURE_LOG_SIZE = 100


@dataclass
class SyncReport(StatusReport):
    """What a sync applied, as its history run records it. `failed` keeps the last 100 paths
    that were not indexed, `failed_total` counts all; `file_warnings` the last 100 notes
    indexed with a warning (broken frontmatter, invalid UTF-8), `file_warnings_total` all.
    `rebuilt` says the sync was a rebuild, `rebuild_reason` why.

    A report narrowed to `scope` (`bm sync SUBFOLDER`) lists only the changes there, while the
    sync applied, and its history run records, the whole folder: `applied` keeps those
    counts, so the two always agree and say what they cover."""

    duration_s: float = 0.0
    rebuilt: bool = False
    rebuild_reason: str | None = None
    failed_total: int = 0
    file_warnings: list[Failure] = field(default_factory=list)
    file_warnings_total: int = 0
    scope: str | None = None
    applied: dict[str, int] | None = None

    def counts(self) -> dict[str, int]:
        """What the report lists, counted as the history run counts it."""
        return {"added": len(self.added), "modified": len(self.modified),
                "deleted": len(self.deleted), "moved": len(self.moved),
                "failed": self.failed_total, "unchanged": self.unchanged}

    def narrow_to(self, scope: str, recorded_paths: Iterable[bytes] | None = None) -> None:
        """List only `scope` (see `roots.narrow`); `applied` keeps what the sync applied."""
        self.applied = self.counts()
        self.scope = scope
        narrow(self, scope, recorded_paths)
        self.failed_total = len(self.failed)

    def to_json(self) -> dict[str, object]:
        """The `bm status --json` object plus `warnings`, `rebuilt`, `rebuild_reason` and
        `duration_s`; narrowed, also `scope` and `applied` (the counts of what the sync applied
        and its history run records: the whole folder's)."""
        data = super().to_json()
        if self.scope is not None:
            data["scope"] = self.scope
            data["applied"] = self.applied
        data["warnings"] = [{"path": warning.path, "warning": warning.error}
                            for warning in self.file_warnings]
        data["rebuilt"] = self.rebuilt
        data["rebuild_reason"] = self.rebuild_reason
        data["duration_s"] = round(self.duration_s, 3)
        return data

    def add_sweep(self, moves: list[tuple[str, str]], deleted: list[str]) -> None:
        """A rebuild's sweep turns some of its adds into moves, and finds the deletions."""
        moved_to = {new for _old, new in moves}
        self.added = [path for path in self.added if path not in moved_to]
        self.moved.extend(moves)
        self.deleted.extend(deleted)
        self.sort()


@dataclass
class SyncProgress:
    """Counters for a progress bar; `expected` is the file count of the last recorded state
    (0 on a first sync), `finished` is set by the last call, when every file is examined."""

    scanned: int = 0
    hashed: int = 0
    applied: int = 0
    expected: int = 0
    finished: bool = False


class FailureLog:
    """The in-memory record of failures, capped (least recently failed dropped first)."""

    def __init__(self, capacity: int = FAILURE_LOG_SIZE) -> None:
        self.capacity = capacity
        self.total = 0
        self._entries: OrderedDict[str, str] = OrderedDict()

    def add(self, failure: Failure) -> None:
        self.total += 1
        self._entries.pop(failure.path, None)
        self._entries[failure.path] = failure.error
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def note(self, failure: Failure) -> None:
        """One more reason for a path already logged (not one more path), else `add` it."""
        if failure.path in self._entries:
            self._entries[failure.path] += f"; {failure.error}"
        else:
            self.add(failure)

    def failures(self) -> list[Failure]:
        return [Failure(path, error) for path, error in self._entries.items()]


@dataclass
class PathOutcomes:
    """What one sync did to each path, beyond the report: failures to remember in the
    breaker's table, paths the index must not record, paths applied."""

    root: Path
    log: FailureLog = field(default_factory=FailureLog)
    warnings: FailureLog = field(default_factory=FailureLog)
    hard_failures: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    applied: set[str] = field(default_factory=set)

    def skipped(self, failure: Failure) -> None:
        """A path the breaker held back: reported, not applied, not counted again."""
        self.log.add(failure)
        self.excluded.add(failure.path)

    def failed(self, failure: Failure, change: Change | None = None) -> None:
        """A path not applied: reported, left out of the index, counted by the breaker."""
        self.log.add(failure)
        content_id = change.content_id if change else stat_signature(self.root, failure.path)
        self.hard_failures[failure.path] = (content_id, failure.error)
        self.excluded.add(failure.path)
        if change is not None and change.old_path:
            self.excluded.add(change.old_path)
