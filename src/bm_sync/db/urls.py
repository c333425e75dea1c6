"""Database URLs: which one a folder uses, and the file behind a SQLite URL.

No SQLAlchemy here: the no-change sync reads a SQLite database with the stdlib driver and must
find its file without importing it.
"""

from __future__ import annotations

import os
from pathlib import Path

DATABASE_ENV = "BM_DATABASE_URL"
DATABASE_FILE = "memory.db"


def database_url(state_dir: Path, given: str | None = None) -> str:
    """`given`, else `$BM_DATABASE_URL`, else SQLite in the folder's state directory
    (`<root>/.basic-memory/memory.db`)."""
    url = given or os.environ.get(DATABASE_ENV)
    if url:
        return url
    return f"sqlite+aiosqlite:///{state_dir / DATABASE_FILE}"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and for in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    _scheme, _, rest = url.partition(":///")
    rest = rest.split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)
