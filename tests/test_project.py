"""Project hygiene that a user notices: the public API, the docs, lint."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def _imports(path: Path) -> set[str]:
    """The bm_sync modules a source file imports (at any level, type-checking ones excluded)."""
    tree = ast.parse(path.read_text())
    checking = {id(node) for top in ast.walk(tree) if isinstance(top, ast.If)
                and "TYPE_CHECKING" in ast.unparse(top.test) for node in ast.walk(top)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bm_sync"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("bm_sync"))
    return found


def _module_graph() -> dict[str, set[str]]:
    source = REPO / "src"
    modules = {".".join(path.relative_to(source).with_suffix("").parts).removesuffix(".__init__"):
               path for path in source.glob("bm_sync/**/*.py")}
    return {name: {imported for imported in _imports(path) if imported in modules
                   and imported != name} for name, path in modules.items()}


def test_imports_have_no_cycles() -> None:
    graph = _module_graph()
    graph["bm_sync"] = set()  # the package's lazy exports point up on purpose
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            assert state.get(imported) != "open", " -> ".join([*trail, module, imported])
            if imported not in state:
                visit(imported, [*trail, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize(("module", "forbidden"), [
    ("bm_sync.apply", {"bm_sync.detector", "bm_sync.renames", "bm_sync.sketch", "bm_sync.scan",
                       "bm_sync.sync", "bm_sync.rebuild"}),
    ("bm_sync.db.engine", {"bm_sync"}),
    ("bm_sync.db.state", {"bm_sync.detector", "bm_sync.sync", "bm_sync.apply"}),
])
def test_modules_import_only_down_the_pipeline(module: str, forbidden: set[str]) -> None:
    assert not _module_graph()[module] & forbidden


def test_mypy_strict_is_clean() -> None:
    """The package ships py.typed: its annotations are a promise, checked strictly."""
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "src"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
