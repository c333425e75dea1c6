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
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bm_sync.errors import DatabaseUnusable, DatabaseUrlInvalid

DATABASE_ENV = "BM_DATABASE_URL"
DATABASE_FILE = "memory.db"
SQLITE_ASYNC = "sqlite+aiosqlite"
SYNCHRONOUS_SQLITE = ("sqlite", "sqlite+pysqlite")
POSTGRES_ASYNC = "postgresql+asyncpg"
# What a PostgreSQL URL's query may hold: SQLAlchemy hands every query parameter to
# `asyncpg.connect` as a keyword (any other name is a TypeError at the first connection), plus
# the one it consumes itself. `?host=/run/postgresql` reaches a server on a unix socket.
POSTGRES_PARAMETERS = frozenset({
    "host", "port", "user", "password", "passfile", "service", "servicefile", "database",
    "timeout", "statement_cache_size", "max_cached_statement_lifetime",
    "max_cacheable_statement_size", "command_timeout", "ssl", "direct_tls",
    "target_session_attrs", "krbsrvname", "gsslib", "prepared_statement_cache_size"})
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
    if scheme == POSTGRES_ASYNC:
        _check_postgres_query(url)
    path = sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        raise DatabaseUnusable(f"the folder of database {str(path)!r} does not exist; "
                               "create it first (bm creates no folder for --db)")


def _check_driver(url: str, scheme: str) -> None:
    """A typo in the driver or dialect (`sqlite+aiosqlit`) is refused here, before the folder
    lock creates anything, not when SQLAlchemy fails to load it. Without SQLAlchemy: the driver
    module is looked up, not imported; only an unknown dialect name asks SQLAlchemy's registry."""
    dialect, _, driver = scheme.partition("+")
    if dialect in ("postgresql", "postgres") and driver in ("", "psycopg2", "psycopg"):
        raise DatabaseUrlInvalid(
            f"database URL {scheme}:// is not an async PostgreSQL URL; use "
            f"{POSTGRES_ASYNC}://{hide_password(url).partition('://')[2]} "
            "(pip install 'bm-sync[postgres]')")
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


def _check_postgres_query(url: str) -> None:
    """An unknown query parameter (a typo, or a libpq one asyncpg does not take, such as
    `sslmode`) is refused as the user's input, not left to fail inside the driver."""
    query = urlsplit(url).query
    unknown = sorted({name for name, _value in parse_qsl(query, keep_blank_values=True)}
                     - POSTGRES_PARAMETERS)
    if unknown:
        hint = " (asyncpg spells it ssl=require)" if "sslmode" in unknown else ""
        raise DatabaseUrlInvalid(
            f"database URL {scheme_of(url)}:// has unknown parameter(s) {', '.join(unknown)}"
            f"{hint}; known: {', '.join(sorted(POSTGRES_PARAMETERS))}")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in NUMERIC_PARAMETERS:
            try:
                typed_parameter(name, value)
            except ValueError as error:
                raise DatabaseUrlInvalid(f"database URL {scheme_of(url)}:// has "
                                         f"{name}={value!r}: {error}") from error


# The numeric query parameters, their type and least value. A URL's query is text, and
# asyncpg compares these as numbers: `statement_cache_size=0` as a string fails the first
# connection with a TypeError, and a negative cache size never returns. SQLAlchemy converts
# `port` and `prepared_statement_cache_size` itself (with a traceback for a non-number);
# `typed_parameter` converts them all.
NUMERIC_PARAMETERS: dict[str, tuple[type[int] | type[float], float]] = {
    "port": (int, 1), "statement_cache_size": (int, 0),
    "prepared_statement_cache_size": (int, 0), "max_cached_statement_lifetime": (int, 0),
    "max_cacheable_statement_size": (int, 0), "timeout": (float, 0.001),
    "command_timeout": (float, 0.001)}
# The settings that say "behind a transaction-pooling proxy" at 0 (`behind_pooler`):
# SQLAlchemy's, which docs/deploy.md names, and asyncpg's own.
POOLED_PARAMETER = "prepared_statement_cache_size"
POOLED_PARAMETERS = (POOLED_PARAMETER, "statement_cache_size")


def typed_parameter(name: str, value: str) -> object:
    """A query parameter's value as asyncpg takes it: a number for `NUMERIC_PARAMETERS`
    (ValueError with the reason when it is not one, or too small), the text otherwise."""
    if name not in NUMERIC_PARAMETERS:
        return value
    kind, least = NUMERIC_PARAMETERS[name]
    try:
        number = kind(value.strip())
    except ValueError:
        raise ValueError(f"not {'an integer' if kind is int else 'a number'}") from None
    if number < least:
        raise ValueError(f"must be at least {least:g}")
    return number
# How long a statement waits for another session's lock (SQLite's busy timeout, PostgreSQL's
# lock_timeout) before it fails with one line.
LOCK_TIMEOUT_MS = 10_000


def postgres_connect_arguments(url: str) -> dict[str, Any]:
    """`asyncpg.connect`'s keywords for a `postgresql+asyncpg://` URL, as SQLAlchemy's asyncpg
    dialect makes them (user, password, host, port, database, then every query parameter), for
    the readers that use asyncpg without SQLAlchemy."""
    parts = urlsplit(url)
    arguments: dict[str, Any] = {}
    if parts.username:
        arguments["user"] = unquote(parts.username)
    if parts.password is not None:
        arguments["password"] = unquote(parts.password)
    if parts.hostname:
        arguments["host"] = unquote(parts.hostname)
    if parts.port is not None:
        arguments["port"] = parts.port
    if parts.path.strip("/"):
        arguments["database"] = unquote(parts.path.lstrip("/"))
    arguments.update((name, typed_parameter(name, value))
                     for name, value in parse_qsl(parts.query, keep_blank_values=True))
    arguments.pop(POOLED_PARAMETER, None)  # SQLAlchemy's own
    if behind_pooler(url):
        # Unnamed statements only (see `behind_pooler`); no startup setting: the reads
        # wait for a lock as the server's default says.
        arguments["statement_cache_size"] = 0
    else:
        # As the engine's connections (db/engine.py): never wait for another session's
        # lock forever.
        arguments["server_settings"] = {"lock_timeout": str(LOCK_TIMEOUT_MS)}
    return arguments


def behind_pooler(url: str) -> bool:
    """Whether the URL says it goes through a transaction-pooling proxy (PgBouncer with
    `pool_mode = transaction`): `?prepared_statement_cache_size=0`, SQLAlchemy's documented
    setting for it (or `statement_cache_size=0`, asyncpg's). A pooler hands each transaction
    to any of its server connections, so a statement prepared in one transaction is not there
    in the next, and two clients' names collide on one server connection; and PgBouncer
    refuses a startup parameter it does not know (`lock_timeout`). No reliable way to detect
    a pooler from the client exists (it forwards the server's own parameters), hence a
    setting the user writes."""
    return any(name in POOLED_PARAMETERS and value.strip() == "0"
               for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True))


def hide_password(url: str) -> str:
    """`url` as it may be printed: a password in it replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)
                          ).geturl()


def scheme_of(url: str) -> str:
    return url.partition("://")[0]


def _is_plugin_dialect(scheme: str) -> bool:
    from sqlalchemy.dialects import registry

    try:
        registry.load(scheme.replace("+", "."))
    except Exception:  # NoSuchModuleError, or a plugin that fails to load
        return False
    return True
