"""Helpers of the search tests: a fixture over both databases, and the exactness oracle.

`database` gives each test SQLite (the default database in the notes folder: None) and a fresh
PostgreSQL database on the test server (tests/postgres.py; a test that cannot get it fails).
The oracle (`assert_index_exact`) checks the search index against the notes on disk: one
document per entity and per tracked file, each holding the file's current path and body, and
an index holding exactly those documents' words (SQLite: every word instance of the FTS5 index
against a fresh index built from the stored values; PostgreSQL: every tsvector against one
computed again from them).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bm_sync.search import COLUMNS, SearchDoc, note_body, postgres_tsvector
from tests import postgres
from tests.helpers_tsv import tsvector_texts

BACKENDS = ["sqlite", "postgres"]


def new_database(backend: str) -> Iterator[str | None]:
    """None (SQLite in the notes folder) or the URL of a new PostgreSQL database, dropped
    afterwards."""
    if backend == "sqlite":
        yield None
        return
    url = postgres.server().create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(params=BACKENDS, name="database")
def database_fixture(request: pytest.FixtureRequest) -> Iterator[str | None]:
    yield from new_database(request.param)


def sync_args(database_url: str | None) -> list[str]:
    """The `bm` options that select the database."""
    return ["--db", database_url] if database_url else []


def rows(notes: Path, database_url: str | None, sql: str,
         parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one query on the notes' database (`?` placeholders on SQLite, `$1` on PostgreSQL)."""
    if database_url is None:
        with sqlite3.connect(notes / ".basic-memory" / "memory.db") as connection:
            return connection.execute(sql, parameters).fetchall()

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(database_url.replace("+asyncpg", "", 1))
        try:
            return [tuple(row) for row in await connection.fetch(sql, *parameters)]
        finally:
            await connection.close()

    result: list[tuple[Any, ...]] = postgres._run_coroutine(fetch())
    return result


def files_on_disk(notes: Path) -> set[str]:
    found = set()
    for folder, folders, files in os.walk(notes):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.update(Path(folder, name).relative_to(notes).as_posix() for name in files
                     if not name.startswith("."))
    return found


def assert_index_exact(notes: Path, database_url: str | None) -> None:
    """The search index describes exactly the files on disk (see the module doc)."""
    documents = rows(notes, database_url,
                     "SELECT e.file_path, s.z FROM search_text s "
                     "JOIN entity e ON e.id = s.entity_id")
    entities = {path for (path,) in rows(notes, database_url, "SELECT file_path FROM entity")}
    paths = [path for path, _z in documents]
    assert len(paths) == len(set(paths))
    assert set(paths) == entities == files_on_disk(notes)
    for path, z in documents:
        values = SearchDoc.unpack(bytes(z))
        assert values[COLUMNS.index("path")] == path
        if path.endswith(".md"):
            text = (notes / path).read_text(encoding="utf-8")
            assert values[COLUMNS.index("body")] == note_body(text)
    if database_url is None:
        _assert_fts_matches_documents(notes)
    else:
        _assert_tsvectors_match_documents(notes, database_url)


def _assert_fts_matches_documents(notes: Path) -> None:
    """Every (word, row, column, offset) of the FTS5 index equals a fresh index's."""
    connection = sqlite3.connect(notes / ".basic-memory" / "memory.db")
    try:
        connection.execute("CREATE VIRTUAL TABLE temp.live USING "
                           "fts5vocab('main', 'note_search', 'instance')")
        connection.execute(f"CREATE VIRTUAL TABLE temp.fresh USING fts5({', '.join(COLUMNS)}, "
                           "content='', tokenize='unicode61 remove_diacritics 2')")
        connection.execute("CREATE VIRTUAL TABLE temp.fresh_vocab USING "
                           "fts5vocab('temp', 'fresh', 'instance')")
        for entity_id, z in connection.execute("SELECT entity_id, z FROM search_text"):
            connection.execute(f"INSERT INTO temp.fresh (rowid, {', '.join(COLUMNS)}) "
                               f"VALUES (?{', ?' * len(COLUMNS)})",
                               (entity_id, *SearchDoc.unpack(z)))
        live = connection.execute("SELECT * FROM temp.live ORDER BY 1, 2, 3, 4").fetchall()
        fresh = connection.execute("SELECT * FROM temp.fresh_vocab ORDER BY 1, 2, 3, 4").fetchall()
    finally:
        connection.close()
    assert live == fresh


def _assert_tsvectors_match_documents(notes: Path, database_url: str) -> None:
    """Every tsvector equals the one built again from its stored values, both as the server
    prints them (one query; the new ones sent in the binary format, as the sync sends them)."""
    documents = rows(notes, database_url, "SELECT entity_id, z, tsv::text FROM search_text "
                                          "ORDER BY entity_id")
    expected = tsvector_texts([postgres_tsvector(SearchDoc.unpack(bytes(z)))
                               for _entity_id, z, _tsv in documents])
    assert [tsv for _entity_id, _z, tsv in documents] == expected
