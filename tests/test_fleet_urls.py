"""The numeric parameters of a PostgreSQL URL, through the real CLI on the test server: the
URL's query is text, and asyncpg compares these as numbers. A wrong one is a usage error of
one line, refused before anything is created; a right one (asyncpg's own
`statement_cache_size=0`, the setting its docs give for PgBouncer) works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.helpers import run_bm, write


@pytest.fixture
def server_url() -> Iterator[str]:
    url = postgres.server().create_database()
    yield url
    postgres.drop_database(url)


@pytest.mark.parametrize(("suffix", "says"), [
    ("&statement_cache_size=abc", "statement_cache_size='abc': not an integer"),
    ("&prepared_statement_cache_size=abc", "prepared_statement_cache_size='abc': not an"),
    ("&prepared_statement_cache_size=-1", "must be at least 0"),  # hung forever
    ("&port=abc", "port='abc': not an integer"),
    ("&timeout=soon", "timeout='soon': not a number"),
    ("&command_timeout=0", "command_timeout='0': must be at least 0.001"),
    ("&max_cacheable_statement_size=1k", "not an integer"),
])
def test_a_non_number_is_a_usage_error(tmp_path: Path, server_url: str, suffix: str,
                                        says: str) -> None:
    write(tmp_path, "a.md", "# A\n")
    result = run_bm("sync", str(tmp_path), "--db", server_url + suffix)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert not (tmp_path / ".basic-memory").exists()


@pytest.mark.parametrize("suffix", [
    "&statement_cache_size=0",
    "&timeout=30&command_timeout=60.5&statement_cache_size=10&max_cacheable_statement_size=4096"
    "&max_cached_statement_lifetime=0",
])
def test_numbers_in_the_url_work(tmp_path: Path, server_url: str, suffix: str) -> None:
    write(tmp_path, "a.md", "# A\n\n- links_to [[B]]\n")
    first = run_bm("sync", str(tmp_path), "--db", server_url + suffix)
    assert first.returncode == 0 and "1 added" in first.stdout, first.stderr
    again = run_bm("sync", str(tmp_path), "--db", server_url + suffix)
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr
