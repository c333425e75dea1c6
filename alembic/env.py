"""Alembic environment for bm-sync.

Two ways in: the application hands over an open connection in
`config.attributes["connection"]` (migrations run when a database is opened); the `alembic`
command line builds an async engine from `-x url=...`, `$BM_DATABASE_URL` or `./memory.db`.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from alembic import context
from bm_sync.db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return (context.get_x_argument(as_dictionary=True).get("url")
            or os.environ.get("BM_DATABASE_URL") or "sqlite+aiosqlite:///./memory.db")


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_from_command_line() -> None:
    engine = async_engine_from_config({"sqlalchemy.url": _url()}, prefix="sqlalchemy.",
                                      poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_on)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run_on(given)
else:
    asyncio.run(run_from_command_line())
