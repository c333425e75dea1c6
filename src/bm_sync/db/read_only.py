"""Opening a SQLite file for reading only, shared by the two readers (`db.state` through the
stdlib driver, `db.engine.open_read_only` through SQLAlchemy). Stdlib only: the no-change
sync path imports it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


def read_only_uri(path: Path, *, immutable: bool = False) -> str:
    """The SQLite URI that opens `path` for reading only. A URI, so the path is
    percent-encoded: `#` or `?` in a folder name would otherwise end it. `immutable`: for a
    WAL database in a folder this user cannot write (its `-shm` cannot be made), where SQLite
    refuses even a read-only open; it then reads the file without locking."""
    return f"file:{quote(str(path))}?mode=ro{'&immutable=1' if immutable else ''}"


def cannot_open(message: str) -> bool:
    """Whether SQLite's `message` is one a read-only open of a WAL database gives where its
    `-shm` cannot be made (a read-only mount; a folder of another user): then `immutable`
    is the way to read it."""
    lowered = message.lower()
    return "unable to open" in lowered or "readonly database" in lowered
