"""Detection fed by explicit paths (what a file watcher reports) against the full walk.

The contract: given exactly the paths that were touched (for a move or a folder rename, both
sides), `detect(paths=...)` finds the same changes as a full scan and records the same index;
every entry it was not told about is carried over untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bm_sync import BmSyncError, Change, Detector, Failure
from bm_sync.index_format import read_index
from tests.helpers import write

FOLDERS = ["", "a/", "b/", "a/c/", "d/e/"]
NAMES = ["x.md", "y.md", "z.txt", "w.md"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def findings(detector: Detector, paths: list[str] | None = None) -> tuple[set, list]:
    """What a read-only run finds: changes by identity, failures."""
    changes, failures = set(), []
    for finding in detector.detect(paths=paths):
        if isinstance(finding, Failure):
            failures.append(finding)
        else:
            assert isinstance(finding, Change)
            changes.add((finding.kind, finding.path, finding.old_path, finding.content_id))
    return changes, failures


def recorded_entries(detector: Detector, paths: list[str] | None) -> list:
    """Record a writable run (of `paths`, or of the whole tree) and read the index back."""
    run = detector.detect(writable=True, paths=paths)
    for _finding in run:
        pass
    run.record()
    run.close()
    return list(read_index(detector.index_path).entries())


def baseline(root: Path, files: dict[str, bytes]) -> Detector:
    for path, content in files.items():
        write(root, path, content)
    detector = Detector(root)
    detector.record()
    return detector


# -- the property -------------------------------------------------------------------------

class Tree:
    """The folder under test and the operations a watcher would report, with what it reports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.touched: set[str] = set()

    def files(self) -> list[str]:
        return sorted(str(path.relative_to(self.root)) for path in self.root.rglob("*")
                      if path.is_file() and ".basic-memory" not in path.parts)

    def folders(self) -> list[str]:
        return sorted(str(path.relative_to(self.root)) for path in self.root.rglob("*")
                      if path.is_dir() and ".basic-memory" not in path.parts
                      and path.name != ".basic-memory")

    def apply(self, operation: tuple, data: st.DataObject) -> None:
        name = operation[0]
        files, folders = self.files(), self.folders()
        if name == "create":
            path = operation[1]
            target = self.root / path
            if target.exists() or any(parent.is_file() for parent in target.parents):
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(operation[2])
            self.touched.add(path)
        elif name == "edit" and files:
            path = data.draw(st.sampled_from(files))
            (self.root / path).write_bytes(operation[2])
            self.touched.add(path)
        elif name == "same_size_edit" and files:
            path = data.draw(st.sampled_from(files))
            target = self.root / path
            before = target.stat()
            content = target.read_bytes()
            target.write_bytes(bytes(reversed(content)) if content else b"")
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
            self.touched.add(path)
        elif name == "delete" and files:
            path = data.draw(st.sampled_from(files))
            (self.root / path).unlink()
            self.touched.add(path)
        elif name == "move" and files:
            path = data.draw(st.sampled_from(files))
            target = self.root / operation[1]
            if target.exists() or any(parent.is_file() for parent in target.parents):
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.root / path, target)
            self.touched.update({path, operation[1]})
        elif name == "rename_folder" and folders:
            folder = data.draw(st.sampled_from(folders))
            target = self.root / operation[1]
            if target.exists() or (self.root / folder) in target.parents or any(
                    parent.is_file() for parent in target.parents):
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.root / folder, target)
            self.touched.update({folder, operation[1]})
        elif name == "delete_folder" and folders:
            folder = data.draw(st.sampled_from(folders))
            shutil.rmtree(self.root / folder)
            self.touched.add(folder)


paths = st.builds(lambda folder, name: folder + name, st.sampled_from(FOLDERS),
                  st.sampled_from(NAMES))
contents = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(
    lambda words: ("\n".join(words) + "\n").encode())
operations = st.one_of(
    st.tuples(st.just("create"), paths, contents),
    st.tuples(st.just("edit"), st.none(), contents),
    st.tuples(st.just("same_size_edit")),
    st.tuples(st.just("delete")),
    st.tuples(st.just("move"), paths),
    st.tuples(st.just("rename_folder"), st.sampled_from(["f", "a/g", "b/h", "d"])),
    st.tuples(st.just("delete_folder")),
)
initial = st.dictionaries(paths, contents, min_size=1, max_size=10)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=initial, steps=st.lists(operations, min_size=1, max_size=6), data=st.data())
def test_reported_paths_find_what_a_full_scan_finds(files: dict[str, bytes], steps: list,
                                                    data: st.DataObject) -> None:
    root = Path(tempfile.mkdtemp(prefix="bm-sources-"))
    try:
        detector = baseline(root, files)
        tree = Tree(root)
        for step in steps:
            tree.apply(step, data)
        touched = sorted(tree.touched)

        assert findings(detector, touched) == findings(detector)

        saved = detector.index_path.read_bytes()
        by_paths = recorded_entries(detector, touched)
        detector.index_path.write_bytes(saved)
        assert by_paths == recorded_entries(detector, None)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the rules, one by one ------------------------------------------------------------------

