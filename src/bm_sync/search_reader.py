"""Reading the search index of one folder: `SyncEngine.search` and `SyncEngine.show` delegate
to `SearchReader`, and the `bm search` fast path (`bm_sync.search_fast`) runs the same `find`
on its own connection. Reads only; a SQLite file through the stdlib driver, anything else
through SQLAlchemy.

A query's own work on 100k notes is a few milliseconds for most words (`db.search.rank`), so
what surrounds it matters as much: a reader keeps one connection for its life (opening one and
reading the schema cost more than a small query), and remembers the folder's project while the
index file and the database file are unchanged (finding it again reads the whole index: ~15 ms
at 100k notes) and the project's row still holds the same id.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bm_sync.db import search as search_rows
from bm_sync.db.search import Result
from bm_sync.db.urls import sqlite_file
from bm_sync.search import (
    WORD,
    Backlink,
    NoteNotFound,
    NoteView,
    ObservationView,
    RelationView,
    SearchDoc,
    SearchHit,
    SearchResult,
    SearchUnavailable,
    fold,
)
from bm_sync.search_query import Node, parse_query, query_terms, scope_query

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bm_sync.db.state import StoredState
    from bm_sync.identity import Identity

SNIPPET_TOKENS = 16
SEARCH_OFF = "search is off for this folder: run bm sync without --no-search"

Identify = Callable[[], Awaitable[tuple["StoredState", "Identity"]]]


class _ProjectChanged(Exception):
    """The remembered project's row no longer holds its id: find the project again."""


# -- the work of one query, on any driver ---------------------------------------------------


def find(query: search_rows.Query, node: Node, text: str, *, project_id: int, sqlite: bool,
         limit: int = 10, entity_type: str | None = None, tags: Sequence[str] = (),
         folder: str | None = None) -> SearchResult:
    """The result of the parsed query `node` (`text` as the user wrote it) in a project.
    `folder`: root-relative, only below it. `SearchUnavailable` when the project's notes
    have no documents (search turned off)."""
    if not search_rows.has_documents(query, project_id) and search_rows.has_entities(
            query, project_id):
        raise SearchUnavailable(SEARCH_OFF)
    # The project's token matches every document of a database holding one project: reading
    # its whole list costs 30-60% of a query there, and filters nothing.
    shared = search_rows.other_projects(query, project_id)
    scope = scope_query(project_id if shared else None, entity_type, tags,
                        None if folder in (None, ".") else folder)
    ranked = search_rows.rank(query, node, sqlite=sqlite, project_id=project_id, scope=scope,
                              limit=limit)
    return SearchResult(text, hits(query, node, ranked), "bounded" if ranked.bounded else "full")


def hits(query: search_rows.Query, node: Node, ranked: search_rows.Ranked) -> list[SearchHit]:
    """The ranked ids as hits: their entity rows, and a snippet of each body (only these)."""
    rows = search_rows.hit_rows(query, [entity_id for entity_id, _score in ranked.ids])
    found = []
    for entity_id, score in ranked.ids:
        row = rows.get(entity_id)
        if row is None:
            continue
        _id, path, title, permalink, entity_type, z = row
        body = SearchDoc.unpack(bytes(z))[1]
        found.append(SearchHit(path, title, permalink, entity_type, score,
                               make_snippet(body, node) if body else ""))
    return found


def make_snippet(text: str, node: Node, size: int = SNIPPET_TOKENS) -> str:
    """The window of `size` words of `text` holding the most distinct query words, matches in
    `[brackets]`, `…` where text was cut. Linear in the text."""
    exact, prefixes = query_terms(node)
    tokens = [(found.start(), found.end(), found.group()) for found in WORD.finditer(text)]
    if not tokens:
        return ""
    matched: list[tuple[int, str]] = []
    for index, (_start, _stop, token) in enumerate(tokens):
        folded = fold(token)
        if folded in exact or (prefixes and folded.startswith(prefixes)):
            matched.append((index, folded))
    best, best_score, left = 0, 0, 0
    for right in range(len(matched)):
        while matched[right][0] - matched[left][0] >= size:
            left += 1
        score = len({term for _index, term in matched[left:right + 1]})
        if score > best_score:
            best, best_score = max(0, min(matched[left][0] - 2, len(tokens) - size)), score
    end = min(len(tokens), best + size)
    marked = {index for index, _term in matched}
    pieces: list[str] = []
    cursor = tokens[best][0]
    for index in range(best, end):
        start, stop, token = tokens[index]
        pieces.append(text[cursor:start])
        pieces.append(f"[{token}]" if index in marked else token)
        cursor = stop
    snippet = " ".join("".join(pieces).split())
    return ("…" if best > 0 else "") + snippet + ("…" if end < len(tokens) else "")


def note_view(query: search_rows.Query, project_id: int, ref: str) -> NoteView:
    """`bm show`'s record of the one note `ref` names; `NoteNotFound` for none or several."""
    found = search_rows.find_entities(query, project_id, ref)
    if not found:
        raise NoteNotFound(f"no note is named {ref!r} (a path, permalink or title)")
    if len(found) > 1:
        raise NoteNotFound(f"{len(found)} notes are named {ref!r}: "
                           + ", ".join(str(row[1]) for row in found[:10]))
    entity = found[0]
    observations, relations, backlinks = search_rows.note_parts(query, project_id, entity)
    return NoteView(
        path=entity[1], title=entity[2], permalink=entity[3], type=entity[4],
        tags=tuple(json.loads(entity[5]) if entity[5] else ()),
        observations=[ObservationView(category, content,
                                      tuple(json.loads(tags) if tags else ()), context)
                      for category, content, tags, context in observations],
        relations=[RelationView(kind, target, target_path, context)
                   for kind, target, target_path, context in relations],
        backlinks=[Backlink(from_path, from_title, kind, bool(resolved))
                   for from_path, from_title, kind, resolved in backlinks])


