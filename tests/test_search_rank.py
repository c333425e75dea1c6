"""The ranking rule of `bm search` (db.search.rank), on SQLite and PostgreSQL: the notes whose
title, tags, permalink, path or observation categories hold the query's words come first,
ranked on those columns; then the other matches, ranked on every column; of each kind only the
newest `cap` are ranked ("bounded"). One small real index per backend, synced once; `cap` is
passed small so a dozen notes cross it.

The corpus: `lantern` is in the title of n01 (the oldest), in the tags of n04, three times in
n10's body, twice in n09's and once in every other numbered note's body; n06's title is
"Meadow"; n04's body says "plain"; n02 and n03 are tagged garden; n07 is a meeting; the note
orchard/n13.md (permalink thirteen) has "orchard" in its path only, n05 four times in its body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bm_sync.db import search as search_rows
from bm_sync.search_query import parse_query, scope_query
from bm_sync.sync import SyncEngine
from tests.helpers import bm_json, write
from tests.helpers_search import BACKENDS, new_database, rows

BODY = "a lantern in the body"
CORPUS = {
    "n01.md": "# Lantern\n\nold note about nothing\n",
    "n02.md": f"---\ntags: [garden]\n---\n# Two\n\n{BODY}\n",
    "n03.md": f"---\ntags: [garden]\n---\n# Three\n\n{BODY}\n",
    "n04.md": "---\ntags: [lantern]\n---\n# Four\n\nplain words here now\n",
    "n05.md": f"# Five\n\n{BODY}\norchard orchard orchard orchard\n",
    "n06.md": f"# Meadow\n\n{BODY}\n",
    "n07.md": f"---\ntype: meeting\n---\n# Seven\n\n{BODY}\n",
    "n08.md": f"# Eight\n\n{BODY}\n",
    "n09.md": "# Nine\n\na lantern lantern in the body\n",
    "n10.md": "# Ten\n\nlantern lantern lantern\n",
    "n11.md": f"# Eleven\n\n{BODY}\n",
    "n12.md": f"# Twelve\n\n{BODY}\n",
    "orchard/n13.md": "---\npermalink: thirteen\n---\n# Thirteen\n\nnothing to see\n",
}


@dataclass(frozen=True)
class Indexed:
    notes: Path
    database_url: str | None
    project_id: int
    paths: dict[int, str]


@pytest.fixture(scope="module", params=BACKENDS)
def indexed(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexed]:
    """The corpus synced once into a new database of the backend."""
    notes = tmp_path_factory.mktemp("rank")
    for relative, content in CORPUS.items():
        write(notes, relative, content)
    for database_url in new_database(request.param):
        project_id = asyncio.run(sync(notes, database_url))
        paths = {int(entity_id): path for entity_id, path in
                 rows(notes, database_url, "SELECT id, file_path FROM entity")}
        # The cases name the newest notes: ids must follow the paths' order.
        assert sorted(paths, key=paths.__getitem__) == sorted(paths)
        yield Indexed(notes, database_url, project_id, paths)


async def sync(notes: Path, database_url: str | None) -> int:
    """Sync `notes`; the id of its project."""
    async with SyncEngine.open(notes, database_url) as engine:
        await engine.sync()
        project_id, _uuid = await engine._searcher()._readable_project()
        return project_id


def ranked(indexed: Indexed, query: str, *, cap: int, limit: int, tags: tuple[str, ...] = (),
           entity_type: str | None = None) -> tuple[list[str], bool]:
    """(paths of the ranked hits in order, bounded) of `query`."""
    node = parse_query(query)
    scope = scope_query(indexed.project_id, entity_type, tags, None)

    def work(query_rows: search_rows.Query) -> search_rows.Ranked:
        return search_rows.rank(query_rows, node, sqlite=indexed.database_url is None,
                                project_id=indexed.project_id, scope=scope, limit=limit,
                                cap=cap)

    if indexed.database_url is None:
        result = search_rows.run_on_file(indexed.notes / ".basic-memory" / "memory.db", work)
    else:
        result = asyncio.run(search_rows.run_on_engine(indexed.database_url, work))
    return [indexed.paths[entity_id] for entity_id, _score in result.ids], result.bounded


@pytest.mark.parametrize(("query", "cap", "limit", "expected", "bounded"), [
    # Under the cap: head matches (title before tags), then the body by bm25 (n10, n09: more
    # lanterns), ties newest first.
    ("lantern", 20, 5, ["n01.md", "n04.md", "n10.md", "n09.md", "n12.md"], False),
    # Over it: the body matches ranked are the newest 3 (n12, n11, n10), not n09.
    ("lantern", 3, 5, ["n01.md", "n04.md", "n10.md", "n12.md", "n11.md"], True),
    # The head matches fill the limit and there are no more of them than the cap: their
    # order is complete however many body matches there are.
    ("lantern", 3, 2, ["n01.md", "n04.md"], False),
    # More head matches than the cap: the newest (n04) is ranked, the title of n01 is not.
    ("lantern", 1, 3, ["n04.md", "n12.md"], True),
    ("lant*", 3, 5, ["n01.md", "n04.md", "n10.md", "n12.md", "n11.md"], True),
    # An excluded word excludes a note wherever it is: n04's tag matches, its body says plain.
    ("lantern -plain", 3, 3, ["n01.md", "n10.md", "n12.md"], True),
    ("lantern NOT plain", 20, 3, ["n01.md", "n10.md", "n09.md"], False),
    # Either word: both title matches before the tag match.
    ("meadow OR lantern", 20, 3, ["n06.md", "n01.md", "n04.md"], False),
    # Both words, never both in a head: ranked on every column.
    ("lantern meadow", 20, 3, ["n06.md"], False),
    # No head match at all (a phrase of body words): the newest 3 matches ranked, so n09 (a
    # longer body) and not n08 (as short as n12 and n11).
    ('"in the body"', 3, 3, ["n12.md", "n11.md", "n09.md"], True),
    ('"in the body"', 20, 2, ["n12.md", "n11.md"], False),
    # The path is a head column: one orchard in a path before four in a body (which bm25
    # over every column would put first).
    ("orchard", 20, 2, ["orchard/n13.md", "n05.md"], False),
    ("nosuchword", 3, 3, [], False),
])
def test_rank(indexed: Indexed, query: str, cap: int, limit: int, expected: list[str],
              bounded: bool) -> None:
    assert ranked(indexed, query, cap=cap, limit=limit) == (expected, bounded)


@pytest.mark.parametrize(("query", "tags", "entity_type", "cap", "expected", "bounded"), [
    ("lantern", ("garden",), None, 20, ["n03.md", "n02.md"], False),
    ("lantern", ("garden",), None, 1, ["n03.md"], True),
    ("lantern", (), "meeting", 1, ["n07.md"], False),
    ("lantern", ("lantern",), None, 1, ["n04.md"], False),
    ("lantern", ("garden", "lantern"), None, 20, [], False),
])
def test_rank_with_filters(indexed: Indexed, query: str, tags: tuple[str, ...],
                           entity_type: str | None, cap: int, expected: list[str],
                           bounded: bool) -> None:
    assert ranked(indexed, query, cap=cap, limit=5, tags=tags,
                  entity_type=entity_type) == (expected, bounded)


def test_bm_search_shows_the_head_matches_first(indexed: Indexed) -> None:
    """The real CLI, under the real cap: what a user sees."""
    database = ["--db", indexed.database_url] if indexed.database_url else []
    shape = bm_json("search", "orchard", str(indexed.notes), "--json", *database)
    assert [hit["path"] for hit in shape["hits"]] == ["orchard/n13.md", "n05.md"]
    assert shape["ranking"] == "full"
    shape = bm_json("search", "lantern -plain", str(indexed.notes), "--json", "--limit", "3",
                    *database)
    assert [hit["path"] for hit in shape["hits"]] == ["n01.md", "n10.md", "n09.md"]


@pytest.mark.parametrize("indexed", ["postgres"], indirect=True)
def test_postgres_indexes_the_head_words(indexed: Indexed) -> None:
    """Migration 0010_search_rank: the head matches have their own GIN index, on the very
    expression the head statement filters on (else the planner cannot use it). SQLite needs
    none: FTS5 filters columns in its own index."""
    ((definition,),) = rows(indexed.notes, indexed.database_url,
                            "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                            ["ix_search_text_head"])
    assert "USING gin (ts_filter(tsv, '{a,b,c}'::\"char\"[]))" in definition
    assert search_rows.HEAD_TSV == "ts_filter(tsv, '{a,b,c}')"
