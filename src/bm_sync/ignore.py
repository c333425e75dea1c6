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

An ignore file that exists but cannot be read leaves the rules of its folder unknown: guessing
(no rules) would turn ignored files into false adds and re-included ones into deletions. So the
scanner treats that folder like an unreadable one (every recorded entry below it is kept), and
an unreadable root `.bmignore` or `.gitignore` does that for the whole tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALWAYS_SKIPPED = frozenset({b".basic-memory", b".git"})
GITIGNORE = b".gitignore"
BMIGNORE = ".bmignore"
_UNREADABLE = object()


@dataclass(frozen=True, slots=True)
class _Frame:
    """The rules of one `.gitignore`: `prefix` is its folder relative to the root, with `/`."""

    prefix: str
    spec: _Rules


class _Rules:
    """One ignore file's patterns, with a cheap exact prefilter in front of pathspec.

    pathspec's `check_file` walks every pattern of the file for every path (about 2 us for a
    five-line file, 0.4 s over a 100k-file tree). Nearly every path matches no pattern at all,
    so the patterns' own regular expressions, joined into one alternation, answer that case
    with a single `search` (pathspec's own method); `check_file` decides (negations, last
    match wins) only for the paths some pattern matches. Same regexes, same answers (a
    hypothesis test holds the two to it).
    """

    __slots__ = ("spec", "_any")

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self._any: re.Pattern[str] | None = None
        try:
            alternatives = [_NAMED_GROUP.sub("(?:", pattern.regex.pattern)
                            for pattern in spec.patterns
                            if pattern.include is not None and pattern.regex is not None]
            self._any = re.compile("|".join(f"(?:{regex})" for regex in alternatives)
                                   or r"(?!)")
        except (AttributeError, re.error):  # a pathspec without regex patterns: no prefilter
            self._any = None

    def verdict(self, candidate: str) -> bool | None:
        """True ignored, False re-included (`!`), None when no pattern speaks of it."""
        if self._any is not None and self._any.search(candidate) is None:
            return None
        return self.spec.check_file(candidate).include


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def _compile(lines: Iterable[str]) -> _Rules:
    from pathspec import GitIgnoreSpec

    return _Rules(GitIgnoreSpec.from_lines(lines))


class IgnoreRules:
    """A callable that says whether a root-relative path is ignored.

    The scanner calls `enter(frames, prefix, gitignore_path)` when it descends into a folder
    and gets back the rule frames that apply below it; `is_ignored(frames, path, is_dir)` then
    answers for each entry of that folder. Frames are immutable tuples, so nothing is undone
    when the scanner climbs back up.
    """

    def __init__(self, root: Path, *, include_hidden: bool = False) -> None:
        self.include_hidden = include_hidden
        # (ignore file, reason) for each ignore file that could not be read.
        self.errors: list[tuple[str, str]] = []
        self._bmignore = self._load(root / BMIGNORE, BMIGNORE)
        # The scanner must not walk at all: the root's own rules are unknown.
        self.root_unreadable = bool(self.errors)

    def _load(self, path: Path, display_path: str) -> Any:
        """The compiled rules of one file; None when absent or empty; _UNREADABLE on error."""
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except (FileNotFoundError, IsADirectoryError):
            return None  # absent (or a dangling link, or not a file): no rules, as for git
        except OSError as error:
            self.errors.append((display_path, _reason(error)))
            return _UNREADABLE
        lines = text.splitlines()
        return _compile(lines) if any(line.strip() for line in lines) else None

    def enter(
        self, frames: tuple[_Frame, ...], prefix: str, gitignore_path: bytes | None
    ) -> tuple[_Frame, ...] | None:
        """Return the frames for a folder at `prefix` ("" for the root, else "a/b/"), or None
        when its `.gitignore` exists but cannot be read (the reason is in `errors`)."""
        if gitignore_path is None:
            return frames
        spec = self._load(Path(os.fsdecode(gitignore_path)), prefix + ".gitignore")
        if spec is _UNREADABLE:
            return None
        return frames if spec is None else (*frames, _Frame(prefix, spec))

    def is_ignored(self, frames: tuple[_Frame, ...], path: str, is_dir: bool) -> bool:
        """Decide for `path` (root-relative, `/`-separated, no trailing slash)."""
        candidate = path + "/" if is_dir else path
        if self._bmignore is not None:
            verdict = self._bmignore.verdict(candidate)
            if verdict is not None:
                return verdict
        for frame in reversed(frames):
            verdict = frame.spec.verdict(candidate[len(frame.prefix) :])
            if verdict is not None:
                return verdict
        return False

    @property
    def active(self) -> bool:
        """Whether any pattern file exists at the root (nested ones are found while walking)."""
        return self._bmignore is not None


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()
