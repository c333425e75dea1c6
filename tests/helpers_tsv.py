"""The reference for the PostgreSQL tsvector that `bm_sync.search.postgres_tsvector` builds in
Python: what the server's own functions make of the same words (the index used this SQL until
stop 9). tests/test_tsv.py, tests/helpers_search.py and bench/tsvector_write.py compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bm_sync.search import fold, words
from tests import postgres

# The server's tsvector of one document, from `postgres_columns`' parameters.
TSVECTOR_SQL = (
    "setweight(to_tsvector('simple', :a), 'A') || setweight(to_tsvector('simple', :b), 'B')"
    " || setweight(to_tsvector('simple', :c), 'C') || to_tsvector('simple', :d)"
    " || array_to_tsvector(CAST(:scope AS text[]))")


def reference_over_unnest(scope: str = "string_to_array(t.scope, ' ')") -> str:
    """`TSVECTOR_SQL` over a row `t` of an `unnest(...) AS t(..., a, b, c, d, scope)`."""
    expression = TSVECTOR_SQL.replace("CAST(:scope AS text[])", scope)
    for name in "abcd":
        expression = expression.replace(f":{name}", f"t.{name}")
    return expression


def postgres_columns(values: Sequence[str]) -> dict[str, Any]:
    """The words of each weight, split and folded as the sync splits them, joined by spaces:
    weight A the title, B tags and permalink, C observations, path and CJK pieces, D the body,
    and the filter tokens as lexemes of their own (`#` first)."""
    title, body, observations, tags, permalink, path, cjk, scope = values

    def joined(*texts: str) -> str:
        return " ".join(word for text in texts for word in words(fold(text)))

    return {"a": joined(title), "b": joined(tags, permalink),
            "c": joined(observations, path, cjk), "d": joined(body),
            "scope": ["#" + token for token in scope.split()]}


def run_sql(sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of `sql` (`$n` placeholders) on the test server, tsvector parameters sent as bytes
    in the binary format, as the sync sends them."""

    async def fetch() -> list[tuple[Any, ...]]:
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(postgres._driver_dsn(postgres.server().url))
        try:
            await connection.set_type_codec("tsvector", schema="pg_catalog", encoder=bytes,
                                            decoder=bytes, format="binary")
            return [tuple(row) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    rows: list[tuple[Any, ...]] = postgres._run_coroutine(fetch())
    return rows


def tsvector_texts(tsvectors: list[bytes]) -> list[str]:
    """The server's text form of tsvectors given in the binary format (one query)."""
    return [text for (text,) in run_sql("SELECT t::text FROM unnest($1::tsvector[]) t",
                                        tsvectors)]
