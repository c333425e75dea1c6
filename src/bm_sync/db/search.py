"""The search index's SQL, for SQLite (FTS5) and PostgreSQL (tsvector + GIN).

SQLite: `note_search`, a contentless FTS5 table (the index only: 0.4x the markdown), and
`search_text(entity_id, project_id, z)`, the compressed values each row was indexed with: a
contentless table forgets a row only when given exactly those values, and snippets are cut
from them. `search_text.entity_id` references the entity without a cascade, so deleting an
entity whose search row was forgotten fails loudly instead of leaving words behind.
PostgreSQL: `search_text` also holds `tsv`, built in Python from words split and folded there
(`bm_sync.search.postgres_tsvector`) and sent in the binary format; rows are only ever
replaced whole.

The rowid of a document is its entity's id, so a move (same id) re-indexes one row. Writes run
inside the sync's batch transactions (`bm_sync.apply`). Reads go through a plain `Query`
callable, so the same SQL runs on the stdlib `sqlite3` driver (SQLite files, and the `bm
search` fast path) and on a SQLAlchemy connection. Ranking (`rank`): the head columns'
matches first, then every column's, the newest `SEARCH_CAP` of each ranked
(`SearchResult.ranking == "bounded"` when a kind had more); bm25 walks each phrase's doclist
for its IDF in every ranked statement, so: an unscored probe, the head statement, and the
all-columns one only when the head does not fill the page.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bm_sync.search import COLUMNS, SearchDoc, SearchQueryError, postgres_tsvector
from bm_sync.search_query import Node, positive, to_fts5, to_tsquery

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

Query = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]
Result = TypeVar("Result")

SEARCH_CAP = 1000
FTS_TABLE = "note_search"
TEXT_TABLE = "search_text"
# bm25 weights, in COLUMNS order: the title counts most, the filter column not at all.
BM25 = "bm25(note_search, 10.0, 1.0, 2.0, 5.0, 3.0, 1.0, 1.0, 0.0)"
PG_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"  # D, C, B, A

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS search_text ("
    " entity_id INTEGER NOT NULL PRIMARY KEY REFERENCES entity (id),"
    " project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,"
    " z BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_search_text_project ON search_text (project_id)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS note_search USING fts5("
    f" {', '.join(COLUMNS)}, content='', tokenize='unicode61 remove_diacritics 2')",
)
SQLITE_DROP = ("DROP TABLE IF EXISTS note_search", "DROP TABLE IF EXISTS search_text")
POSTGRES_DDL = (
    "CREATE TABLE IF NOT EXISTS search_text ("
    " entity_id INTEGER NOT NULL PRIMARY KEY REFERENCES entity (id) ON DELETE CASCADE,"
    " project_id INTEGER NOT NULL REFERENCES project (id) ON DELETE CASCADE,"
    " z BYTEA NOT NULL, tsv TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_search_text_tsv ON search_text USING gin (tsv)",
    "CREATE INDEX IF NOT EXISTS ix_search_text_project ON search_text (project_id)",
)
POSTGRES_DROP = ("DROP TABLE IF EXISTS search_text",)

_FTS_COLUMNS = ", ".join(COLUMNS)
_FTS_VALUES = ", ".join(f":v{index}" for index in range(len(COLUMNS)))
FTS_INSERT = f"INSERT INTO note_search (rowid, {_FTS_COLUMNS}) VALUES (:id, {_FTS_VALUES})"
FTS_DELETE = (f"INSERT INTO note_search (note_search, rowid, {_FTS_COLUMNS}) "
              f"VALUES ('delete', :id, {_FTS_VALUES})")
SQLITE_TEXT_INSERT = "INSERT INTO search_text (entity_id, project_id, z) VALUES (:id, :project, :z)"
# The document's tsvector arrives in PostgreSQL's binary format (`postgres_tsvector`): the
# server neither parses the words nor a text form (a tenant's documents: ~0.25 s of the
# server's CPU, against ~0.6 s as a literal and ~1.2 s through to_tsvector).
POSTGRES_INSERT = (
    "INSERT INTO search_text (entity_id, project_id, z, tsv) VALUES (:id, :project, :z,"
    " CAST(:tsv AS tsvector))"
    " ON CONFLICT (entity_id) DO UPDATE SET project_id = excluded.project_id,"
    " z = excluded.z, tsv = excluded.tsv")
# asyncpg connections that send (and return) tsvector values as bytes in the binary format.
_binary_tsvector: weakref.WeakSet[Any] = weakref.WeakSet()


def ddl(dialect: str) -> tuple[str, ...]:
    """The statements that create the search tables (migration 0008, and a repair)."""
    return SQLITE_DDL if dialect == "sqlite" else POSTGRES_DDL


# -- writes (inside a sync's transaction) -----------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def delete_docs(session: AsyncSession, entity_ids: Sequence[int]) -> None:
    """Forget the documents of these entities (those that have one)."""
    from sqlalchemy import bindparam, text

    from bm_sync.db.batches import chunks

    sqlite = _dialect(session) == "sqlite"
    for chunk in chunks(session, list(entity_ids)):
        if sqlite:
            rows = (await session.execute(
                text("SELECT entity_id, z FROM search_text WHERE entity_id IN :ids")
                .bindparams(bindparam("ids", expanding=True)), {"ids": chunk})).all()
            if not rows:
                continue
            await session.execute(text(FTS_DELETE), [
                _fts_row(entity_id, SearchDoc.unpack(z)) for entity_id, z in rows])
        await session.execute(text("DELETE FROM search_text WHERE entity_id IN :ids")
                              .bindparams(bindparam("ids", expanding=True)), {"ids": chunk})


async def ids_at(session: AsyncSession, project_id: int, paths: Sequence[str]) -> dict[str, int]:
    """path -> entity id, for those of `paths` that have an entity."""
    from sqlalchemy import select

    from bm_sync.db.batches import chunks
    from bm_sync.db.models import Entity

    found: dict[str, int] = {}
    for chunk in chunks(session, list(paths)):
        rows = await session.execute(select(Entity.file_path, Entity.id).where(
            Entity.project_id == project_id, Entity.file_path.in_(chunk)))
        found.update({path: entity_id for path, entity_id in rows})
    return found


async def delete_docs_at(session: AsyncSession, project_id: int, paths: Sequence[str]) -> None:
    """Forget the documents of the entities at these paths (before they are deleted, or
    replaced by a move onto their path)."""
    ids = await ids_at(session, project_id, paths)
    if ids:
        await delete_docs(session, list(ids.values()))


async def replace_docs(session: AsyncSession, project_id: int,
                       docs: dict[int, SearchDoc]) -> None:
    """Index these entities' documents, replacing what each had (idempotent: after a crash
    the same change comes again)."""
    from sqlalchemy import text

    if not docs:
        return
    if _dialect(session) == "sqlite":
        await delete_docs(session, list(docs))
        await session.execute(text(FTS_INSERT), [
            _fts_row(entity_id, doc.values) for entity_id, doc in docs.items()])
        await session.execute(text(SQLITE_TEXT_INSERT), [
            {"id": entity_id, "project": project_id, "z": doc.z}
            for entity_id, doc in docs.items()])
        return
    await _send_tsvector_binary(session)
    await session.execute(text(POSTGRES_INSERT), [
        {"id": entity_id, "project": project_id, "z": doc.z,
         "tsv": postgres_tsvector(doc.values)}
        for entity_id, doc in docs.items()])


async def _send_tsvector_binary(session: AsyncSession) -> None:
    """Make the transaction's asyncpg connection send tsvector parameters as the bytes they
    are given, in the binary format (asyncpg's own codec sends text), once per connection,
    before any statement with a tsvector parameter is prepared on it (a prepared statement
    keeps the codecs of its time). Values read back as tsvector are bytes too; bm reads none
    (queries send tsquery text and read scores). The codec lives in the client, keyed by the
    type's oid, so a pooler (PgBouncer) handing on server connections changes nothing."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if driver is None or driver in _binary_tsvector:
        return
    await driver.set_type_codec("tsvector", schema="pg_catalog", encoder=bytes,
                                decoder=bytes, format="binary")
    _binary_tsvector.add(driver)


async def move_doc(session: AsyncSession, project_id: int, from_id: int, to_id: int) -> None:
    """The document of entity `from_id` becomes `to_id`'s (a rebuild adopting a row: the
    content of the new row, the id of the old one)."""
    from sqlalchemy import text

    row = (await session.execute(text("SELECT z FROM search_text WHERE entity_id = :id"),
                                 {"id": from_id})).first()
    await delete_docs(session, [from_id, to_id])
    if row is not None:
        await replace_docs(session, project_id, {to_id: SearchDoc(SearchDoc.unpack(row[0]),
                                                                   row[0])})


async def clear_project(session: AsyncSession, project_id: int) -> None:
    """Forget every document of a project (search turned off; before removing a project)."""
    from sqlalchemy import text

    ids = [entity_id for (entity_id,) in (await session.execute(
        text("SELECT entity_id FROM search_text WHERE project_id = :project"),
        {"project": project_id})).all()]
    await delete_docs(session, ids)


async def repair(session: AsyncSession) -> None:
    """Make the tables exist again (someone dropped them), and on SQLite rebuild the FTS
    index from `search_text` (it was emptied or holds rows of no document): no file is read."""
    from sqlalchemy import text

    dialect = _dialect(session)
    for statement in ddl(dialect):
        await session.execute(text(statement))
    if dialect != "sqlite":  # and the head index of migration 0010, with a dropped table
        await session.execute(text(POSTGRES_HEAD_INDEX))
        return
    await session.execute(text("INSERT INTO note_search (note_search) VALUES ('delete-all')"))
    result = await session.stream(text("SELECT entity_id, z FROM search_text"))
    async for partition in result.partitions(500):
        await session.execute(text(FTS_INSERT), [
            _fts_row(entity_id, SearchDoc.unpack(z)) for entity_id, z in partition])


def _fts_row(entity_id: int, values: Sequence[str]) -> dict[str, Any]:
    return {"id": entity_id, **{f"v{index}": value for index, value in enumerate(values)}}


# -- state, for the consistency check ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchState:
    """How many documents a project has (`documents`), and whether the index needs a repair
    that reads no file (`damaged`: a table missing, or on SQLite an FTS index whose row count
    differs from `search_text`'s)."""

    documents: int = 0
    damaged: str | None = None


def read_state(query: Query, project_id: int, sqlite: bool) -> SearchState:
    """The search index's state; `query` runs SQL on the database (either driver)."""
    try:
        ((documents,),) = query("SELECT count(*) FROM search_text WHERE project_id = :project",
                                {"project": project_id})
    except Exception as error:  # noqa: BLE001 - a dropped table: any driver's error
        return SearchState(damaged=f"the search index cannot be read ({_line(error)})")
    if not sqlite:
        return SearchState(int(documents))
    try:
        ((indexed,),) = query("SELECT count(*) FROM note_search_docsize", {})
        ((stored,),) = query("SELECT count(*) FROM search_text", {})
    except Exception as error:  # noqa: BLE001
        return SearchState(int(documents), f"the search index cannot be read ({_line(error)})")
    if indexed != stored:
        return SearchState(int(documents), f"the search index holds {indexed} rows for "
                                           f"{stored} documents")
    return SearchState(int(documents))


async def read_search_state(url: str, project_id: int) -> SearchState:
    """`read_state` through the stdlib driver for a SQLite file, asyncpg itself for
    PostgreSQL (a no-change sync must not pay SQLAlchemy's import), SQLAlchemy otherwise."""
    from bm_sync.db.urls import POSTGRES_ASYNC, sqlite_file

    path = sqlite_file(url)
    if path is not None:
        connection = connect_read_only(path)
        try:
            return read_state(_stdlib_query(connection), project_id, True)
        finally:
            connection.close()
    if url.startswith(POSTGRES_ASYNC):
        return await _read_postgres_state(url, project_id)
    return await run_on_engine(url, lambda query: read_state(query, project_id, False))


async def _read_postgres_state(url: str, project_id: int) -> SearchState:
    import asyncpg  # type: ignore[import-untyped]

    from bm_sync.db.urls import postgres_connect_arguments

    connection = await asyncpg.connect(**postgres_connect_arguments(url))
    try:
        documents = await connection.fetchval(
            "SELECT count(*) FROM search_text WHERE project_id = $1", project_id)
    except asyncpg.PostgresError as error:  # a dropped table
        return SearchState(damaged=f"the search index cannot be read ({_line(error)})")
    finally:
        await connection.close()
    return SearchState(int(documents))


# -- reads ------------------------------------------------------------------------------------


def has_documents(query: Query, project_id: int) -> bool:
    """Whether the project has a search document (False when the table cannot be read: the
    next sync repairs it)."""
    try:
        return bool(query("SELECT 1 FROM search_text WHERE project_id = :project LIMIT 1",
                          {"project": project_id}))
    except Exception:  # noqa: BLE001 - a dropped table: any driver's error
        return False


def has_entities(query: Query, project_id: int) -> bool:
    return bool(query("SELECT 1 FROM entity WHERE project_id = :project LIMIT 1",
                      {"project": project_id}))


def other_projects(query: Query, project_id: int) -> bool:
    """Whether the database holds documents of another project than `project_id`."""
    # Two index probes: `min(x), max(x)` in one SELECT reads the whole table on SQLite.
    ((lowest, highest),) = query("SELECT (SELECT min(project_id) FROM search_text),"
                                 " (SELECT max(project_id) FROM search_text)", {})
    return (lowest, highest) not in ((project_id, project_id), (None, None))


# PostgreSQL: the head columns' words (weights A-C) have their own GIN index (migration
# 0010_search_rank), so the head matches are found without reading each row's whole tsvector:
# GIN cannot tell weights apart, and rechecking `'word':ABC` de-TOASTs every row holding the
# word (~9 ms per 1,000 rows). A query must spell the indexed expression exactly (HEAD_TSV).
HEAD_TSV = "ts_filter(tsv, '{a,b,c}')"
POSTGRES_HEAD_INDEX = ("CREATE INDEX IF NOT EXISTS ix_search_text_head ON search_text"
                       f" USING gin (({HEAD_TSV}))")
POSTGRES_HEAD_INDEX_DROP = "DROP INDEX IF EXISTS ix_search_text_head"


@dataclass(frozen=True, slots=True)
class Ranked:
    """The ids to show, best first, with scores; `bounded` when not every match was ranked."""

    ids: list[tuple[int, float]]
    bounded: bool


def rank(query: Query, node: Node, *, sqlite: bool, project_id: int, scope: Sequence[str],
         limit: int, cap: int = SEARCH_CAP) -> Ranked:
    """The best `limit` matches of `node` among the project's documents that carry every
    `scope` token: first the notes whose head columns hold the query's words (title, tags,
    permalink, path, observation categories, CJK pieces), ranked on those columns, then the
    others, ranked on every column. Of each kind the newest `cap` are ranked.

    Head matches first whatever the number of matches: so a query's order does not change
    character when its matches pass `cap`, and the common case is one ranked statement.
    Scoring is the cost: bm25 counts every document matching each phrase for its IDF (a whole
    doclist walk per phrase and statement, whatever the LIMIT), then scores each row; the
    head matches' walk filters positions to the short columns and is the cheaper one. The
    statement over every column runs only when the head matches do not fill `limit`, and the
    head statement only when an unscored probe finds a head match (no IDF walk for nothing)."""
    search = _Search(query, node, sqlite=sqlite, project_id=project_id, scope=scope)
    if not sqlite:
        search.plan_each_statement()
    head = search.ranked(cap + 1, head_only=True) if search.any_head() else []
    chosen = _best(head[:cap])[:limit]
    if len(chosen) >= limit:
        return Ranked(chosen, bounded=len(head) > cap)
    everything = search.ranked(cap + 1, head_only=False)
    taken = {entity_id for entity_id, _score in chosen}
    for entity_id, score in _best(everything[:cap]):
        if len(chosen) >= limit:
            break
        if entity_id not in taken:
            chosen.append((entity_id, score))
    return Ranked(chosen, bounded=len(everything) > cap)


def _best(ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Highest score first; ties stay newest first (the order the database listed them)."""
    return sorted(ranked, key=lambda item: -item[1])


@dataclass(frozen=True, slots=True)
class _Search:
    """One query's SQL on one database: rank its newest matches."""

    query: Query
    node: Node
    sqlite: bool
    project_id: int
    scope: Sequence[str]

    def plan_each_statement(self) -> None:
        """PostgreSQL: plan this transaction's statements for their own tsquery. asyncpg
        prepares them, and after five runs the server may keep a generic plan, blind to how
        many rows a query's words match: a backward walk of the primary key that de-TOASTs
        every row instead of the head index's few (3 ms became 60 ms at 10k notes)."""
        self._run("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)", {})

    def any_head(self) -> bool:
        """Whether a document matches in its head columns (a walk that stops at the first)."""
        if self.sqlite:
            rows = self._run("SELECT rowid FROM note_search WHERE note_search MATCH :q LIMIT 1",
                             {"q": self._fts5(True)})
        else:
            rows = self._run(f"SELECT 1 FROM search_text WHERE {self._postgres_where(True)}"
                             " LIMIT 1", self._postgres_parameters(True))
        return bool(rows)

    def ranked(self, count: int, *, head_only: bool) -> list[tuple[int, float]]:
        """The newest `count` matches with their scores (higher is better), newest first."""
        if self.sqlite:
            rows = self._run(f"SELECT rowid, {BM25} FROM note_search WHERE note_search MATCH :q "
                             "ORDER BY rowid DESC LIMIT :n",
                             {"q": self._fts5(head_only), "n": count})
            return [(int(entity_id), -float(score)) for entity_id, score in rows]
        rows = self._run(
            f"WITH m AS (SELECT entity_id, tsv FROM search_text WHERE"
            f" {self._postgres_where(head_only)} ORDER BY entity_id DESC LIMIT :n)"
            f" SELECT entity_id, ts_rank({PG_WEIGHTS}, tsv, CAST(:q AS tsquery)) FROM m"
            " ORDER BY entity_id DESC",
            self._postgres_parameters(head_only) | {
                "q": to_tsquery(positive(self.node), head_only=head_only), "n": count})
        return [(int(entity_id), float(score)) for entity_id, score in rows]

    def _postgres_where(self, head_only: bool) -> str:
        """The match condition. The head matches: the query's words in the head index's
        expression; the whole query (exclusions at any weight, the filter lexemes) is checked
        on the row's tsvector too only when the query has more than its words."""
        if not head_only:
            return "project_id = :project AND tsv @@ CAST(:f AS tsquery)"
        where = f"project_id = :project AND {HEAD_TSV} @@ CAST(:h AS tsquery)"
        if positive(self.node) != self.node or self._filters():
            where += " AND tsv @@ CAST(:f AS tsquery)"
        return where

    def _postgres_parameters(self, head_only: bool) -> dict[str, Any]:
        return {"project": self.project_id, "f": self._filtered(head_only),
                "h": to_tsquery(positive(self.node))}

    def _fts5(self, head_only: bool) -> str:
        return to_fts5(self.node, head_only=head_only) + "".join(
            f' AND scope : "{token}"' for token in self.scope)

    def _filtered(self, head_only: bool) -> str:
        """The tsquery with the filters: the project is a column; the other filters are
        lexemes, left out of the ranking."""
        return to_tsquery(self.node, head_only=head_only) + "".join(
            f" & '#{token}'" for token in self._filters())

    def _filters(self) -> list[str]:
        return [token for token in self.scope if not token.startswith("p")]

    def _run(self, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        try:
            return self.query(sql, parameters)
        except Exception as error:
            message = _line(error)
            if _is_query_error(message):  # defence in depth: the compilers quote every word
                raise SearchQueryError(f"the database refused the query: {message}") from error
            raise


def hit_rows(query: Query, ids: Sequence[int]) -> dict[int, Sequence[Any]]:
    """id -> (id, path, title, permalink, entity type, z) of these entities (those that
    still have a document)."""
    if not ids:
        return {}
    names = {f"i{index}": entity_id for index, entity_id in enumerate(ids)}
    rows = query("SELECT e.id, e.file_path, e.title, e.permalink, e.entity_type, s.z "
                 "FROM entity e JOIN search_text s ON s.entity_id = e.id "
                 f"WHERE e.id IN ({', '.join(':' + name for name in names)})", names)
    return {row[0]: row for row in rows}


def _is_query_error(message: str) -> bool:
    return (message.startswith(("fts5:", "unknown special query", "no such column"))
            or message == "unterminated string" or "in tsquery" in message)


def _line(error: BaseException) -> str:
    error = getattr(error, "orig", None) or error
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# -- connections ------------------------------------------------------------------------------


def connect_read_only(path: Path, *, any_thread: bool = False) -> sqlite3.Connection:
    """A read-only stdlib connection to a SQLite database file (`mode=ro`, else immutable).
    `any_thread`: usable from any thread (the caller serialises its use)."""
    from bm_sync.db.read_only import cannot_open, read_only_uri

    try:
        connection = sqlite3.connect(read_only_uri(path), uri=True,
                                     check_same_thread=not any_thread)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
        return connection
    except sqlite3.OperationalError as error:
        if not cannot_open(str(error)):
            raise
        return sqlite3.connect(read_only_uri(path, immutable=True), uri=True,
                               check_same_thread=not any_thread)


def _stdlib_query(connection: sqlite3.Connection) -> Query:
    def query(sql: str, parameters: dict[str, Any]) -> list[Any]:
        return connection.execute(sql, parameters).fetchall()

    return query


async def run_on_engine(target: str | AsyncEngine, work: Callable[[Query], Result]) -> Result:
    """Run `work` with a `Query` on a SQLAlchemy connection to `target`: an engine, or a URL
    (an engine made for this call; never migrated)."""
    from sqlalchemy import text
    from sqlalchemy.engine import Connection

    from bm_sync.db.engine import create_engine

    engine = create_engine(target) if isinstance(target, str) else target

    def run(connection: Connection) -> Result:
        def query(sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
            return connection.execute(text(sql), parameters).all()

        return work(query)

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(run)
    finally:
        if isinstance(target, str):
            await engine.dispose()


def run_on_file(path: Path, work: Callable[[Query], Result]) -> Result:
    """Run `work` with a `Query` on a read-only stdlib connection to a SQLite file."""
    connection = connect_read_only(path)
    try:
        return work(_stdlib_query(connection))
    finally:
        connection.close()


# -- show -------------------------------------------------------------------------------------

ENTITY_FIELDS = "id, file_path, title, permalink, entity_type, tags"


def find_entities(query: Query, project_id: int, ref: str) -> list[Sequence[Any]]:
    """The entities `ref` names: a path (with or without `.md`), else a permalink, else a
    title (case-insensitively). Several only when the rule that found them is ambiguous."""
    candidates = (
        ("file_path IN (:ref, :ref_md)", {"ref": ref, "ref_md": f"{ref}.md"}),
        ("permalink = :ref", {"ref": ref.strip("/")}),
        ("lower(title) = lower(:ref)", {"ref": ref}),
    )
    for condition, parameters in candidates:
        rows = query(f"SELECT {ENTITY_FIELDS} FROM entity WHERE project_id = :project AND "
                     f"{condition} ORDER BY file_path", {"project": project_id, **parameters})
        if rows:
            return list(rows)
    return []


def note_parts(query: Query, project_id: int, entity: Sequence[Any]
               ) -> tuple[list[Sequence[Any]], list[Sequence[Any]], list[Sequence[Any]]]:
    """(observations, outgoing relations with their target's path, backlinks with a resolved
    flag) of one entity row. An unresolved relation is a backlink when it names the note in
    another case (its title, permalink, path or path without `.md`)."""
    entity_id, path, title, permalink = entity[0], entity[1], entity[2], entity[3]
    observations = query("SELECT category, content, tags, context FROM observation "
                         "WHERE entity_id = :id ORDER BY id", {"id": entity_id})
    relations = query("SELECT r.relation_type, r.to_name, t.file_path, r.context "
                      "FROM relation r LEFT JOIN entity t ON t.id = r.to_id "
                      "WHERE r.from_id = :id ORDER BY r.id", {"id": entity_id})
    names = {"n0": title.lower(), "n1": path.lower(),
             "n2": path.rsplit(".", 1)[0].lower() if "." in path else path.lower(),
             "n3": (permalink or title).lower()}
    backlinks = query(
        "SELECT f.file_path, f.title, r.relation_type, r.to_id IS NOT NULL FROM relation r "
        "JOIN entity f ON f.id = r.from_id WHERE f.project_id = :project AND (r.to_id = :id "
        "OR (r.to_id IS NULL AND lower(r.to_name) IN (:n0, :n1, :n2, :n3))) "
        "ORDER BY f.file_path, r.id", {"project": project_id, "id": entity_id, **names})
    return list(observations), list(relations), list(backlinks)
