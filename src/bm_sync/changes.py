"""Typed records that flow out of the detector: one `Change` per path that a sync must apply,
one `Failure` per path that could not be examined.

They are small frozen dataclasses so that a consumer (the sync engine, an app's handler, the CLI)
can hold, compare and serialise them without touching the file system again.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """

    path: str
    error: str
