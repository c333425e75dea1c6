"""Fixtures shared by the tests (helpers live in tests/helpers.py)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


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
