"""Which notes folder a path belongs to, and a path as the database records it.

Used by every command, like git finds its repository: the nearest folder upward holding
`.basic-memory/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bm_sync.detector import STATE_DIR, StatusReport
from bm_sync.errors import PathOutsideRoot


def find_root(target: str | os.PathLike[str]) -> Path:
    """The notes folder `target` belongs to: the nearest folder upward that holds
    `.basic-memory/` (the target itself may be deleted), else the target if it is a folder,
    else its folder (then the caller finds no sync has run there)."""
    start = Path(os.path.abspath(target))
    for folder in (start, *start.parents):
        if (folder / STATE_DIR).is_dir():
            return folder
    return start if start.is_dir() else start.parent


def relative_path(root: Path, path: str | os.PathLike[str]) -> str:
    """`path` as recorded: relative to `root`, `/`-separated, normalised (`./a/../a/x.md` is
    `a/x.md`). An absolute path must lie inside `root`; a relative one is read against the
    working directory when that is inside `root`, else against `root` itself."""
    candidate = Path(path)
    if candidate.is_absolute():
        return _inside(root, candidate, path)
    absolute = Path(os.path.abspath(candidate))
    try:
        return _inside(root, absolute, path)
    except PathOutsideRoot:
        return _inside(root, root / candidate, path)


def _inside(root: Path, absolute: Path, given: str | os.PathLike[str]) -> str:
    # Both sides resolved: a folder reached through a symlink is the same folder (the path
    # may name a deleted file: realpath resolves the part that exists).
    relative = os.path.relpath(os.path.realpath(absolute), os.path.realpath(root))
    if relative == os.curdir or relative.split(os.sep, 1)[0] == os.pardir:
        raise PathOutsideRoot(f"{os.fspath(given)} is not a file inside the notes folder {root}")
    return Path(relative).as_posix()


def scope_of(root: Path, target: str | os.PathLike[str]) -> str | None:
    """What `target` narrows a report of `root` to: its path relative to `root`
    (`/`-separated), or None when it is the root itself or lies outside it."""
    prefix = os.path.relpath(os.path.realpath(target), os.path.realpath(root))
    if prefix == os.curdir or prefix.split(os.sep, 1)[0] == os.pardir:
        return None
    return Path(prefix).as_posix()


def in_scope(scope: str, path: str) -> bool:
    """Whether `path` (as recorded) is `scope` or lies inside it."""
    return path == scope or path.startswith(scope + "/")


def narrow(report: StatusReport, scope: str,
           recorded_paths: Iterable[bytes] | None = None) -> None:
    """Keep in `report` only the paths at or inside `scope`, a file or folder of the notes
    (a command run in a subfolder reports that subfolder; a move counts if either end is
    inside).

    With `recorded_paths` (the paths the index recorded when the report was made),
    `unchanged` counts the recorded files inside `scope` that the report does not list as
    modified, deleted, moved away or failed; without them it is left as it was.
    """
    report.added = [path for path in report.added if in_scope(scope, path)]
    report.modified = [path for path in report.modified if in_scope(scope, path)]
    report.deleted = [path for path in report.deleted if in_scope(scope, path)]
    report.moved = [(old, new) for old, new in report.moved
                    if in_scope(scope, old) or in_scope(scope, new)]
    report.failed = [failure for failure in report.failed if in_scope(scope, failure.path)]
    if recorded_paths is None:
        return
    changed = {*report.modified, *report.deleted, *(old for old, _new in report.moved)}
    failed = [failure.path for failure in report.failed]
    report.unchanged = sum(
        1 for raw in recorded_paths
        if in_scope(scope, path := os.fsdecode(raw)) and path not in changed
        and not any(in_scope(failure, path) for failure in failed))