def test_unreported_changes_are_carried_over(tmp_path: Path) -> None:
    detector = baseline(tmp_path, {"a.md": b"one\n", "b.md": b"two\n"})
    write(tmp_path, "a.md", b"one, edited\n")
    write(tmp_path, "b.md", b"two, edited\n")
    report = detector.status(paths=["a.md"])
    assert report.modified == ["a.md"]
    recorded_entries(detector, ["a.md"])
    assert detector.status().modified == ["b.md"]  # still pending: nobody looked at it


def test_a_reported_folder_rename_is_a_move_of_every_note(tmp_path: Path) -> None:
    detector = baseline(tmp_path, {"old/a.md": b"alpha\n", "old/sub/b.md": b"beta\n",
                                   "keep.md": b"keep\n"})
    os.rename(tmp_path / "old", tmp_path / "new")
    report = detector.status(paths=["old", "new"])
    assert report.moved == [("old/a.md", "new/a.md"), ("old/sub/b.md", "new/sub/b.md")]
    assert report.added == report.deleted == []


def test_a_reported_path_that_is_gone_deletes_what_was_below_it(tmp_path: Path) -> None:
    detector = baseline(tmp_path, {"gone/a.md": b"alpha\n", "gone/b/c.md": b"gamma\n",
                                   "gone.md": b"not below\n"})
    shutil.rmtree(tmp_path / "gone")
    report = detector.status(paths=[str(tmp_path / "gone")])  # absolute works too
    assert report.deleted == ["gone/a.md", "gone/b/c.md"]


@pytest.mark.parametrize(("setup", "reported", "expected_added"), [
    ({"notes/.gitignore": b"*.tmp\n", "notes/x.tmp": b"scratch\n"}, ["notes/x.tmp"], []),
    ({".bmignore": b"drafts/\n", "drafts/x.md": b"draft\n"}, ["drafts/x.md"], []),
    ({".obsidian/app.md": b"settings\n"}, [".obsidian/app.md"], []),
    ({"notes/.hidden.md": b"hidden\n"}, ["notes/.hidden.md"], []),
    ({"notes/x.md": b"visible\n"}, ["notes/x.md"], ["notes/x.md"]),
    ({"notes/x.md": b"visible\n"}, ["notes"], ["notes/x.md"]),
    ({"notes/x.md": b"visible\n"}, ["notes/"], ["notes/x.md"]),
    ({"notes/x.md": b"visible\n"}, ["./notes/../notes/x.md"], ["notes/x.md"]),
], ids=["nested gitignore", "root bmignore", "hidden folder", "hidden file", "a file",
        "a folder", "a folder with a slash", "a path to normalise"])
def test_reported_paths_follow_the_ignore_rules(tmp_path: Path, setup: dict[str, bytes],
                                                reported: list[str],
                                                expected_added: list[str]) -> None:
    detector = baseline(tmp_path, {"base.md": b"base\n"})
    for path, content in setup.items():
        write(tmp_path, path, content)
    assert detector.status(paths=reported).added == expected_added


def test_a_reported_gitignore_rewalks_its_folder(tmp_path: Path) -> None:
    detector = baseline(tmp_path, {"notes/a.md": b"a\n", "notes/b.log.md": b"log\n",
                                   "other/b.log.md": b"kept\n"})
    write(tmp_path, "notes/.gitignore", b"*.log.md\n")
    report = detector.status(paths=["notes/.gitignore"])
    assert report.deleted == ["notes/b.log.md"]


def test_a_symlinked_folder_is_not_followed(tmp_path: Path) -> None:
    detector = baseline(tmp_path, {"real/a.md": b"a\n"})
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert detector.status(paths=["link/a.md", "link"]).added == []


def test_an_absolute_path_through_a_link_to_the_root(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    detector = baseline(root, {"a.md": b"a\n"})
    os.symlink(root, tmp_path / "n2")
    write(root, "a.md", b"a, edited\n")
    assert detector.status(paths=[str(tmp_path / "n2" / "a.md")]).modified == ["a.md"]


@pytest.mark.parametrize("outside", ["../elsewhere.md", "/etc/passwd"])
def test_a_path_outside_the_folder_is_an_error(tmp_path: Path, outside: str) -> None:
    detector = baseline(tmp_path / "notes", {"a.md": b"a\n"})
    with pytest.raises(BmSyncError, match="not inside"):
        detector.status(paths=[outside])


def test_without_a_baseline_the_whole_tree_is_walked(tmp_path: Path) -> None:
    write(tmp_path, "a.md", b"a\n")
    write(tmp_path, "b.md", b"b\n")
    assert Detector(tmp_path).status(paths=["a.md"]).added == ["a.md", "b.md"]


def test_racy_entries_left_out_are_smudged_not_trusted(tmp_path: Path) -> None:
    """A carried-over entry recorded too close to its file's last write must not be trusted
    because a later (partial) recording moved the racy threshold past it."""
    write(tmp_path, "fresh.md", b"one\n", old=False)
    write(tmp_path, "other.md", b"x\n")
    detector = Detector(tmp_path)
    detector.record()
    fresh = tmp_path / "fresh.md"
    before = fresh.stat()
    fresh.write_bytes(b"two\n")  # same size; put the stat back as far as we can
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    write(tmp_path, "other.md", b"x, edited\n")
    recorded_entries(detector, ["other.md"])
    entry = next(e for e in read_index(detector.index_path).entries() if e.path == b"fresh.md")
    assert entry.ctime_ns == 0  # smudged: the next run reads it
    assert detector.status().modified == ["fresh.md"]
