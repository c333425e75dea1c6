"""The PostgreSQL search index's tsvector is built in Python (`search.postgres_tsvector`) and sent
in the binary format, instead of running the server's parser over words split and folded in
Python (`tests/helpers_tsv.py`, kept as the reference). On a real server, for text in many scripts
and at every limit of PostgreSQL's tsvector, both must give the same tsvector; where they
differ (the parser splitting a word our query side keeps whole, a document over the size
limit), the difference is asserted and the new one is shown to be what search needs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest

from bm_sync.search import (
    PG_MAX_DATA_BYTES,
    WORD,
    fold,
    postgres_tsvector,
    search_doc,
    tsvector_binary,
    words,
)
from tests.helpers import bm_json, write
from tests.helpers_search import database_fixture, sync_args  # noqa: F401 - `database` fixture
from tests.helpers_tsv import postgres_columns, reference_over_unnest, run_sql

# The reference expression over one row of unnest(): a, b, c, d, scope (space-separated).
_REFERENCE = reference_over_unnest()


def document(title: str = "", body: str = "", *, tags: tuple[str, ...] = (),
             path: str = "notes/doc.md", categories: tuple[str, ...] = (),
             permalink: str | None = None) -> tuple[str, ...]:
    """A note's indexed values, as the sync builds them."""
    return search_doc(project_id=7, path=path, title=title, entity_type="note",
                      permalink=permalink, tags=tags, body=body, categories=categories).values


def server_and_ours(documents: list[tuple[str, ...]]) -> list[tuple[str, str]]:
    """(the reference expression's tsvector, the literal's), as the server prints them, for
    each document (one query)."""
    columns: list[list[Any]] = [[], [], [], [], [], []]
    for values in documents:
        parts = postgres_columns(values)
        for index, text in enumerate((parts["a"], parts["b"], parts["c"], parts["d"],
                                      " ".join(parts["scope"]), postgres_tsvector(values))):
            columns[index].append(text)
    rows = run_sql(f"SELECT ({_REFERENCE})::text, t.tsv::text FROM unnest($1::text[], $2::text[],"
                   " $3::text[], $4::text[], $5::text[], $6::tsvector[]) "
                   "WITH ORDINALITY AS t(a, b, c, d, scope, tsv, n) ORDER BY t.n", *columns)
    return [(row[0], row[1]) for row in rows]


def _many_words(count: int, distinct: int) -> str:
    return " ".join(f"w{index % distinct}" for index in range(count))


