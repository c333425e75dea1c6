"""Ignore rules: nested .gitignore files and a root .bmignore, with real gitignore semantics."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bm_sync import Detector
from bm_sync.ignore import DEFAULT_RULES, IgnoreRules
from tests.helpers import as_unprivileged, bm_json, write


def added(root: Path, **kwargs) -> list[str]:
    return Detector(root, **kwargs).status().added


def test_state_and_git_folders_and_hidden_names_are_skipped(notes: Path) -> None:
    write(notes, "note.md", "n\n")
    write(notes, ".git/config", "[core]\n")
    write(notes, ".basic-memory/junk", "x")
    write(notes, ".obsidian/workspace.json", "{}")
    write(notes, ".DS_Store", "x")
    write(notes, "sub/.hidden.md", "h\n")
    assert added(notes) == ["note.md"]
    assert added(notes, include_hidden=True) == [
        ".DS_Store", ".obsidian/workspace.json", "note.md", "sub/.hidden.md"]


def test_root_gitignore_patterns_negation_and_directories(notes: Path) -> None:
    write(notes, ".gitignore", "*.tmp\n!keep.tmp\nbuild/\n/top-only.md\n")
    write(notes, "a.md", "a\n")
    write(notes, "x.tmp", "x")
    write(notes, "keep.tmp", "k")
    write(notes, "build/out.md", "o\n")
    write(notes, "docs/build/also.md", "o\n")
    write(notes, "top-only.md", "t\n")
    write(notes, "docs/top-only.md", "t\n")
    assert added(notes) == ["a.md", "docs/top-only.md", "keep.tmp"]


def test_nested_gitignore_applies_below_its_folder_and_wins(notes: Path) -> None:
    write(notes, ".gitignore", "*.log\n")
    write(notes, "projects/.gitignore", "drafts/\n!important.log\n")
    write(notes, "projects/drafts/d.md", "d\n")
    write(notes, "projects/important.log", "i")
    write(notes, "projects/other.log", "o")
    write(notes, "drafts/kept.md", "k\n")  # the nested rule does not reach the root
    write(notes, "root.log", "r")
    assert added(notes) == ["drafts/kept.md", "projects/important.log"]


def test_bmignore_takes_precedence_over_gitignore(notes: Path) -> None:
    write(notes, ".gitignore", "private/\n")
    write(notes, ".bmignore", "!private/\narchive/**\n")
    write(notes, "private/p.md", "p\n")
    write(notes, "archive/old.md", "o\n")
    write(notes, "a.md", "a\n")
    assert added(notes) == ["a.md", "private/p.md"]


def test_newly_ignored_tracked_file_is_deleted(notes: Path) -> None:
    write(notes, "a.md", "a\n")
    write(notes, "scratch/b.md", "b\n")
    Detector(notes).record()
    write(notes, ".bmignore", "scratch/\n")
    report = Detector(notes).status()
    assert report.deleted == ["scratch/b.md"] and report.added == []


def test_ignored_directory_is_not_entered(notes: Path) -> None:
    write(notes, ".gitignore", "node_modules/\n")
    write(notes, "node_modules/pkg/readme.md", "r\n")
    (notes / "node_modules" / "pkg").chmod(0o000)  # would fail if it were listed
    try:
        report = as_unprivileged(lambda: Detector(notes).status())
    finally:
        (notes / "node_modules" / "pkg").chmod(0o755)
    assert report.added == [] and report.failed == []


def test_unreadable_nested_gitignore_keeps_its_folder(notes: Path) -> None:
    """Its rules are unknown: no false adds (ignored files), no deletions (re-included ones)."""
    write(notes, ".gitignore", "*.log\n")
    write(notes, "projects/.gitignore", "!important.log\nbuild/\n")
    write(notes, "projects/important.log", "i")
    write(notes, "projects/n.md", "n\n")
    write(notes, "projects/build/out.md", "o\n")
    write(notes, "other.md", "o\n")
    Detector(notes).record()
    write(notes, "other.md", "edited elsewhere\n")
    (notes / "projects/.gitignore").chmod(0o000)
    report = as_unprivileged(lambda: Detector(notes).status())
    assert report.deleted == [] and report.added == []
    assert report.modified == ["other.md"]
    assert [(f.path, f.error) for f in report.failed] == [
        ("projects/.gitignore", "cannot read ignore file: permission denied")]


def test_unreadable_root_bmignore_keeps_everything(notes: Path) -> None:
    write(notes, ".bmignore", "drafts/\n")
    write(notes, "a.md", "a\n")
    write(notes, "drafts/d.md", "d\n")
    Detector(notes).record()
    (notes / "a.md").unlink()
    (notes / ".bmignore").chmod(0o000)
    report = as_unprivileged(lambda: Detector(notes).status())
    assert report.deleted == [] and report.added == [] and report.modified == []
    assert [(f.path, f.error) for f in report.failed] == [
        (".bmignore", "cannot read ignore file: permission denied")]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.sampled_from([
        "*.tmp", "!keep.tmp", "build/", "/root.md", "**/cache", "docs/**/draft*", "a?c",
        "[abc]*.md", "!important/", "# comment", "", "logs/*.log", "\\#hash", "name with space",
        "*/", "!*.md", "x/**", "deep/**/er/",
    ]), max_size=8),
    parts=st.lists(st.sampled_from([
        "a", "abc", "build", "root.md", "keep.tmp", "x.tmp", "cache", "docs", "draft1",
        "important", "logs", "y.log", "#hash", "name with space", "deep", "er", "z.md",
    ]), min_size=1, max_size=4),
    is_dir=st.booleans(),
)
def test_prefilter_gives_pathspecs_own_verdicts(lines: list[str], parts: list[str],
                                                is_dir: bool) -> None:
    """The one-regex prefilter in front of pathspec never changes an answer."""
    from pathspec import GitIgnoreSpec

    from bm_sync.ignore import _compile

    candidate = "/".join(parts) + ("/" if is_dir else "")
    assert _compile(lines).verdict(candidate) == (
        GitIgnoreSpec.from_lines(lines).check_file(candidate).include)


EDITOR_FILES = [
    "note.md.tmp", "note.md.swp", "note.md.swo", "note.md.swn", "note.md.swx", "4913",
    "note.md~", "#note.md#", "note.md.kate-swp", "note.md___jb_tmp___", "note.md___jb_old___",
    "~$report.docx", "deep/er/x.tmp", "deep/4913", "cache.tmp/inside.md",
]
NOT_EDITOR_FILES = [
    "4913.md", "x4913", "tmp.md", "swp", "notes~draft.md", "#hashtag.md", "a#b#c.md",
    "~home.md", "$~x.md", "report.docx", "tmp/kept.md",
]


@pytest.mark.parametrize("name", EDITOR_FILES)
def test_editor_and_temporary_files_are_not_tracked(notes: Path, name: str) -> None:
    """`bm status` (the real CLI) does not offer an editor's swap or backup file as a note."""
    write(notes, "note.md", "n\n")
    write(notes, name, "junk")
    assert bm_json("status", str(notes))["added"] == ["note.md"]


