"""Which project a notes folder is. Its identity travels with the folder, not its path.

The index's metadata and the project row hold the same id (a uuid). A folder moved or
renamed (`mv notes Notes`), or reached through a symlink (the engine resolves its root
first) or a bind mount (the same folder, by device and inode), finds its row again by that
id and keeps its entity ids and history; the row's recorded root follows the folder. A copy
(`cp -a notes notes2`) carries the original's id too: when the row's recorded root still
exists and its own index holds the same id, the copy is another folder, and gets a fresh id
and a project of its own (synced as new).

The row also keeps the identity (device and inode) of the folder first synced under that id
(`folder_identity`). A folder with that identity is the original wherever it now is, even when
a copy synced first and took the project (`mv notes n2; cp -a n2 copy; bm sync copy; bm sync
n2`): the original reclaims it, and the copy is told apart at its next sync. A folder with
another identity keeps the id when the recorded root is gone (restored from a backup, moved
to another file system), as before.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from bm_sync.db.state import StoredProject, StoredState
from bm_sync.detector import INDEX_FILE, STATE_DIR
from bm_sync.errors import IndexCorrupt
from bm_sync.index_format import IndexSnapshot, read_index

PROJECT_META = "project_id"  # the index metadata key of the project's id


@dataclass(frozen=True)
class Identity:
    """The project this folder is: `uuid` its id, `project` its stored row (None: a row is
    made on the first write); `copy_of` the folder whose id a copy carried."""

    uuid: str
    project: StoredProject | None = None
    copy_of: Path | None = None


def recorded_id(snapshot: IndexSnapshot | None) -> str | None:
    """The project id the index recorded (None before the first sync that records one)."""
    value = snapshot.meta.get(PROJECT_META) if snapshot is not None else None
    return value if isinstance(value, str) and value else None


def folder_identity(folder: Path) -> str | None:
    """`DEV:INODE` of a folder (None if it cannot be looked at): what stays the same when a
    folder is renamed or moved within its file system, and differs for a copy."""
    try:
        found = os.stat(folder)
    except OSError:
        return None
    return f"{found.st_dev}:{found.st_ino}"


def identify(root: Path, index_id: str | None, stored: StoredState) -> Identity:
    """The folder's identity among the rows `stored` found (see the module doc)."""
    by_id, by_root = stored.by_id, stored.by_root
    copy_of = None
    if index_id is not None and by_id is not None:
        recorded_root = Path(by_id.root_path)
        original = by_id.root_identity is not None and (
            by_id.root_identity == folder_identity(root))
        if (recorded_root == root or original or _same_folder(recorded_root, root)
                or not _holds_id(recorded_root, index_id)):
            return Identity(index_id, by_id)
        copy_of = recorded_root
    if by_root is not None:  # the row of this path (a copy synced before has its own id)
        return Identity(by_root.uuid or uuid.uuid4().hex, by_root)
    if index_id is not None and copy_of is None:
        return Identity(index_id)  # the index knows its id; this database does not (yet)
    return Identity(uuid.uuid4().hex, copy_of=copy_of)


def _same_folder(recorded_root: Path, root: Path) -> bool:
    """Whether the recorded root is this very folder reached by another path (a bind mount,
    `mount --bind notes ro`): the same folder, not a copy."""
    try:
        return recorded_root.is_absolute() and recorded_root.samefile(root)
    except OSError:
        return False


def _holds_id(folder: Path, project_id: str) -> bool:
    """Whether `folder` is a notes folder whose index records `project_id`. A relative
    recorded root (`db.runs.vacated_root`: another folder took its path) holds nothing."""
    if not folder.is_absolute():
        return False
    try:
        return recorded_id(read_index(folder / STATE_DIR / INDEX_FILE)) == project_id
    except (IndexCorrupt, OSError):
        return False
