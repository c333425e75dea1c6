"""Which paths are not part of the knowledge base: `.gitignore` files, a root `.bmignore`, and
the folders bm-sync and git keep for themselves.

Matching uses `pathspec`'s `GitIgnoreSpec` (real gitignore semantics: negation, anchoring,
directory-only patterns, `**`), never hand-written fnmatch. Precedence, highest first:

1. `<root>/.bmignore`: bm's own file, so a user can exclude (or re-include with `!`) paths for bm
   alone without touching the `.gitignore` their git repository shares;
2. `.gitignore` files, the deeper one first, as git does; within a file the last match wins.

An ignored directory is not entered, so nothing below it can be re-included (git's rule too).
Hidden names (starting with `.`) are skipped unless `include_hidden` is set: `.obsidian/`,
`.trash/`, `.DS_Store` and editor swap files are not notes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALWAYS_SKIPPED = frozenset({b".basic-memory", b".git"})
GITIGNORE = b".gitignore"
BMIGNORE = ".bmignore"


@dataclass(frozen=True, slots=True)
class _Frame:
    """The rules of one `.gitignore`: `prefix` is its folder relative to the root, with `/`."""

    prefix: str
    spec: Any


def _compile(lines: Iterable[str]) -> Any:
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(lines)


class IgnoreRules:
    """A callable that says whether a root-relative path is ignored.

    The scanner calls `enter(frames, prefix, gitignore_path)` when it descends into a folder
    and gets back the rule frames that apply below it; `is_ignored(frames, path, is_dir)` then
    answers for each entry of that folder. Frames are immutable tuples, so nothing is undone
    when the scanner climbs back up.
    """

    def __init__(self, root: Path, *, include_hidden: bool = False) -> None:
        self.include_hidden = include_hidden
        self.errors: list[tuple[str, str]] = []
        self._bmignore = self._load(root / BMIGNORE, BMIGNORE)

    def _load(self, path: Path, display_path: str) -> Any:
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            return None
        except OSError as error:
            self.errors.append((display_path, _reason(error)))
            return None
        lines = text.splitlines()
        return _compile(lines) if any(line.strip() for line in lines) else None

    def enter(
        self, frames: tuple[_Frame, ...], prefix: str, gitignore_path: bytes | None
    ) -> tuple[_Frame, ...]:
        """Return the frames for a folder at `prefix` ("" for the root, else "a/b/")."""
        if gitignore_path is None:
            return frames
        spec = self._load(Path(os.fsdecode(gitignore_path)), prefix + ".gitignore")
        return frames if spec is None else (*frames, _Frame(prefix, spec))

    def is_ignored(self, frames: tuple[_Frame, ...], path: str, is_dir: bool) -> bool:
        """Decide for `path` (root-relative, `/`-separated, no trailing slash)."""
        candidate = path + "/" if is_dir else path
        if self._bmignore is not None:
            verdict = self._bmignore.check_file(candidate).include
            if verdict is not None:
                return verdict
        for frame in reversed(frames):
            verdict = frame.spec.check_file(candidate[len(frame.prefix) :]).include
            if verdict is not None:
                return verdict
        return False

    @property
    def active(self) -> bool:
        """Whether any pattern file exists at the root (nested ones are found while walking)."""
        return self._bmignore is not None


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()
