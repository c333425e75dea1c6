"""What PostgreSQL needs beyond SQLAlchemy's defaults: text without NUL bytes, one migrator at
a time, and a lost connection noticed once and for all.

- PostgreSQL's `text` cannot hold U+0000 (SQLite's can): a NUL in a title, an observation, a
  link or a frontmatter value would fail its whole batch. Every string parameter sent to the
  server has its NULs replaced by U+FFFD (the replacement character), in one place, so no
  write path can forget it.
- Two first syncs into one empty database (two folders, one shared server) would both see no
  `alembic_version` and both run the migrations. The migration transaction takes a
  transaction-level advisory lock first, so the second waits, then finds the database at head.
- A connection that breaks mid-sync (server stopped or restarted, session terminated) makes
  the engine "lost": `ProjectDatabase` then refuses every new session with
  `DatabaseConnectionLost`, so the run stops instead of reconnecting half-way and applying the
  rest of it as if nothing happened.
- Behind a transaction-pooling proxy (PgBouncer, `pool_mode = transaction`; the URL says so
  with `?prepared_statement_cache_size=0`, `urls.behind_pooler`) each transaction may run on
  another server connection, shared with other clients: statements are unnamed and never
  cached (SQLAlchemy's own statement cache off, asyncpg's too), and the lock
  timeout, which PgBouncer refuses as a startup parameter, is set by `SET LOCAL` at the start
  of each transaction instead.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bm_sync.db.urls import LOCK_TIMEOUT_MS, behind_pooler, typed_parameter

NUL = "\x00"
REPLACEMENT = "\ufffd"
# pg_advisory_xact_lock's key for "migrating bm-sync's schema": the bytes of "bm-sync!".
MIGRATION_LOCK_KEY = int.from_bytes(b"bm-sync!", "big") - (1 << 63)
# SQLSTATE classes and codes that mean the session is gone: 08 connection exception,
# 57P01-57P03 administrator/crash shutdown, cannot connect now.
LOST_STATES = ("08", "57P01", "57P02", "57P03")

_lost: weakref.WeakSet[Engine] = weakref.WeakSet()


def prepare(engine: AsyncEngine) -> None:
    """Install the NUL scrubbing and the lost-connection watch on a PostgreSQL engine."""
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _scrub_parameters, retval=True)
    event.listen(sync_engine, "handle_error", _watch_connection)
    event.listen(sync_engine, "do_connect", _typed_parameters)
    if behind_pooler(engine.url.render_as_string(hide_password=False)):
        event.listen(sync_engine, "do_connect", _pooled_connect)
        event.listen(sync_engine, "begin", _local_lock_timeout)


def _typed_parameters(_dialect: Any, _record: Any, _arguments: Any,
                      parameters: dict[str, Any]) -> None:
    """The URL's numeric parameters as numbers (`urls.NUMERIC_PARAMETERS`): SQLAlchemy hands
    asyncpg the query's text as it is."""
    for name, value in list(parameters.items()):
        if isinstance(value, str):
            parameters[name] = typed_parameter(name, value)


def _pooled_connect(_dialect: Any, _record: Any, _arguments: Any,
                    parameters: dict[str, Any]) -> None:
    """Connect for a transaction-pooling proxy (module doc): no startup setting it would
    refuse, and no statement cache, SQLAlchemy's or asyncpg's. With its cache off, asyncpg
    (0.31 and later) prepares every statement unnamed: it lives until the next one on that
    server connection, inside our transaction, so no name can collide with another
    client's and none is left behind on a server connection the pooler hands on."""
    settings = {name: value for name, value in parameters.get("server_settings", {}).items()
                if name != "lock_timeout"}
    if settings:
        parameters["server_settings"] = settings
    else:
        parameters.pop("server_settings", None)
    parameters["statement_cache_size"] = 0
    parameters["prepared_statement_cache_size"] = 0


def _local_lock_timeout(connection: Connection) -> None:
    """The lock timeout the direct connections get at startup, for this transaction only
    (the driver's cursor: the SQLAlchemy connection is between `begin` and its transaction
    here). The driver opens the transaction with this statement."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
    finally:
        cursor.close()


def lock_migrations(connection: Connection) -> None:
    """Hold the migration lock until the surrounding transaction ends (PostgreSQL only)."""
    if connection.dialect.name == "postgresql":
        # Another first sync may migrate for longer than the lock timeout: wait it out.
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": MIGRATION_LOCK_KEY})


def connection_lost(engine: AsyncEngine) -> bool:
    """Whether a connection of `engine` broke since it was created."""
    return engine.sync_engine in _lost


def is_connection_lost(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the connection to the server is gone, as
    opposed to a problem with one statement or one row."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError | BrokenPipeError):
            return True
        state = str(getattr(current, "sqlstate", "") or "")
        if state and state.startswith(LOST_STATES):
            return True
        if type(current).__name__ in ("ConnectionDoesNotExistError",
                                      "InternalClientError") and "closed" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def _watch_connection(context: ExceptionContext) -> None:
    if context.is_disconnect or is_connection_lost(context.original_exception):
        if context.engine is not None:
            _lost.add(context.engine)


def _scrub_parameters(_connection: Connection, _cursor: Any, statement: str,
                      parameters: Any, _context: Any, executemany: bool) -> tuple[str, Any]:
    if executemany and isinstance(parameters, list):
        return statement, [_scrub(row) for row in parameters]
    return statement, _scrub(parameters)


def _scrub(parameters: Any) -> Any:
    """`parameters` (a sequence or a mapping of one row) with NULs gone from its strings;
    the same object when there was none (the common case costs one scan)."""
    if isinstance(parameters, dict):
        if not any(isinstance(value, str) and NUL in value for value in parameters.values()):
            return parameters
        return {key: _clean(value) for key, value in parameters.items()}
    if isinstance(parameters, Sequence) and not isinstance(parameters, str):
        if not any(isinstance(value, str) and NUL in value for value in parameters):
            return parameters
        return type(parameters)(_clean(value) for value in parameters)  # type: ignore[call-arg]
    return parameters


def _clean(value: Any) -> Any:
    return value.replace(NUL, REPLACEMENT) if isinstance(value, str) else value
