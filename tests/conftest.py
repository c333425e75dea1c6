"""Fixtures shared by the tests (helpers live in tests/helpers.py)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import postgres
from tests.helpers_pgfirst import Database


@pytest.fixture
def notes() -> Iterator[Path]:
    """A notes folder that an unprivileged user can also reach (for permission tests)."""
    folder = Path(tempfile.mkdtemp(prefix="bm-notes-"))
    folder.chmod(0o755)
    yield folder
    for dirpath, dirnames, _files in os.walk(folder):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The database the test's syncs use, on both backends. SQLite: each folder's default
    file. PostgreSQL: a fresh database on the test server (tests/postgres.py), named by
    `BM_DATABASE_URL` for the library and every `bm` subprocess; no server fails the test."""
    if request.param == "sqlite":
        monkeypatch.delenv("BM_DATABASE_URL", raising=False)
        yield Database("sqlite", None)
        return
    url = postgres.server().create_database()
    monkeypatch.setenv("BM_DATABASE_URL", url)
    yield Database("postgres", url)
    postgres.drop_database(url)