SAME: list[tuple[str, tuple[str, ...]]] = [
    ("latin accents", document("Crème Brûlée à la Française", "Ça coûte cher; naïve café, "
                               "Zürich, São Paulo, ĲSSEL ǅemal Ångström œuvre ﬁnal straße",
                               tags=("Cuisine", "façade"), categories=("idée",))),
    ("cyrillic", document("Привет, мир", "Ёлка и ёж; ПРОВЕРКА регистра. Съешь же ещё",
                          tags=("заметка",))),
    ("greek", document("Καλημέρα κόσμε", "ΣΊΣΥΦΟΣ σίσυφος ς τέλος Ἀθῆναι ὅτι")),
    ("cjk", document("東京都の天気", "全文検索インデックス 知识库 한국어 검색 "
                                   "ひらがな カタカナ 東京", tags=("日本",))),
    ("digits and mixed", document("Release 2.5", "abc123 123abc 0x1f 1e5 1E5 2e10 x1e5 1ex5 "
                                  "v1.2.3 1,000,000 3rd ab12cd34 ١٢٣ 007")),
    ("underscores", document("snake_case", "__init__ a_b_c _leading trailing_ x__y")),
    ("apostrophes and quotes", document("O'Brien's", "don't l'homme ‘single’ “double” "
                                        "back\\slash it''s")),
    ("emoji", document("Party 🎉", "🎉 party 👍🏽ok ❤️ love 🇫🇷 flag a🎉b")),
    ("combining marks", document("Cafe\u0301", "n\u0303 e\u0308 हिन्दी देवनागरी ক্ষ")),
    ("a file: title and path only", search_doc(project_id=7, path="assets/Photo 01.png",
                                               title="Photo 01", entity_type="file",
                                               permalink=None).values),
    ("every column", document("Title words here", "body words here and title again",
                              tags=("tag-one", "two"), path="deep/er/path/Note.md",
                              categories=("fact", "idea"), permalink="deep/er/note")),
    ("over 16383 words", document("first words", _many_words(20_000, 3_000) + " first",
                                  tags=("w1",))),
    ("a word repeated over 256 times", document("echo", "echo " * 600 + "end",
                                                tags=("echo",), categories=("echo",))),
    ("a word over 255 times in every column", document(
        "echo " * 300, "echo " * 300, tags=("echo " * 300,), categories=("echo " * 300,))),
    ("a title of over 16383 words", document(_many_words(17_000, 50), "after the title w3")),
    ("positions reach 16383 in a later column", document(
        _many_words(9_000, 900), _many_words(9_000, 1_200) + " tail", tags=("w5",))),
    ("words of 2046, 2047 and 2048 bytes", document(
        "short", f"a {'x' * 2046} b {'y' * 2047} c {'z' * 2048} d {'ж' * 1023} e "
                 f"{'ш' * 1024} f {'東' * 682} g {'京' * 683} h")),
    ("a long word in the title shifts nothing", document(f"{'q' * 3000} title", "body")),
    ("empty", document()),
]


@pytest.mark.parametrize("values", [values for _name, values in SAME],
                         ids=[name for name, _values in SAME])
def test_the_literal_is_the_servers_tsvector(values: tuple[str, ...]) -> None:
    ((server, ours),) = server_and_ours([values])
    assert ours == server


FLOAT_LIKE = re.compile(r"[0-9]+e[0-9]+[^0-9]")  # the parser splits these (FLOATS below)


def test_random_text_in_many_scripts_gives_the_servers_tsvector() -> None:
    """Random runs of letters, digits, marks, emoji and punctuation of several scripts (the
    float-looking words of `test_the_parser_splits_a_word_the_query_keeps_whole` left out)."""
    alphabet = [*"abcxyz019_'.-éÉßİﬁ ", "ж", "東", "京", "ς", "Σ", "🎉", "١", "ा", "한",
                "\u0301", "Ꭰ", "ꭰ"]
    generator = random.Random(11)

    def text(longest: int) -> str:
        return "".join(generator.choice(alphabet) for _ in range(generator.randint(0, longest)))

    documents = [document(text(30), text(400), tags=(text(8),), categories=(text(5),),
                          path=f"f/{text(10)}.md") for _ in range(300)]
    documents = [values for values in documents
                 if not any(FLOAT_LIKE.match(word) for word in words(fold(" ".join(values))))]
    assert len(documents) > 250
    for (server, ours), values in zip(server_and_ours(documents), documents, strict=True):
        assert ours == server, values


FLOATS = [
    ("1e5x", ["1e5", "x"]),
    ("12e3abc", ["12e3", "abc"]),
    ("00e00z", ["00e00", "z"]),
    ("1e5e5", ["1e5", "e5"]),
    ("9e9ж", ["9e9", "ж"]),
]


@pytest.mark.parametrize(("word", "server_parts"), FLOATS)
def test_the_parser_splits_a_word_the_query_keeps_whole(word: str,
                                                        server_parts: list[str]) -> None:
    """PostgreSQL's parser reads `1e5x` as the number `1e5` and the word `x`. Our words (and so
    every query: `search_query.to_tsquery` sends `'1e5x'`) keep it whole, so the old index
    could never match it; the literal holds the word itself."""
    ((server, ours),) = server_and_ours([document("t", f"before {word} after")])
    assert f"'{word}':6" in ours
    assert f"'{word}'" not in server
    assert all(f"'{part}'" in server for part in server_parts)


