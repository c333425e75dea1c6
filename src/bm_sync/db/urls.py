"""Database URLs: which one a folder uses, and the file behind a SQLite URL.

No SQLAlchemy here: the no-change sync reads a SQLite database with the stdlib driver and must
find its file without importing it. Paths go into URLs percent-encoded (a folder named
`C# notes`, `what?` or `50%25 done` stays one path) and come out decoded, as SQLAlchemy
decodes them.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote, unquote

from bm_sync.errors import DatabaseUnusable, DatabaseUrlInvalid

DATABASE_ENV = "BM_DATABASE_URL"
DATABASE_FILE = "memory.db"
SQLITE_ASYNC = "sqlite+aiosqlite"
SYNCHRONOUS_SQLITE = ("sqlite", "sqlite+pysqlite")
POSTGRES_ASYNC = "postgresql+asyncpg"
# SQLAlchemy's own dialects: any other name must come from an installed plugin.
BUILTIN_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql")


def database_url(state_dir: Path, given: str | None = None) -> str:
    """`given`, else `$BM_DATABASE_URL` (both checked by `check_url`), else SQLite in the
    folder's state directory (`<root>/.basic-memory/memory.db`)."""
    url = given or os.environ.get(DATABASE_ENV)
    if url:
        check_url(url)
        return url
    return sqlite_url(state_dir / DATABASE_FILE)


def sqlite_url(path: Path) -> str:
    """The async SQLite URL of a database file, its path percent-encoded."""
    return f"{SQLITE_ASYNC}:///{quote(str(path), safe='/')}"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and for in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    _scheme, _, rest = url.partition(":///")
    rest = unquote(rest.split("?", 1)[0])
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def check_url(url: str) -> None:
    """Refuse, before anything is created, a URL that cannot work: not a URL, SQLite through a
    synchronous driver, or a SQLite file in a folder that does not exist (bm creates no folder
    for a URL it was given: a typo must not become a directory tree)."""
    scheme, separator, _rest = url.partition("://")
    if not separator or not scheme:
        raise DatabaseUrlInvalid(f"database URL {url!r} is not a URL "
                                 f"(e.g. {SQLITE_ASYNC}:////path/to/memory.db)")
    if scheme in SYNCHRONOUS_SQLITE:
        raise DatabaseUrlInvalid(f"database URL {url!r} uses a synchronous driver; use "
                                 f"{SQLITE_ASYNC}://{url.partition('://')[2]}")
    _check_driver(url, scheme)
    path = sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        raise DatabaseUnusable(f"the folder of database {str(path)!r} does not exist; "
                               "create it first (bm creates no folder for --db)")


def _check_driver(url: str, scheme: str) -> None:
    """A typo in the driver or dialect (`sqlite+aiosqlit`) is refused here, before the folder
    lock creates anything, not when SQLAlchemy fails to load it. Without SQLAlchemy: the driver
    module is looked up, not imported; only an unknown dialect name asks SQLAlchemy's registry."""
    dialect, _, driver = scheme.partition("+")
    if not driver:
        raise DatabaseUrlInvalid(
            f"database URL {url.split('://')[0]}:// names no async driver; use e.g. "
            f"{SQLITE_ASYNC}:// or {POSTGRES_ASYNC}://")
    if dialect not in BUILTIN_DIALECTS and not _is_plugin_dialect(scheme):
        raise DatabaseUrlInvalid(f"database URL {scheme}:// names an unknown database "
                                 f"{dialect!r} (e.g. {SQLITE_ASYNC}:// or {POSTGRES_ASYNC}://)")
    if find_spec(driver) is None:
        raise DatabaseUrlInvalid(
            f"database URL {scheme}:// needs the driver {driver!r}, which is not installed "
            f"(SQLite: {SQLITE_ASYNC}://; PostgreSQL: {POSTGRES_ASYNC}://, "
            "pip install 'bm-sync[postgres]')")


def _is_plugin_dialect(scheme: str) -> bool:
    from sqlalchemy.dialects import registry

    try:
        registry.load(scheme.replace("+", "."))
    except Exception:  # NoSuchModuleError, or a plugin that fails to load
        return False
    return True
