"""Which paths are not part of the knowledge base: `.gitignore` files, a root `.bmignore`, the
temporary files editors leave beside a note, and the folders bm-sync and git keep for themselves.

Ignore files are matched by `pathspec`'s `GitIgnoreSpec` (real gitignore semantics: negation,
anchoring, directory-only patterns, `**`), never hand-written fnmatch; the default rules, plain
name patterns, by one regular expression that a test holds to pathspec's verdicts. Precedence,
highest first:

1. `<root>/.bmignore`: bm's own file, so a user can exclude (or re-include with `!`) paths for bm
   alone without touching the `.gitignore` their git repository shares;
2. `.gitignore` files, the deeper one first, as git does; within a file the last match wins;
3. `DEFAULT_RULES`: editors' swap, backup, lock and safe-write files, which come and go while
   a note is edited and are never notes. Lowest, like git's `core.excludesFile`, so a `.bmignore`
   (or `.gitignore`) line such as `!*.tmp` brings them back.

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
# Gitignore lines. Each is an ASCII name pattern (no `/`) whose only wildcard is `*`, and either
# ends with literal text or is literal text followed by `*`: `_DefaultRules` relies on that.
DEFAULT_RULES = (
    "*.tmp",  # many programs' safe-write temporaries; Syncthing's `.syncthing.*.tmp`
    "*.swp", "*.swo", "*.swn", "*.swx",  # vim swap files (and vim's write test)
    "4913",  # vim's probe that a folder is writable
    "*~",  # backups of emacs, vim, gedit, nano
    ".#*",  # emacs lock files
    "\\#*#",  # emacs auto-save files (`#note.md#`)
    "*.kate-swp",  # kate swap files
    "*___jb_tmp___", "*___jb_old___",  # JetBrains IDEs' safe-write files
    "~$*",  # Microsoft Office owner (lock) files beside an open attachment
)
GITIGNORE = b".gitignore"
BMIGNORE = ".bmignore"


class _Unreadable:
    """What `IgnoreRules._load` returns for an ignore file that exists but cannot be read."""


_UNREADABLE = _Unreadable()


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
        include: bool | None = self.spec.check_file(candidate).include
        return include


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


class _DefaultRules:
    """`DEFAULT_RULES`, asked about every path of the tree, so a quick test comes first.

    Every default pattern is a name pattern whose only wildcard is `*`: either text ending with
    a literal tail (`*.tmp`, `4913`) or a literal head followed by `*` (`~$*`). A name can only
    match if it ends with a tail or starts with a head. So a path whose last character ends no
    tail (`last`) and that does not contain the head (`head_mark`) is answered at once: nearly
    every path, a `.md` or a `.pdf`, for about 600 CPU instructions. `gate` is that test for the
    bytes of a name (last byte, first byte). `ignores` does the rest with one regular expression
    over the name, compiled on first use. A slash-free gitignore pattern matches a file or
    folder whose name it matches, at any depth: that is all of gitignore these patterns use, so
    they need no pathspec (importing it costs every run that would otherwise not ~10-20 ms; a
    hypothesis test holds the two to the same verdicts). Heads of hidden names (`.#`) are left
    out unless hidden names are walked at all.
    """

    __slots__ = ("_patterns", "_regex", "last", "head_mark", "gate")

    def __init__(self, patterns: Iterable[str], *, include_hidden: bool) -> None:
        self._patterns = tuple(pattern for pattern in patterns
                               if include_hidden or pattern[0] != ".")
        self._regex: re.Pattern[str] | None = None
        heads = [pattern[:-1] for pattern in self._patterns if pattern[-1] == "*"]
        self.last = frozenset(pattern[-1] for pattern in self._patterns if pattern[-1] != "*")
        # Text that every path a head matches contains: the head when there is one, "" (in
        # every path: all get the full test) when several, NUL (in none) when none.
        self.head_mark = heads[0] if len(heads) == 1 else "" if heads else "\0"
        self.gate = (frozenset(ord(character) for character in self.last),
                     frozenset(ord(head[0]) for head in heads))

    def ignores(self, path: str) -> bool:
        """For a path that passed the quick test: whether a default rule ignores it."""
        if self._regex is None:
            self._regex = re.compile("|".join(_name_pattern(pattern)
                                              for pattern in self._patterns) or r"(?!)")
        return self._regex.fullmatch(path, path.rfind("/") + 1) is not None


def _name_pattern(pattern: str) -> str:
    """A gitignore name pattern whose only wildcard is `*`, as a regular expression over a name:
    `*` any run of characters, `\\x` the character x, anything else itself."""
    regex = []
    for piece in re.split(r"(\\.|\*)", pattern):
        if piece == "*":
            regex.append("[^/]*")
        else:
            regex.append(re.escape(piece[1:] if piece.startswith("\\") else piece))
    return "(?:" + "".join(regex) + ")"


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
        bmignore = self._load(root / BMIGNORE, BMIGNORE)
        self._bmignore = bmignore if isinstance(bmignore, _Rules) else None
        self._defaults = _DefaultRules(DEFAULT_RULES, include_hidden=include_hidden)
        self._default_last = self._defaults.last
        self._default_head_mark = self._defaults.head_mark
        # The scanner must not walk at all: the root's own rules are unknown.
        self.root_unreadable = bool(self.errors)

    def _load(self, path: Path, display_path: str) -> _Rules | _Unreadable | None:
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
        if isinstance(spec, _Unreadable):
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
        if path[-1] in self._default_last or self._default_head_mark in path:
            return self._defaults.ignores(path)
        return False

    @property
    def has_root_rules(self) -> bool:
        """Whether a root pattern file exists (nested `.gitignore` files are found while
        walking)."""
        return self._bmignore is not None

    @property
    def default_gate(self) -> tuple[frozenset[int], frozenset[int]]:
        """(last bytes, first bytes): a name (bytes) that ends with none of the first set and
        starts with none of the second is not ignored by any default rule."""
        return self._defaults.gate


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()