def test_names_that_only_look_like_editor_files_are_tracked(notes: Path) -> None:
    for name in NOT_EDITOR_FILES:
        write(notes, name, "kept")
    assert bm_json("status", str(notes))["added"] == sorted(NOT_EDITOR_FILES)


@pytest.mark.parametrize(("ignore_file", "lines"), [
    (".bmignore", "!*.tmp\n!4913\n!*~\n"),
    (".gitignore", "!*.tmp\n!4913\n!*~\n"),
    (".bmignore", "!*.tmp\n!/4913\n!backup.md~\n"),
])
def test_ignore_files_can_bring_editor_files_back(notes: Path, ignore_file: str,
                                                  lines: str) -> None:
    """The defaults are the lowest rules (like git's core.excludesFile): a `!` line wins."""
    write(notes, ignore_file, lines)
    for name in ("a.tmp", "4913", "backup.md~", "note.swp"):
        write(notes, name, "x")
    assert bm_json("status", str(notes))["added"] == ["4913", "a.tmp", "backup.md~"]


def test_a_tracked_file_that_became_a_default_ignore_is_kept_by_a_bmignore(notes: Path) -> None:
    write(notes, "draft.tmp", "d")
    write(notes, ".bmignore", "!*.tmp\n")
    assert bm_json("sync", str(notes))["added"] == ["draft.tmp"]
    (notes / ".bmignore").unlink()
    assert bm_json("status", str(notes))["deleted"] == ["draft.tmp"]


def test_hidden_editor_files_stay_out_when_hidden_names_are_tracked(notes: Path) -> None:
    write(notes, "note.md", "n\n")
    write(notes, ".note.md.swp", "swap")
    write(notes, ".#note.md", "lock")
    write(notes, ".hidden.md", "h\n")
    assert added(notes, include_hidden=True) == [".hidden.md", "note.md"]


@settings(max_examples=400, deadline=None)
@given(
    name=st.one_of(
        st.sampled_from([*EDITOR_FILES, *NOT_EDITOR_FILES, ".#x", ".x.swp", "~", "#", "##",
                         "~$", "4913~", "a.TMP", "a.tmp.md"]),
        st.text(alphabet="abt.#~$_-34919mpswxonj/", min_size=1, max_size=12).filter(
            lambda text: not text.startswith("/") and not text.endswith("/")
            and "//" not in text)),
    is_dir=st.booleans(),
    include_hidden=st.booleans(),
)
def test_default_rules_gate_gives_pathspecs_own_verdicts(name: str, is_dir: bool,
                                                         include_hidden: bool) -> None:
    """The one-character gate in front of the default rules never changes an answer, for the
    paths a walk offers: none inside an ignored folder, hidden ones only when hidden names are
    walked."""
    from pathspec import GitIgnoreSpec

    spec = GitIgnoreSpec.from_lines(DEFAULT_RULES)
    parts = name.split("/")
    if not include_hidden and any(part.startswith(".") for part in parts):
        return
    if any(spec.check_file("/".join(parts[:depth]) + "/").include
           for depth in range(1, len(parts))):
        return
    rules = IgnoreRules(Path("/nonexistent"), include_hidden=include_hidden)
    candidate = name + "/" if is_dir else name
    expected = spec.check_file(candidate).include is True
    assert rules.is_ignored((), name, is_dir) == expected
    last_bytes, first_bytes = rules.default_gate
    encoded = name.rpartition("/")[2].encode()
    if expected:
        assert encoded[-1] in last_bytes or encoded[0] in first_bytes
