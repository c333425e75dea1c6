"""Project hygiene that a user notices: the public API, the docs, lint."""

from __future__ import annotations

import re
import subprocess
import sys

import bm_sync
from tests.helpers import REPO, run_bm


def test_all_is_exactly_the_public_namespace() -> None:
    public = {name for name in vars(bm_sync) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(bm_sync, name)).__name__ == "module"}
    lazy = set(bm_sync._LAZY)  # the sync side, imported on first use
    assert set(bm_sync.__all__) - {"__version__"} == (public - modules) | lazy
    for name in lazy:
        assert getattr(bm_sync, name).__name__ == name


def test_every_command_and_option_is_documented() -> None:
    reference = (REPO / "docs" / "cli.md").read_text()
    help_text = run_bm("--help").stdout
    commands = re.findall(r"^\s{2}(\w+)\s{2,}", help_text.split("Commands:")[1], re.M)
    assert commands, help_text
    for command in commands:
        assert f"## `bm {command}" in reference, f"bm {command} is not in docs/cli.md"
        options = re.findall(r"(--[a-z][a-z-]+)", run_bm(command, "--help").stdout)
        for option in set(options) - {"--help"}:
            assert option in reference, f"bm {command} {option} is not in docs/cli.md"


def test_ruff_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "bench"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
