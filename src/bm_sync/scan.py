"""The streaming walk: every regular file under the root, in git index order, with its lstat.

Why index order: the index is sorted bytewise by path, so a walk that yields paths in the same
order lets the detector merge the two streams like a sorted merge join, holding neither the tree
nor the index as a dict. Inside each folder the names are sorted with folders keyed as
`name/`, which makes the depth-first walk produce exactly the bytewise order of full paths.

Paths are bytes end to end (no decoding on the hot path; undecodable names survive). Symlinks
and special files are not followed nor tracked, so a link loop is harmless. Problems are events,
not exceptions: an unreadable folder yields `FAILED_DIR` (its recorded entries must be kept),
a folder whose `.gitignore` cannot be read `FAILED_RULES` (the same, reported through the
rules' errors), a name whose type cannot be read `FAILED_ENTRY` (it may be a file or a folder,
so both are kept), an unreadable file `FAILED`. A file that vanishes between listing and lstat
is simply absent.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from enum import Enum
from typing import Any, NamedTuple

from bm_sync.errors import describe_os_error
from bm_sync.ignore import ALWAYS_SKIPPED, GITIGNORE, IgnoreRules


class EventKind(Enum):
    FILE = 1
    FAILED = 2
    FAILED_DIR = 3
    FAILED_RULES = 4
    FAILED_ENTRY = 5


class ScanEvent(NamedTuple):
    """`path` is root-relative bytes; for FAILED_DIR and FAILED_RULES it is a prefix (ending
    with `/`, or empty for the root).

    `stat_result` is set for FILE, `error` (one line) for the failures. The walk yields plain
    tuples of this shape (building a named tuple per file costs more than the comparison).
    """

    kind: EventKind
    path: bytes
    stat_result: os.stat_result | None = None
    error: str | None = None


# A scan event as the walk yields it: the fields of `ScanEvent`, as a plain tuple.
ScanTuple = tuple[EventKind, bytes, "os.stat_result | None", "str | None"]
# The ignore-rule frames in force in a folder (`IgnoreRules.enter`).
Frames = tuple[Any, ...]


def walk(root: bytes, rules: IgnoreRules, *, start: bytes = b"",
         frames: Frames = ()) -> Iterator[ScanTuple]:
    """Yield the scan events of the tree under `root` (an absolute bytes path).

    `start` ("a/b/", ending with a slash) walks only that folder, under the ignore `frames`
    of its ancestors (what an explicit path source does for a reported folder).
    """
    if rules.root_unreadable:
        yield EventKind.FAILED_RULES, b"", None, "ignore file unreadable"
        return
    folder = os.path.join(root, start.rstrip(b"/")) if start else root
    opened = _open_folder(folder, start, rules, frames)
    if isinstance(opened, ScanEvent):
        yield opened.kind, opened.path, opened.stat_result, opened.error
        return
    stack = [opened]
    is_ignored = rules.is_ignored
    fsdecode = os.fsdecode
    S_ISREG = stat.S_ISREG
    FILE, FAILED = EventKind.FILE, EventKind.FAILED
    check_rules = rules.has_root_rules
    default_last, default_first = rules.default_gate
    while stack:
        prefix, frames, entries = stack[-1]
        for _sort_key, name, dir_entry, is_dir in entries:
            path = prefix + name
            if is_dir is None:  # type unknown: the third item is the reason, not an entry
                if not (is_ignored(frames, fsdecode(path), False)
                        and is_ignored(frames, fsdecode(path), True)):
                    yield EventKind.FAILED_ENTRY, path, None, dir_entry
                continue
            if frames or check_rules:
                if is_ignored(frames, fsdecode(path), is_dir):
                    continue
            elif (name[-1] in default_last or name[0] in default_first) and is_ignored(
                    frames, fsdecode(path), is_dir):
                continue
            if is_dir:
                opened = _open_folder(dir_entry.path, path + b"/", rules, frames)
                if isinstance(opened, ScanEvent):
                    yield opened.kind, opened.path, opened.stat_result, opened.error
                    continue
                stack.append(opened)
                break
            try:
                stat_result = dir_entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                yield FAILED, path, None, describe_os_error(error)
                continue
            if S_ISREG(stat_result.st_mode):
                yield FILE, path, stat_result, None
        else:
            stack.pop()


# (sort key, name, the entry, is a folder); for a name of unknown type, the entry is the reason
# it could not be typed and the last item is None.
_Item = tuple[bytes, bytes, Any, "bool | None"]
_Listing = tuple[bytes, Frames, Iterator[_Item]]


def _open_folder(
    folder: bytes, prefix: bytes, rules: IgnoreRules, frames: Frames
) -> _Listing | ScanEvent:
    """List one folder in index order and load its `.gitignore`; a failure is a FAILED_DIR
    (or FAILED_RULES when only the `.gitignore` is unreadable)."""
    try:
        with os.scandir(folder) as iterator:
            dir_entries = list(iterator)
    except OSError as error:
        return ScanEvent(EventKind.FAILED_DIR, prefix, error=describe_os_error(error))
    listing: list[_Item] = []
    at_root = not prefix
    include_hidden = rules.include_hidden
    gitignore = None
    for dir_entry in dir_entries:
        name = dir_entry.name
        if name == GITIGNORE:
            gitignore = dir_entry.path
        if at_root and name in ALWAYS_SKIPPED:
            continue
        if name[:1] == b"." and not include_hidden:
            continue
        try:
            # A symlink is neither a folder here (not followed) nor, to lstat, a regular file:
            # it falls out of the walk without a call of its own.
            is_dir = dir_entry.is_dir(follow_symlinks=False)
        except OSError as error:
            # Unknown type (DT_UNKNOWN and lstat failed): dropping the name would turn it into
            # deletions. Sorted as a file name, which comes before everything below `name/`;
            # the walk yields FAILED_ENTRY with the reason in place of the entry.
            listing.append((name, name, describe_os_error(error), None))
            continue
        listing.append((name + b"/" if is_dir else name, name, dir_entry, is_dir))
    listing.sort()  # by the first item, the sort key: names are unique within a folder
    entered = rules.enter(frames, os.fsdecode(prefix), gitignore)
    if entered is None:
        return ScanEvent(EventKind.FAILED_RULES, prefix, error="ignore file unreadable")
    return prefix, entered, iter(listing)
