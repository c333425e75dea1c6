"""The search index the sync keeps (issue 12), on SQLite and PostgreSQL: what queries find, and
that the index stays exactly the notes on disk through edits, moves, deletes, rebuilds, a
SIGKILL mid-sync, damage and `--no-search`."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bm_sync.reports import SyncReport
from bm_sync.search import NoteNotFound, SearchQueryError, SearchResult, SearchUnavailable
from bm_sync.sync import SyncEngine
from tests.helpers import BM, run_bm, write
from tests.helpers_search import (
    BACKENDS,
    assert_index_exact,
    database_fixture,  # noqa: F401 - the `database` fixture
    new_database,
    rows,
    sync_args,
)

CORPUS = {
    "cafe.md": "# Morning\n\nUn café au lait.\n",
    "places.md": "# Places\n\nZürich, naïve façade, crème brûlée, São Paulo.\n",
    "tokyo.md": "# Tokyo\n\n東京都の同期エンジン\n",
    "cjk.md": "# Scripts\n\n全文検索インデックス 知识库 한국어 검색\n",
    "phrase1.md": "# P1\n\nwe sync index daily\n",
    "phrase2.md": "# P2\n\nthe index then sync\n",
    "prefix.md": "# Prefix\n\nsynchronize everything\n",
    "title.md": "# Sync\n\nabout the title\n",
    "set/a.md": "# A\n\nalpha\n",
    "set/b.md": "# B\n\nbravo\n",
    "set/ab.md": "# AB\n\nalpha bravo\n",
    "set/ac.md": "# AC\n\nalpha charlie\n",
    "hyphen.md": "# Hyphen\n\na well-known e-mail trick\n",
    "tags/t1.md": "---\ntags: [garden]\n---\n# T1\n\nplant\n",
    "tags/t2.md": "---\ntags: [Garden Design]\n---\n# T2\n\nplant\n",
    "tags/t3.md": "---\ntags: [machine-learning, Gärten]\n---\n# T3\n\nplant\n",
    "tags/m1.md": "---\ntype: meeting\n---\n# M1\n\nplant\n",
    "Projects/A/x.md": "# X\n\nplant\n",
    "Projectsx/y.md": "# Y\n\nplant\n",
    "obs.md": "# Observed\n\n- [decision] use gravel paths #landscaping\n",
}
PLANTS = {"tags/t1.md", "tags/t2.md", "tags/t3.md", "tags/m1.md", "Projects/A/x.md",
          "Projectsx/y.md"}


@pytest.fixture(scope="module", params=BACKENDS)
def corpus(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str | None]]:
    """The query corpus, synced once per database."""
    for database_url in new_database(request.param):
        notes = tmp_path_factory.mktemp("corpus")
        for path, text in CORPUS.items():
            write(notes, path, text)
        write(notes, "Scan 001.pdf", b"%PDF-1.4 binary")
        result = run_bm("sync", str(notes), "--quiet", *sync_args(database_url))
        assert result.returncode == 0, result.stderr
        yield notes, database_url


def search(notes: Path, database_url: str | None, query: str, **options: Any) -> SearchResult:
    async def run() -> SearchResult:
        async with SyncEngine.open(notes, database_url) as engine:
            return await engine.search(query, **options)

    return asyncio.run(run())


def found(notes: Path, database_url: str | None, query: str, **options: Any) -> set[str]:
    return {hit.path for hit in search(notes, database_url, query, limit=100, **options).hits}


@pytest.mark.parametrize(("query", "options", "expected"), [
    # accents, both ways
    ("cafe", {}, {"cafe.md"}),
    ("CAFÉ", {}, {"cafe.md"}),
    ("Café", {}, {"cafe.md"}),
    ("zurich", {}, {"places.md"}),
    ("naive", {}, {"places.md"}),
    ("facade", {}, {"places.md"}),
    ("creme AND brulee", {}, {"places.md"}),
    ('"sao paulo"', {}, {"places.md"}),
    # CJK: words inside runs without spaces, of any length
    ("東京", {}, {"tokyo.md"}),
    ("同期", {}, {"tokyo.md"}),
    ("東京都", {}, {"tokyo.md"}),
    ("東", {}, {"tokyo.md"}),
    ("インデックス", {}, {"cjk.md"}),
    ("知识", {}, {"cjk.md"}),
    ("검색", {}, {"cjk.md"}),
    # phrases and prefixes
    ('"sync index"', {}, {"phrase1.md"}),
    ('"index then"', {}, {"phrase2.md"}),
    ("sync*", {}, {"phrase1.md", "phrase2.md", "prefix.md", "title.md"}),
    ("sync", {}, {"phrase1.md", "phrase2.md", "title.md"}),
    ('"sync ind"*', {}, {"phrase1.md"}),
    # AND, OR, NOT
    ("alpha AND bravo", {}, {"set/ab.md"}),
    ("alpha bravo", {}, {"set/ab.md"}),
    ("alpha OR bravo", {}, {"set/a.md", "set/b.md", "set/ab.md", "set/ac.md"}),
    ("alpha NOT bravo", {}, {"set/a.md", "set/ac.md"}),
    ("alpha -bravo", {}, {"set/a.md", "set/ac.md"}),
    ("(alpha OR bravo) -charlie", {}, {"set/a.md", "set/b.md", "set/ab.md"}),
    # words with punctuation are the phrase of their parts
    ("well-known", {}, {"hyphen.md"}),
    ("e-mail", {}, {"hyphen.md"}),
    ("known-well", {}, set()),
    # tags (exact, case- and accent-insensitive), type, folder
    ("plant", {"tag": "garden"}, {"tags/t1.md"}),
    ("plant", {"tag": "GARDEN"}, {"tags/t1.md"}),
    ("plant", {"tag": "garden design"}, {"tags/t2.md"}),
    ("plant", {"tag": "machine-learning"}, {"tags/t3.md"}),
    ("plant", {"tag": "garten"}, {"tags/t3.md"}),
    ("plant", {"tag": ["machine-learning", "gärten"]}, {"tags/t3.md"}),
    ("plant", {"tag": ["machine-learning", "garden"]}, set()),
    ("plant", {"type": "meeting"}, {"tags/m1.md"}),
    ("plant", {}, PLANTS),
    ("plant", {"path": "Projects"}, {"Projects/A/x.md"}),
    ("plant", {"path": "Projects/A"}, {"Projects/A/x.md"}),
    # observations, files by name, and punctuation that is no syntax
    ("decision gravel landscaping", {}, {"obs.md"}),
    ("scan", {}, {"Scan 001.pdf"}),
    ("scan", {"type": "file"}, {"Scan 001.pdf"}),
    ("x:y", {}, set()),
    ("it's", {}, set()),
    ("c++", {}, set()),
])
def test_queries_find_exactly(corpus: tuple[Path, str | None], query: str,
                              options: dict[str, Any], expected: set[str]) -> None:
    notes, database_url = corpus
    assert found(notes, database_url, query, **options) == expected


def test_a_title_match_ranks_first_and_snippets_mark_words(
        corpus: tuple[Path, str | None]) -> None:
    notes, database_url = corpus
    result = search(notes, database_url, "sync")
    assert result.ranking == "full"
    assert result.hits[0].path == "title.md"
    by_path = {hit.path: hit for hit in result.hits}
    assert by_path["phrase1.md"].snippet == "P1 we [sync] index daily"
    assert search(notes, database_url, "scan").hits[0].snippet == ""  # a file: no text


@pytest.mark.parametrize("query", ['"sync', "(sync", "sync AND", "NOT sync", "*"])
def test_a_malformed_query_is_refused_before_the_database(
        corpus: tuple[Path, str | None], query: str) -> None:
    notes, database_url = corpus
    with pytest.raises(SearchQueryError):
        search(notes, database_url, query)


def test_cli_search_and_show(corpus: tuple[Path, str | None]) -> None:
    notes, database_url = corpus
    result = run_bm("search", "alpha -charlie", str(notes), "--json", "--limit", "1",
                    *sync_args(database_url))
    assert result.returncode == 0, result.stderr
    shape = json.loads(result.stdout)
    assert shape["query"] == "alpha -charlie" and shape["ranking"] == "full"
    assert len(shape["hits"]) == 1
    assert set(shape["hits"][0]) == {"path", "title", "permalink", "type", "score", "snippet"}
    assert shape["hits"][0]["path"] in {"set/a.md", "set/ab.md"}
    below = run_bm("search", "plant", str(notes / "Projects"), *sync_args(database_url))
    assert below.stdout.splitlines()[0] == "Projects/A/x.md  X"
    malformed = run_bm("search", 'sync "index', str(notes), *sync_args(database_url))
    assert (malformed.returncode, malformed.stdout) == (2, "")
    assert malformed.stderr == "bm search: unterminated phrase at column 6\n"
    shown = run_bm("show", "Observed", "--root", str(notes), "--json", *sync_args(database_url))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["observations"] == [
        {"category": "decision", "content": "use gravel paths", "tags": ["landscaping"],
         "context": None}]
    missing = run_bm("show", "nothing like it", "--root", str(notes), *sync_args(database_url))
    assert missing.returncode == 1
    assert missing.stderr == ("bm: error: no note is named 'nothing like it' "
                              "(a path, permalink or title)\n")


async def test_show_finds_a_note_by_path_permalink_or_title_with_backlinks(
        notes: Path, database: str | None) -> None:
    write(notes, "projects/Roadmap.md", "---\npermalink: plans/roadmap\ntags: [plan]\n---\n"
          "# The Roadmap\n\n- [goal] ship search #v1 (this year)\n- depends_on [[Index]]\n"
          "- see [[Nowhere]]\n")
    write(notes, "index.md", "# Index\n\n- part_of [[The Roadmap]]\n")
    write(notes, "other.md", "# Other\n\nmentions [[the roadmap]]\n")
    write(notes, "twin1.md", "# Twin\n")
    write(notes, "twin2.md", "# Twin\n")
    async with SyncEngine.open(notes, database) as engine:
        await engine.sync()
        for ref in ("projects/Roadmap.md", "projects/Roadmap", "plans/roadmap",
                    "the roadmap", str(notes / "projects/Roadmap.md")):
            view = await engine.show(ref)
            assert view.path == "projects/Roadmap.md", ref
        assert (view.title, view.permalink, view.type, view.tags) == (
            "The Roadmap", "plans/roadmap", "note", ("plan",))
        assert [(item.category, item.content, item.tags, item.context)
                for item in view.observations] == [("goal", "ship search", ("v1",),
                                                    "this year")]
        assert [(item.relation_type, item.target, item.target_path)
                for item in view.relations] == [("depends_on", "Index", "index.md"),
                                                ("see", "Nowhere", None)]
        assert [(item.from_path, item.relation_type, item.resolved)
                for item in view.backlinks] == [("index.md", "part_of", True),
                                                ("other.md", "links_to", False)]
        with pytest.raises(NoteNotFound, match="2 notes are named 'twin': twin1.md, twin2.md"):
            await engine.show("twin")


async def test_edits_moves_and_deletes_keep_the_index_exact(notes: Path,
                                                            database: str | None) -> None:
    for number in range(30):
        write(notes, f"f{number % 3}/note {number}.md",
              f"# Note {number}\n\nbody word{number} shared\n- [fact] fact{number}\n")
    write(notes, "files/Scan.pdf", b"%PDF")
    async with SyncEngine.open(notes, database) as engine:
        await engine.sync()
    assert_index_exact(notes, database)
    for number in range(5):  # edits with a new word
        write(notes, f"f{number % 3}/note {number}.md", f"# Note {number}\n\nzebra{number}\n",
              old=False)
    for number in range(5, 10):  # moves
        (notes / "moved").mkdir(exist_ok=True)
        (notes / f"f{number % 3}/note {number}.md").rename(notes / f"moved/note {number}.md")
    for number in range(10, 13):  # moves with an edit
        source = notes / f"f{number % 3}/note {number}.md"
        text = source.read_text()
        source.unlink()
        write(notes, f"moved/renamed {number}.md", text + "extra line\n", old=False)
    for number in range(13, 18):  # deletes
        (notes / f"f{number % 3}/note {number}.md").unlink()
    (notes / "files/Scan.pdf").rename(notes / "files/Scan 2.pdf")
    write(notes, "new.md", "# New\n\nword13 comes back\n")
    async with SyncEngine.open(notes, database) as engine:
        report = await engine.sync()
        assert not report.rebuilt
        assert {hit.path for hit in (await engine.search("zebra*", limit=50)).hits} == {
            f"f{number % 3}/note {number}.md" for number in range(5)}
        assert (await engine.search("word0")).hits == []
        assert {hit.path for hit in (await engine.search("word14 OR word13")).hits} == {
            "new.md"}
        moved = await engine.search("body", path="moved", limit=50)
        assert {hit.path for hit in moved.hits} == {
            *(f"moved/note {number}.md" for number in range(5, 10)),
            *(f"moved/renamed {number}.md" for number in range(10, 13))}
        assert [hit.path for hit in (await engine.search("scan")).hits] == ["files/Scan 2.pdf"]
    assert_index_exact(notes, database)


async def test_a_rebuild_recreates_the_index_and_keeps_identities(notes: Path,
                                                                  database: str | None) -> None:
    for number in range(12):
        write(notes, f"note {number}.md", f"# Note {number}\n\nbody{number}\n")
    async with SyncEngine.open(notes, database) as engine:
        await engine.sync()
    (notes / ".basic-memory" / "index").unlink()  # the index lost: the next sync rebuilds
    (notes / "note 0.md").rename(notes / "renamed 0.md")  # a move the rebuild's sweep adopts
    (notes / "note 1.md").unlink()
    async with SyncEngine.open(notes, database) as engine:
        report = await engine.sync()
        assert report.rebuilt
        assert [hit.path for hit in (await engine.search("body0")).hits] == ["renamed 0.md"]
    assert_index_exact(notes, database)


def test_sigkill_mid_sync_converges(notes: Path, database: str | None) -> None:
    """A real `bm sync` killed after its first commits; the files then move and change; the
    next sync leaves exactly the notes on disk in the index."""
    for number in range(600):
        write(notes, f"f{number % 10}/note {number}.md",
              f"# Note {number}\n\nunique{number} common words\n")
    process = subprocess.Popen([*BM, "sync", str(notes), "--quiet", *sync_args(database)])
    state = notes / ".basic-memory" / "memory.db"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if database is not None or state.exists():
                try:
                    if rows(notes, database, "SELECT count(*) FROM search_text")[0][0] > 0:
                        break
                except Exception:  # noqa: BLE001 - the tables are being made
                    pass
            time.sleep(0.02)
        process.kill()
    finally:
        process.wait()
    assert process.returncode == -9, "the kill should land while the sync runs"
    assert not (notes / ".basic-memory" / "index").exists()
    for number in range(0, 40):
        (notes / f"f{number % 10}/note {number}.md").unlink()
    for number in range(40, 80):
        shutil.move(notes / f"f{number % 10}/note {number}.md", notes / f"moved {number}.md")
    for number in range(80, 100):
        write(notes, f"f{number % 10}/note {number}.md", f"# Edited {number}\n", old=False)
    result = run_bm("sync", str(notes), "--quiet", *sync_args(database))
    assert result.returncode == 0, result.stderr
    assert_index_exact(notes, database)


async def test_an_emptied_index_is_rebuilt(notes: Path, database: str | None) -> None:
    for number in range(5):
        write(notes, f"note {number}.md", f"# Note {number}\n\nword{number}\n")
    async with SyncEngine.open(notes, database) as engine:
        await engine.sync()
    rows(notes, database, "DELETE FROM search_text")
    async with SyncEngine.open(notes, database) as engine:
        report = await engine.sync()
        assert report.rebuild_reason == ("the search index holds 0 documents but the database "
                                         "5 entities")
        assert [hit.path for hit in (await engine.search("word3")).hits] == ["note 3.md"]
    assert_index_exact(notes, database)


@pytest.mark.parametrize("damage", [
    "INSERT INTO note_search (note_search) VALUES ('delete-all')",
    "DROP TABLE note_search",
])
async def test_a_damaged_fts_index_is_refilled_without_reading_files(notes: Path,
                                                                     damage: str) -> None:
    for number in range(5):
        write(notes, f"note {number}.md", f"# Note {number}\n\nword{number}\n")
    async with SyncEngine.open(notes) as engine:
        await engine.sync()
    rows(notes, None, damage)
    async with SyncEngine.open(notes) as engine:
        report = await engine.sync()
        assert not report.rebuilt
        assert any(warning.startswith("search index repaired:") for warning in report.warnings)
        assert [hit.path for hit in (await engine.search("word3")).hits] == ["note 3.md"]
    assert_index_exact(notes, None)


def test_a_dropped_postgres_table_is_made_again(notes: Path) -> None:
    for url in new_database("postgres"):
        database = url
        write(notes, "a.md", "# A\n\nalpha\n")
        assert run_bm("sync", str(notes), "--quiet", *sync_args(database)).returncode == 0
        rows(notes, database, "DROP TABLE search_text")
        result = run_bm("sync", str(notes), *sync_args(database))
        assert result.returncode == 0, result.stderr
        assert "search index repaired" in result.stderr
        assert_index_exact(notes, database)
        # with the head words' index of migration 0010, which the table's drop took with it
        assert rows(notes, database, "SELECT indexname FROM pg_indexes"
                    " WHERE indexname = 'ix_search_text_head'") == [("ix_search_text_head",)]


def test_no_search_forgets_the_index_and_turning_it_on_builds_it(
        notes: Path, database: str | None) -> None:
    for number in range(4):
        write(notes, f"note {number}.md", f"# Note {number}\n\nword{number}\n")

    async def sync(search: bool) -> SyncReport:
        async with SyncEngine.open(notes, database, search=search) as engine:
            return await engine.sync()

    asyncio.run(sync(True))
    assert run_bm("sync", str(notes), "--quiet", "--no-search",
                  *sync_args(database)).returncode == 0
    assert rows(notes, database, "SELECT count(*) FROM search_text") == [(0,)]
    write(notes, "later.md", "# Later\n\nword9\n")  # written with search off: no document
    asyncio.run(sync(False))
    assert rows(notes, database, "SELECT count(*) FROM search_text") == [(0,)]
    off = run_bm("search", "word1", str(notes), *sync_args(database))
    assert (off.returncode, off.stderr) == (
        1, "bm: error: search is off for this folder: run bm sync without --no-search\n")
    report = asyncio.run(sync(True))
    assert report.rebuild_reason == ("the search index holds 0 documents but the database 5 "
                                     "entities")
    assert_index_exact(notes, database)
    assert [hit.path for hit in search(notes, database, "word9").hits] == ["later.md"]


async def test_one_database_two_folders_never_mix(tmp_path: Path, database: str | None) -> None:
    shared = database or f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "a.md", "# A\n\nshared word\n")
    write(second, "b.md", "# B\n\nshared word\n")
    for folder in (first, second):
        async with SyncEngine.open(folder, shared) as engine:
            await engine.sync()
    for folder, expected in ((first, ["a.md"]), (second, ["b.md"])):
        async with SyncEngine.open(folder, shared) as engine:
            assert [hit.path for hit in (await engine.search("shared")).hits] == expected


async def test_search_before_any_sync_says_so(notes: Path) -> None:
    async with SyncEngine.open(notes) as engine:
        with pytest.raises(SearchUnavailable, match="no sync has run"):
            await engine.search("x")


async def test_bounded_ranking_still_puts_title_matches_first(notes: Path,
                                                              database: str | None) -> None:
    """More matches than the cap: the newest are ranked, and a match in a title (the head
    columns) is ranked before them even when it is older."""
    from bm_sync.db import search as search_rows
    from bm_sync.search_query import parse_query, scope_query

    write(notes, "a.md", "# Lantern\n\nold note\n")  # the oldest id: outside the newest 2
    for number in range(5):
        write(notes, f"b{number}.md", f"# Note {number}\n\nlantern in the body\n")
    async with SyncEngine.open(notes, database) as engine:
        await engine.sync()
        project_id, _uuid = await engine._searcher()._readable_project()
    node = parse_query("lantern")

    def work(query: search_rows.Query) -> search_rows.Ranked:
        return search_rows.rank(query, node, sqlite=database is None, project_id=project_id,
                                scope=scope_query(project_id, None, [], None), limit=3, cap=2)

    if database is None:
        ranked = search_rows.run_on_file(notes / ".basic-memory" / "memory.db", work)
    else:
        ranked = await search_rows.run_on_engine(database, work)
    paths = dict(rows(notes, database, "SELECT id, file_path FROM entity"))
    assert ranked.bounded
    assert [paths[entity_id] for entity_id, _score in ranked.ids] == ["a.md", "b4.md", "b3.md"]
    async with SyncEngine.open(notes, database) as engine:
        assert (await engine.search("lantern")).ranking == "full"  # 6 matches, cap 1000
