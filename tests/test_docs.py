"""Every code snippet in README.md and docs/*.md runs as written.

Fenced blocks are read by their language: ```python blocks run as a script (in a subprocess,
from a folder holding `notes/`, a copy of examples/notes); ```bash blocks run line by line
(a `\\`-continued line is one command) in that copy, each command to exit 0. In bash blocks,
`examples/notes` and `<root>` stand for the notes folder and are replaced by the copy's path;
nothing else is substituted. A bash command must be a `bm ...` or `git ...` command (after
`NAME=value` assignments), or be listed in `NOT_RUN` with the reason it does not run here.
Blocks of data (```json, ```text, ...) are not code; a fence without a language is an error,
so that nothing is skipped silently.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = {"python": "python", "bash": "bash", "sh": "bash", "shell": "bash", "console": "bash"}
DATA = {"json", "text", "toml", "yaml", "ini", "diff", "markdown"}

# Commands shown in the docs that are not meant to run in a test, each with why.
NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/bm sync examples/notes "
    "&& .venv/bin/bm status examples/notes":
        "installs bm-sync into a new virtualenv from the registry; the tests run inside one",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest":
        "installs the test extras and runs this very test suite (what CI runs)",
}

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Snippet:
    document: str  # relative to the repository
    line: int  # of the opening fence
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def snippets(document: Path) -> list[Snippet]:
    text = document.read_text()
    return [Snippet(str(document.relative_to(REPO)), text.count("\n", 0, match.start()) + 1,
                    match.group(1).strip().lower(), match.group(2))
            for match in _FENCE.finditer(text)]


def commands(snippet: Snippet) -> list[str]:
    """The commands of a bash block: one a line, `\\` continuations joined, comments out."""
    joined = re.sub(r"[ \t]*\\\n[ \t]*", " ", snippet.text)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def program(command: str) -> str:
    """The program a command runs: its first word after `NAME=value` assignments."""
    words = shlex.split(command, comments=True)
    while words and _ASSIGNMENT.match(words[0]):
        words.pop(0)
    return words[0] if words else ""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder holding `notes/` (a copy of examples/notes) and `bin/bm` (this checkout's
    bm, run by this interpreter)."""
    shutil.copytree(REPO / "examples" / "notes", tmp_path / "notes")
    (tmp_path / "bin").mkdir()
    launcher = tmp_path / "bin" / "bm"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m bm_sync "$@"\n')
    launcher.chmod(0o755)
    return tmp_path


def _run(snippet: Snippet, workspace: Path) -> list[str]:
    """Run one snippet; return what failed, one line each."""
    notes = workspace / "notes"
    environment = {"PATH": f"{workspace / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                   "HOME": str(workspace), "PYTHONPATH": str(REPO / "src")}
    if RUN[snippet.language] == "python":
        script = workspace / "snippet.py"
        script.write_text(snippet.text)
        result = subprocess.run([sys.executable, str(script)], cwd=workspace, env=environment,
                                capture_output=True, text=True, timeout=300)
        if result.returncode:
            last = (result.stderr.strip().splitlines() or [""])[-1]
            return [f"{snippet.where}: the python snippet exited {result.returncode}: {last}"]
        return []
    failures = []
    for command in commands(snippet):
        if command in NOT_RUN:
            continue
        if program(command) not in ("bm", "git"):
            failures.append(f"{snippet.where}: `{command}` is not a bm or git command; make it "
                            "one, or add it to NOT_RUN with a reason")
            continue
        runnable = command.replace("examples/notes", str(notes)).replace("<root>", str(notes))
        result = subprocess.run(["bash", "-c", runnable], cwd=notes, env=environment,
                                capture_output=True, text=True, timeout=300)
        if result.returncode:
            last = (result.stderr.strip().splitlines() or [""])[-1]
            failures.append(f"{snippet.where}: `{command}` exited {result.returncode}: {last}")
    return failures


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_snippet_runs_as_written(document: Path, workspace: Path) -> None:
    """The snippets of one document, in order, in one copy of the example notes (a later
    snippet may use what an earlier one synced, as a reader following along would)."""
    failures = []
    for snippet in snippets(document):
        if snippet.language in RUN:
            failures += _run(snippet, workspace)
        elif snippet.language not in DATA:
            failures.append(f"{snippet.where}: a ```{snippet.language or ''} block: give it a "
                            f"language ({', '.join(sorted(RUN))} run; "
                            f"{', '.join(sorted(DATA))} are data)")
    assert not failures, "\n".join(failures)


def test_every_command_not_run_is_still_in_the_docs() -> None:
    shown = {command for document in DOCUMENTS for snippet in snippets(document)
             if snippet.language in RUN and RUN[snippet.language] == "bash"
             for command in commands(snippet)}
    assert set(NOT_RUN) <= shown, set(NOT_RUN) - shown


@pytest.mark.parametrize(("text", "expected"), [
    ("bm sync examples/notes\n", ["bm sync examples/notes"]),
    ("bm status   # what a sync would apply\n", ["bm status   # what a sync would apply"]),
    ("# a comment\n\nbm history a.md \\\n  --show '~1'\n", ["bm history a.md --show '~1'"]),
])
def test_commands_of_a_bash_block(text: str, expected: list[str]) -> None:
    assert commands(Snippet("x.md", 1, "bash", text)) == expected


@pytest.mark.parametrize(("command", "expected"), [
    ("bm sync notes", "bm"),
    ("GIT_INDEX_FILE=notes/.basic-memory/index git ls-files -s", "git"),
    ("A=1 B=2 git status", "git"),
    (".venv/bin/bm status", ".venv/bin/bm"),
    ("python3 -m venv .venv", "python3"),
])
def test_program_of_a_command(command: str, expected: str) -> None:
    assert program(command) == expected
