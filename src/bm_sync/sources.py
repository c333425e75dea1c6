"""Where a detection pass gets its candidate paths: the whole tree, or what a watcher reported.

A source yields scan events (`scan.ScanTuple`) in git index order and says which recorded
entries it speaks for (`covers`). The detector merges its events with exactly the entries the
source covers, with the same compare, hash, rename pairing and recording whatever the source;
entries it does not cover are carried over untouched.

- `FullWalk`: every file under the root (`scan.walk`); it covers every entry.
- `ExplicitPaths`: the paths a file watcher reported (files or folders, possibly deleted,
  possibly one side of a rename). A reported file is examined; a reported folder is walked
  (that is how a folder rename is seen: both sides are reported); a reported path that is gone
  covers its entry and every entry below it, so they are found deleted. Ignore rules apply as
  in the full walk: the `.gitignore` of every ancestor and the root `.bmignore`; hidden names,
  symlinks and special files are skipped the same way. A reported `.gitignore` stands for its
  folder (its rules changed what is tracked there) and a reported root `.bmignore` for the
  whole tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

from bm_sync.errors import BmSyncError, describe_os_error
from bm_sync.ignore import ALWAYS_SKIPPED, BMIGNORE, GITIGNORE, IgnoreRules
from bm_sync.scan import EventKind, Frames, ScanTuple, walk

ReportedPath = str | bytes | os.PathLike[str]


class PathSource(Protocol):
    """The candidate paths of one detection pass."""

    whole_tree: bool

    def covers(self, path: bytes) -> bool:
        """Whether the recorded entry at `path` is this source's to confirm or delete."""
        ...

    def events(self, root: bytes, rules: IgnoreRules) -> Iterator[ScanTuple]:
        """The scan events of the covered paths, in index (bytewise path) order."""
        ...


class FullWalk:
    """Every file of the tree: the source of `bm status` and of every sync without paths."""

    whole_tree = True

    def covers(self, path: bytes) -> bool:
        return True

    def events(self, root: bytes, rules: IgnoreRules) -> Iterator[ScanTuple]:
        return walk(root, rules)


class ExplicitPaths:
    """A set of reported paths, normalised to root-relative bytes (see `explicit_paths`)."""

    whole_tree = False

    def __init__(self, paths: Iterable[bytes]) -> None:
        kept: list[bytes] = []
        for path in sorted(set(paths)):
            # Sorted, an ancestor comes before its descendants, and it covers them.
            if not any(path.startswith(ancestor + b"/") for ancestor in kept[-1:]):
                kept.append(path)
        self.paths = tuple(kept)
        self._exact = frozenset(kept)
        self._prefixes = tuple(path + b"/" for path in kept)

    def covers(self, path: bytes) -> bool:
        return path in self._exact or path.startswith(self._prefixes)

    def events(self, root: bytes, rules: IgnoreRules) -> Iterator[ScanTuple]:
        if rules.root_unreadable:
            yield EventKind.FAILED_RULES, b"", None, "ignore file unreadable"
            return
        ancestors = _Ancestors(root, rules)
        regions: dict[bytes, _Blocked | _Folder | ScanTuple] = {}
        for path in self.paths:
            frames = ancestors.frames_for(path)
            if isinstance(frames, _Blocked):
                # A folder on the way cannot be examined: one event for it, whatever the
                # number of reported paths below it.
                regions[frames.event[1]] = frames
            elif frames is not None:
                region = _region(root, path, rules, frames)
                if region is not None:
                    regions[region[0]] = region[1]
        # The regions are disjoint (no reported path lies below another), so concatenating
        # them in key order keeps the whole stream in index order.
        for key in sorted(regions):
            what = regions[key]
            if isinstance(what, _Blocked):
                yield what.event
            elif isinstance(what, _Folder):
                yield from walk(root, rules, start=key, frames=what.frames)
            else:
                yield what


def explicit_paths(root: Path, reported: Iterable[ReportedPath]) -> ExplicitPaths | None:
    """Normalise what a watcher reported; None when it amounts to the whole tree.

    Paths are root-relative or absolute (under the root, or under a symlink that leads to it).
    A path outside the root is a `BmSyncError`; bm's own `.basic-memory` (and `.git`) are
    dropped.
    """
    normalised: list[bytes] = []
    for path in reported:
        relative = _relative(root, path)
        if relative is None:
            continue
        if relative == b"" or relative == BMIGNORE.encode():
            return None
        if relative.rsplit(b"/", 1)[-1] == GITIGNORE:
            relative = relative.rpartition(b"/")[0]
            if not relative:
                return None
        normalised.append(relative)
    return ExplicitPaths(normalised)


