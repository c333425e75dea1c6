"""The query language, the words indexed and the snippets (pure functions, no database)."""

from __future__ import annotations

import pytest

from bm_sync.search import SearchQueryError, cjk_bigrams, fold, note_body
from bm_sync.search_query import parse_query, to_fts5, to_tsquery
from bm_sync.search_reader import make_snippet


@pytest.mark.parametrize(("query", "message"), [
    ('"sync', "unterminated phrase at column 1"),
    ('index "sync', "unterminated phrase at column 7"),
    ("(sync", "unbalanced '(' at column 1"),
    ("sync)", "unbalanced ')' at column 5"),
    ("sync AND", "AND without a term after it at column 6"),
    ("AND sync", "AND without a term before it at column 1"),
    ("OR x", "OR without a term before it at column 1"),
    ("x OR", "OR without a term after it at column 3"),
    ("NOT sync", "only excluded terms at column 1"),
    ("-x", "only excluded terms at column 1"),
    ("a OR -b", "only excluded terms at column 6"),
    ("sync NOT", "NOT without a term after it at column 6"),
    ("*", "no words to search for"),
    ("''", "no words to search for"),
    ("@", "no words to search for"),
    ("()", "no words to search for"),
    ("", "empty query"),
    ("   ", "empty query"),
])
def test_malformed_queries_are_one_line_with_a_column(query: str, message: str) -> None:
    with pytest.raises(SearchQueryError) as raised:
        parse_query(query)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("query", "fts5", "tsquery"), [
    ("sync", '- {scope} : ("sync")', "'sync'"),
    ("Café", '- {scope} : ("Café")', "'cafe'"),
    ("sync*", '- {scope} : ("sync"*)', "'sync':*"),
    ('"sync index"', '- {scope} : ("sync index")', "('sync' <-> 'index')"),
    ('"sync ind"*', '- {scope} : ("sync ind"*)', "('sync' <-> 'ind':*)"),
    ("a b", '- {scope} : (("a" AND "b"))', "('a' & 'b')"),
    ("a AND b", '- {scope} : (("a" AND "b"))', "('a' & 'b')"),
    ("a OR b c", '- {scope} : (("a" OR ("b" AND "c")))', "('a' | ('b' & 'c'))"),
    ("a NOT b", '- {scope} : ((("a") NOT "b"))', "(('a') & !'b')"),
    ("a -b -c", '- {scope} : (((("a") NOT "b") NOT "c"))', "((('a') & !'b') & !'c')"),
    ("(a OR b) -c", '- {scope} : (((("a" OR "b")) NOT "c"))', "((('a' | 'b')) & !'c')"),
    ("well-known", '- {scope} : ("well known")', "('well' <-> 'known')"),
    ("it's", '- {scope} : ("it s")', "('it' <-> 's')"),
    ("c++", '- {scope} : ("c")', "'c'"),
    ("x:y", '- {scope} : ("x y")', "('x' <-> 'y')"),
    ("title:", '- {scope} : ("title")', "'title'"),
    ("or and", '- {scope} : (("or" AND "and"))', "('or' & 'and')"),
    ("NEAR", '- {scope} : ("NEAR")', "'near'"),
    ("東京都", '- {scope} : ((cjk : "東京 京都"))', "('東京' <-> '京都')"),
    ("東", '- {scope} : ((cjk : "東"*))', "'東':*"),
    ("abc東京", '- {scope} : (("abc" AND (cjk : "東京")))', "('abc' & '東京')"),
])
def test_queries_compile_to_quoted_words(query: str, fts5: str, tsquery: str) -> None:
    node = parse_query(query)
    assert to_fts5(node) == fts5
    assert to_tsquery(node) == tsquery


@pytest.mark.parametrize(("text", "folded"), [
    ("Café", "cafe"), ("ZÜRICH", "zurich"), ("naïve façade", "naive facade"),
    ("crème brûlée", "creme brulee"), ("São", "sao"), ("Straße", "strasse"),
])
def test_fold_is_case_and_accent_insensitive(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(("text", "pieces"), [
    ("plain ascii", ""),
    ("東京都の同期エンジン", "東京 京都 都の の同 同期 期エ エン ンジ ジン"),
    ("Tokyo 東 and 한국어", "東 한국 국어"),
])
def test_cjk_runs_become_overlapping_pairs(text: str, pieces: str) -> None:
    assert cjk_bigrams(text) == pieces


@pytest.mark.parametrize(("text", "body"), [
    ("# Title\nbody\n", "# Title\nbody\n"),
    ("---\ntitle: x\n---\n# Title\n", "\n# Title\n"),
    ("\ufeff---\ntags: [a]\n...\nrest", "\nrest"),
    ("---\nunclosed: yes\nbody", "---\nunclosed: yes\nbody"),
])
def test_the_body_is_the_text_after_the_frontmatter(text: str, body: str) -> None:
    assert note_body(text) == body


@pytest.mark.parametrize(("text", "query", "snippet"), [
    ("We sync the index every night.", "sync", "We [sync] the index every night"),
    ("Un Café au lait", "cafe", "Un [Café] au lait"),
    (" ".join(f"w{number}" for number in range(40)) + " target end", "target",
     "…w26 w27 w28 w29 w30 w31 w32 w33 w34 w35 w36 w37 w38 w39 [target] end"),
    ("synchronize and syncing", "sync*", "[synchronize] and [syncing]"),
    ("nothing here", "absent", "nothing here"),
    ("", "sync", ""),
])
def test_snippets_mark_the_matched_words(text: str, query: str, snippet: str) -> None:
    assert make_snippet(text, parse_query(query)) == snippet