def project_holds(query: search_rows.Query, project_id: int, uuid: str) -> bool:
    """Whether the project row `project_id` still holds the id `uuid`."""
    return list(query("SELECT uuid FROM project WHERE id = :id", {"id": project_id})) == [
        (uuid,)]


def _checked(work: Callable[[search_rows.Query, int], Result], project_id: int,
             uuid: str) -> Callable[[search_rows.Query], Result]:
    """`work` on a remembered project, after checking that its row still holds its id."""

    def run(query: search_rows.Query) -> Result:
        if not project_holds(query, project_id, uuid):
            raise _ProjectChanged
        return work(query, project_id)

    return run


# -- the reader ---------------------------------------------------------------------------------


class SearchReader:
    """Searches and shows the notes of one folder. `identify` finds the folder's project as
    a sync would (`SyncEngine._identify`); `close()` releases the connection."""

    def __init__(self, root: Path, database_url: str, index_path: Path,
                 identify: Identify) -> None:
        self.root = root
        self.database_url = database_url
        self.database_file = sqlite_file(database_url)
        self.index_path = index_path
        self.identify = identify
        # (index and database file signature, project id, project uuid)
        self._project: tuple[object, int, str] | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the connection is used from worker threads
        self._engine: AsyncEngine | None = None

    async def close(self) -> None:
        with self._lock:  # not while another search of this reader uses it in a thread
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def search(self, text: str, *, limit: int = 10, type: str | None = None,
                     tag: str | Sequence[str] | None = None,
                     path: str | None = None) -> SearchResult:
        """`SyncEngine.search`."""
        from bm_sync.roots import relative_path

        node = parse_query(text)
        tags = [tag] if isinstance(tag, str) else list(tag or ())
        folder = relative_path(self.root, path) if path else None
        sqlite = self.database_file is not None
        return await self._read(lambda query, project_id: find(
            query, node, text, project_id=project_id, sqlite=sqlite, limit=limit,
            entity_type=type, tags=tags, folder=folder))

    async def show(self, ref: str) -> NoteView:
        """`SyncEngine.show`."""
        from bm_sync.roots import relative_path

        if os.path.isabs(ref):
            ref = relative_path(self.root, ref)
        return await self._read(lambda query, project_id: note_view(query, project_id, ref))

    async def _read(self, work: Callable[[search_rows.Query, int], Result]) -> Result:
        """`work` on the folder's project; once more with the project found again when the
        remembered one changed under it."""
        for _attempt in (1, 2):
            signature = self._signature()
            if self._project is None or self._project[0] != signature:
                await self.close()  # the database file may be another one now
                project_id, uuid = await self._readable_project()
                self._project = (signature, project_id, uuid)
            try:
                return await self._run(_checked(work, *self._project[1:]))
            except _ProjectChanged:
                self._project = None
        raise SearchUnavailable(f"the project of {self.root} changed while it was read: "
                                "search again")

    def _signature(self) -> object:
        """What changes when the folder's project could: the index file and the database
        file (its identity and size)."""

        def stat(path: Path | None) -> tuple[int, int, int] | None:
            try:
                found = os.stat(path) if path is not None else None
            except OSError:
                return None
            return (found.st_ino, found.st_size, found.st_mtime_ns) if found else None

        return stat(self.index_path), stat(self.database_file)

    async def _readable_project(self) -> tuple[int, str]:
        """(id, uuid) of this folder's project, found as a sync would, in a database at this
        bm's revision; `SearchUnavailable` otherwise. Writes nothing."""
        from bm_sync.db import HEAD_REVISION

        if self.database_file is not None and not self.database_file.exists():
            raise SearchUnavailable(f"no sync has run in {self.root} yet")
        stored, identity = await self.identify()
        if stored.unusable:
            raise SearchUnavailable(stored.unusable)
        if identity.project is None:
            raise SearchUnavailable(f"no sync has run in {self.root} yet")
        if stored.revision != HEAD_REVISION:
            raise SearchUnavailable(f"the database is at revision {stored.revision}: "
                                    "run bm sync first")
        return identity.project.id, identity.project.uuid or identity.uuid

    async def _run(self, work: Callable[[search_rows.Query], Result]) -> Result:
        import asyncio  # here: the `bm search` fast path imports this module, not asyncio

        if self.database_file is not None:
            return await asyncio.to_thread(self._run_on_file, work)
        if self._engine is None:
            from bm_sync.db.engine import create_engine

            self._engine = create_engine(self.database_url)
        return await search_rows.run_on_engine(self._engine, work)

    def _run_on_file(self, work: Callable[[search_rows.Query], Result]) -> Result:
        assert self.database_file is not None
        with self._lock:
            if self._connection is None:
                self._connection = search_rows.connect_read_only(self.database_file,
                                                                 any_thread=True)
            connection = self._connection

            def query(sql: str, parameters: dict[str, Any]) -> list[Any]:
                return connection.execute(sql, parameters).fetchall()

            return work(query)