def test_a_document_over_the_size_limit_keeps_its_first_lexemes() -> None:
    """The server refuses a tsvector of over 1 MB of lexemes and positions (the old INSERT
    failed, and the note went unindexed); the literal leaves the body's last lexemes out."""
    generator = random.Random(5)
    body = " ".join(f"{generator.randrange(16 ** 5):05x}" for _ in range(150_000))
    values = document("Dump title", body, tags=("kept",))
    with pytest.raises(Exception, match="string is too long for tsvector"):
        server_and_ours([values])
    ((lexemes, size, text),) = run_sql("SELECT length(t), pg_column_size(t), t::text "
                                       "FROM CAST($1 AS tsvector) t", postgres_tsvector(values))
    first_words = body.split()[:1000]
    assert 1000 < lexemes < len(set(body.split()))
    data = size - 8 - 4 * lexemes  # less the header, the count and each lexeme's entry
    assert PG_MAX_DATA_BYTES * 0.9 < data <= PG_MAX_DATA_BYTES
    for word in ("dump", "title", "kept", *first_words):
        assert f"'{word}':" in text


def test_quotes_and_backslashes_need_no_escaping() -> None:
    """No word of ours holds a quote or a backslash, but a lexeme that did would arrive as it
    is: the binary format has no quoting."""
    title_at_1, body_at_2 = ((3 << 14) | 1).to_bytes(2, "big"), (2).to_bytes(2, "big")
    rows = run_sql("SELECT lexeme, positions, weights FROM unnest(CAST($1 AS tsvector)) "
                   "ORDER BY lexeme", tsvector_binary({"it's": title_at_1, "a\\b": body_at_2,
                                                      "#x'y": b""}))
    assert rows == [("#x'y", None, None), ("a\\b", [2], ["D"]), ("it's", [1], ["A"])]


NOTES = {
    "physics.md": "# Constants\n\nThe 1e5x run and 12e3abc samples.\n",
    "dump.md": "",  # over PostgreSQL's tsvector size: filled in below
    "other.md": "# Other\n\nnothing to see\n",
}


def test_search_finds_float_like_words_and_a_huge_note_on_both_databases(
        database: str | None, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    generator = random.Random(3)
    hex_words = [f"{generator.randrange(16 ** 5):05x}" for _ in range(150_000)]
    for name, text in NOTES.items():
        write(notes, name, text or "# Hex Dump\n\nstarting " + " ".join(hex_words) + "\n")
    report = bm_json("sync", str(notes), *sync_args(database))
    assert (report["added"], report["failed"]) == (sorted(NOTES), [])

    def found(query: str) -> list[str]:
        answer = bm_json("search", query, str(notes), *sync_args(database))
        return [hit["path"] for hit in answer["hits"]]

    assert found("1e5x") == ["physics.md"]
    assert found('"1e5x run"') == ["physics.md"]
    assert found("12e3abc") == ["physics.md"]
    assert found("hex dump") == ["dump.md"]
    assert found(f"starting {hex_words[0]}") == ["dump.md"]


ASCII_TEXTS = ["", "plain words", "snake_case __init__", "a.b-c/d@e:f", "tab\there\nnew\rline",
               "x\x00y\x1fz\x7fw", "don't 1e5x 0x1F v1.2.3", "   ", "___", "MiXeD CaSe 42"]


@pytest.mark.parametrize("text", [*ASCII_TEXTS, "".join(map(chr, range(128))) * 3])
def test_ascii_words_are_the_regexs(text: str) -> None:
    """`words` splits ASCII text without the regex: the same words."""
    assert words(text) == WORD.findall(text)


def test_random_ascii_words_are_the_regexs() -> None:
    generator = random.Random(17)
    for _ in range(2000):
        text = "".join(chr(generator.randrange(128)) for _ in range(generator.randrange(40)))
        assert words(text) == WORD.findall(text), text