def _relative(root: Path, path: ReportedPath) -> bytes | None:
    raw = os.fsencode(path)
    root_bytes = os.fsencode(root)
    if os.path.isabs(raw):
        relative = _under(root_bytes, os.path.normpath(raw))
        if relative is None:
            # Reached through a symlink (of the root or of a folder above it): resolve the
            # parent, which exists even when the reported file is gone.
            parent, name = os.path.split(os.path.normpath(raw))
            relative = _under(root_bytes, os.path.join(os.path.realpath(parent), name))
        if relative is None:
            raise BmSyncError(f"not inside {root}: {os.fsdecode(raw)}")
    else:
        relative = os.path.normpath(raw)
        if relative == b"..":
            raise BmSyncError(f"not inside {root}: {os.fsdecode(raw)}")
        if relative.startswith(b"../"):
            raise BmSyncError(f"not inside {root}: {os.fsdecode(raw)}")
    if relative == b".":
        return b""
    if relative.split(b"/", 1)[0] in ALWAYS_SKIPPED:
        return None
    return relative


def _under(root: bytes, path: bytes) -> bytes | None:
    if path == root:
        return b"."
    if path.startswith(root.rstrip(b"/") + b"/"):
        return path[len(root.rstrip(b"/")) + 1:]
    return None


class _Blocked(NamedTuple):
    """A folder above reported paths that cannot be examined: its FAILED_DIR/RULES event."""

    event: ScanTuple


class _Folder(NamedTuple):
    """A reported path that is a folder: walked under the frames of its ancestors."""

    frames: Frames


def _region(root: bytes, path: bytes, rules: IgnoreRules,
            frames: Frames) -> tuple[bytes, _Folder | ScanTuple] | None:
    """Where the events of a reported path fall: `path/` (a folder to walk) or `path` (one
    event); None when there is nothing to track there (gone, hidden, ignored, a link, a special
    file)."""
    name = path.rsplit(b"/", 1)[-1]
    if name[:1] == b"." and not rules.include_hidden:
        return None
    try:
        stat_result = os.lstat(os.path.join(root, path))
    except FileNotFoundError:
        return None
    except OSError as error:  # its type is unknown: keep what is recorded, file or folder
        return path, (EventKind.FAILED_ENTRY, path, None, describe_os_error(error))
    text = os.fsdecode(path)
    if stat.S_ISDIR(stat_result.st_mode):
        return None if rules.is_ignored(frames, text, True) else (path + b"/", _Folder(frames))
    if stat.S_ISREG(stat_result.st_mode) and not rules.is_ignored(frames, text, False):
        return path, (EventKind.FILE, path, stat_result, None)
    return None


class _Ancestors:
    """The ignore frames of the folders above reported paths, each folder entered once."""

    def __init__(self, root: bytes, rules: IgnoreRules) -> None:
        self.root = root
        self.rules = rules
        self._frames: dict[bytes, Frames | _Blocked | None] = {}

    def frames_for(self, path: bytes) -> Frames | _Blocked | None:
        """The frames in force in `path`'s folder; None when the full walk would not reach
        it; `_Blocked` when a folder on the way cannot be examined."""
        return self._folder(path.rpartition(b"/")[0])

    def _folder(self, folder: bytes) -> Frames | _Blocked | None:
        if folder in self._frames:
            return self._frames[folder]
        found: Frames | _Blocked | None
        if not folder:
            found = self._enter((), b"")
        else:
            parent, _slash, name = folder.rpartition(b"/")
            outer = self._folder(parent)
            if outer is None or isinstance(outer, _Blocked):
                found = outer
            elif not self._is_walked(folder, name, outer, at_root=not parent):
                found = None
            else:
                found = self._enter(outer, folder + b"/")
        self._frames[folder] = found
        return found

    def _is_walked(self, folder: bytes, name: bytes, frames: Frames, *, at_root: bool) -> bool:
        """Whether the full walk would enter `folder` (a real folder, not hidden, not a link,
        not ignored)."""
        if at_root and name in ALWAYS_SKIPPED:
            return False
        if name[:1] == b"." and not self.rules.include_hidden:
            return False
        try:
            mode = os.lstat(os.path.join(self.root, folder)).st_mode
        except OSError:
            return False
        return stat.S_ISDIR(mode) and not self.rules.is_ignored(frames, os.fsdecode(folder), True)

    def _enter(self, frames: Frames, prefix: bytes) -> Frames | _Blocked:
        """The frames below `prefix`, with its `.gitignore` (as the walk's `_open_folder`)."""
        gitignore = os.path.join(self.root, prefix + GITIGNORE)
        try:
            os.lstat(gitignore)
        except FileNotFoundError:
            entered = self.rules.enter(frames, os.fsdecode(prefix), None)
        except OSError as error:
            return _Blocked((EventKind.FAILED_DIR, prefix, None, describe_os_error(error)))
        else:
            entered = self.rules.enter(frames, os.fsdecode(prefix), gitignore)
        if entered is None:
            return _Blocked((EventKind.FAILED_RULES, prefix, None, "ignore file unreadable"))
        return entered
