"""Which notes folder a path belongs to, and a path as the database records it.

Used by every command, like git finds its repository: the nearest folder upward holding
`.basic-memory/`.
"""

from __future__ import annotations

import os
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


def narrow(report: StatusReport, root: Path, target: str | os.PathLike[str]) -> None:
    """Keep in `report` only the paths at or inside `target`, a file or folder within `root`
    (a command run in a subfolder reports that subfolder; a move counts if either end is
    inside). `unchanged` still counts the whole folder: unchanged files are never listed."""
    prefix = os.path.relpath(os.path.realpath(target), os.path.realpath(root))
    if prefix == os.curdir or prefix.split(os.sep, 1)[0] == os.pardir:
        return
    named = Path(prefix).as_posix()
    folder = named + "/"

    def inside(path: str) -> bool:
        return path == named or path.startswith(folder)

    report.added = [path for path in report.added if inside(path)]
    report.modified = [path for path in report.modified if inside(path)]
    report.deleted = [path for path in report.deleted if inside(path)]
    report.moved = [(old, new) for old, new in report.moved if inside(old) or inside(new)]
    report.failed = [failure for failure in report.failed if inside(failure.path)]
