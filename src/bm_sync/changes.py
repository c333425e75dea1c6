"""Typed records that flow out of the detector: one `Change` per path that a sync must apply,
one `Failure` per path that could not be examined (together, a run's findings), and the
`StatusReport` that collects one run.

They are small frozen dataclasses so that a consumer (the sync engine, an app's handler, the CLI)
can hold, compare and serialise them without touching the file system again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ChangeKind(StrEnum):
    """What happened to a path since the last recorded state."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"


class HashKind(StrEnum):
    """How a content id was computed, chosen by `HashPolicy` from the file size.

    FULL is the git blob id (equal to `git hash-object`); PARTIAL hashes size plus sampled 64 KiB
    blocks; NONE derives the id from size and mtime only, without reading the file.
    """

    FULL = "full"
    PARTIAL = "partial"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Change:
    """One change a sync must apply. Paths are root-relative and `/`-separated.

    For MOVED, `path` is the new path and `old_path` the one it left; for DELETED the content
    fields are None. `permalink` is the frontmatter permalink of a markdown file when the detector
    read it (it does, for every added or modified note). `old_content_id` (MOVED only) is the
    recorded id of the old path: equal to `content_id` for a pure rename.

    `content` is the exact bytes whose git blob id is `content_id`, when the detector read them
    whole (markdown up to 1 MiB); None otherwise. It lets the parse stage work on the very
    bytes that were hashed, so a file edited in between cannot leave a row holding one
    version's id and another version's text. Added and modified notes streamed by the detector
    carry it; moves and the adds held for move pairing do not (memory stays bounded; a
    consumer reads those again and checks the id). Not part of equality, repr or JSON.
    """

    kind: ChangeKind
    path: str
    old_path: str | None = None
    content_id: str | None = None
    hash_kind: HashKind | None = None
    size: int | None = None
    mtime_ns: int | None = None
    permalink: str | None = None
    old_content_id: str | None = None
    content: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, object]:
        """The record as plain JSON types (what `--json` prints per change in detailed output)."""
        return {
            "kind": self.kind.value,
            "path": self.path,
            "old_path": self.old_path,
            "content_id": self.content_id,
            "hash_kind": self.hash_kind.value if self.hash_kind else None,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "permalink": self.permalink,
            "old_content_id": self.old_content_id,
        }


@dataclass(frozen=True, slots=True)
class Failure:
    """A path that could not be examined this run, with a one-line reason.

    A failed path keeps its previous recorded state: a failure never turns into a deletion.
    `skipped` marks a path the caller asked the run not to open (`detect(skip=...)`, the sync
    engine's circuit breaker), as opposed to one that was tried and failed.
    """

    path: str
    error: str
    skipped: bool = False


# What a detection run yields, path by path.
Finding = Change | Failure


@dataclass
class StatusReport:
    """Everything one run found, collected (what `bm status` prints)."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    unchanged: int = 0
    hashed: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def change_count(self) -> int:
        return len(self.added) + len(self.modified) + len(self.deleted) + len(self.moved)

    def add(self, finding: Finding) -> None:
        if isinstance(finding, Failure):
            self.failed.append(finding)
        elif finding.kind is ChangeKind.MOVED:
            self.moved.append((finding.old_path or "", finding.path))
        else:
            getattr(self, finding.kind.value).append(finding.path)

    def sort(self) -> None:
        """Path order, whatever order the findings streamed in (hashing runs in parallel)."""
        self.added.sort()
        self.modified.sort()
        self.deleted.sort()
        self.moved.sort(key=lambda pair: pair[1])
        self.failed.sort(key=lambda failure: failure.path)

    def to_json(self) -> dict[str, object]:
        """The documented JSON shape of `bm status --json`."""
        return {
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
            "moved": [{"from": old, "to": new} for old, new in self.moved],
            "failed": [{"path": failure.path, "error": failure.error} for failure in self.failed],
            "unchanged": self.unchanged,
        }
