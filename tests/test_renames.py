"""Moves: a deleted and an added path paired by content id, inode, permalink or similarity."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bm_sync import Detector, HashPolicy
from tests.helpers import write

BODY = "".join(f"- line number {number} of a fairly ordinary note\n" for number in range(20))


def record(root: Path) -> None:
    Detector(root).record()


def test_pure_rename_across_folders(notes: Path) -> None:
    write(notes, "inbox/idea.md", BODY)
    record(notes)
    (notes / "projects").mkdir()
    os.rename(notes / "inbox/idea.md", notes / "projects/idea-renamed.md")
    report = Detector(notes).status()
    assert report.moved == [("inbox/idea.md", "projects/idea-renamed.md")]
    assert report.added == [] and report.deleted == []


def test_directory_rename_is_n_moves_in_one_run(notes: Path) -> None:
    for number in range(30):
        write(notes, f"notes/sub{number % 3}/n{number}.md", f"# Note {number}\n")
    record(notes)
    os.rename(notes / "notes", notes / "archive")
    report = Detector(notes).status()
    assert len(report.moved) == 30
    assert all(old.replace("notes/", "archive/", 1) == new for old, new in report.moved)
    assert report.added == [] and report.deleted == []


def test_duplicates_pair_same_file_name_first(notes: Path) -> None:
    write(notes, "a/readme.md", "same\n")
    write(notes, "b/other.md", "same\n")
    record(notes)
    os.rename(notes / "a", notes / "z")  # z/readme.md
    os.rename(notes / "b/other.md", notes / "b/zz-other.md")
    report = Detector(notes).status()
    assert sorted(report.moved) == [("a/readme.md", "z/readme.md"),
                                    ("b/other.md", "b/zz-other.md")]


def test_renamed_then_edited_in_place_pairs_by_inode(notes: Path) -> None:
    text = "---\ntitle: t\n---\n" + BODY
    write(notes, "notes.txt", text)
    record(notes)
    os.rename(notes / "notes.txt", notes / "journal.txt")
    with open(notes / "journal.txt", "r+") as handle:  # rewrite 60% in place, same inode
        lines = handle.read().splitlines(keepends=True)
        handle.seek(0)
        handle.write("".join(lines[:10] + [f"new {n}\n" for n in range(13)]))
        handle.truncate()
    report = Detector(notes).status()
    assert report.moved == [("notes.txt", "journal.txt")]


def test_inode_reuse_with_unrelated_content_is_not_a_move(notes: Path) -> None:
    write(notes, "a.txt", BODY)
    record(notes)
    os.rename(notes / "a.txt", notes / "b.txt")
    (notes / "b.txt").write_text("completely\ndifferent\ncontent\n")
    report = Detector(notes).status()
    assert report.moved == [] and report.added == ["b.txt"] and report.deleted == ["a.txt"]


def test_same_permalink_pairs_a_rewritten_note(notes: Path) -> None:
    write(notes, "old-name.md", "---\npermalink: projects/roadmap\n---\n" + BODY)
    record(notes)
    (notes / "old-name.md").unlink()
    write(notes, "plans/roadmap-2027.md",
          "---\npermalink: projects/roadmap\n---\n# Entirely rewritten\n")
    report = Detector(notes).status()
    assert report.moved == [("old-name.md", "plans/roadmap-2027.md")]


def test_moved_and_edited_note_pairs_by_similarity(notes: Path) -> None:
    write(notes, "draft.md", BODY)
    record(notes)
    lines = BODY.splitlines(keepends=True)
    edited = "".join(lines[:12] + [f"- rewritten {n}\n" for n in range(8)])  # 60% kept
    write(notes, "final/essay.md", edited)  # a new file (new inode), like an editor's save-as
    (notes / "draft.md").unlink()
    report = Detector(notes).status()
    assert report.moved == [("draft.md", "final/essay.md")]


def test_below_half_similar_is_add_and_delete(notes: Path) -> None:
    write(notes, "draft.md", BODY)
    record(notes)
    lines = BODY.splitlines(keepends=True)
    write(notes, "other.md", "".join(lines[:8] + [f"- rewritten {n}\n" for n in range(12)]))
    (notes / "draft.md").unlink()
    report = Detector(notes).status()
    assert report.moved == [] and report.added == ["other.md"]
    assert report.deleted == ["draft.md"]


def test_move_keeps_tracking_after_record(notes: Path) -> None:
    write(notes, "a.md", BODY)
    record(notes)
    shutil.move(notes / "a.md", notes / "b.md")
    assert Detector(notes).record().moved == [("a.md", "b.md")]
    report = Detector(notes).status()
    assert report.change_count == 0 and report.unchanged == 1


def test_move_survives_a_threshold_change_in_the_same_run(notes: Path) -> None:
    """The content id changes representation (partial -> full), the inode, size, mtime don't."""
    write(notes, "video.bin", os.urandom(300_000))
    write(notes, "a.md", BODY)
    Detector(notes, policy=HashPolicy(full_hash_max_bytes=100_000)).record()
    (notes / "archive").mkdir()
    os.rename(notes / "video.bin", notes / "archive/video.bin")
    report = Detector(notes).status()  # default thresholds: 300 KB is now fully hashed
    assert report.moved == [("video.bin", "archive/video.bin")]
    assert report.added == [] and report.deleted == [] and report.modified == []


def test_same_inode_size_and_mtime_with_other_full_id_is_not_a_move(notes: Path) -> None:
    """Full blob ids are exact: a different one means different content, whatever the stat.

    What an inode reused by a new file of the same size and mtime (`cp -p`, `tar x`) looks
    like; built here by rewriting the renamed file in place and putting its mtime back, since
    whether a file system reuses an inode is up to it.
    """
    write(notes, "gone.bin", b"bye\n")
    record(notes)
    os.rename(notes / "gone.bin", notes / "new.bin")
    write(notes, "new.bin", b"new\n")  # same inode, same size, same (backdated) mtime
    report = Detector(notes).status()
    assert report.moved == [] and report.added == ["new.bin"] and report.deleted == ["gone.bin"]


def test_hard_links_pair_by_inode_in_path_order(notes: Path) -> None:
    write(notes, "a.txt", BODY)
    record(notes)
    os.rename(notes / "a.txt", notes / "m.txt")
    for name in ("z.txt", "c.txt", "x.txt"):  # three more names for the same inode
        os.link(notes / "m.txt", notes / name)
    with open(notes / "m.txt", "a") as handle:  # edited in place: no content id match
        handle.write("one more line\n")
    for _attempt in range(3):
        report = Detector(notes).status()
        assert report.moved == [("a.txt", "c.txt")]
        assert report.added == ["m.txt", "x.txt", "z.txt"]


def test_folder_name_with_uri_characters(tmp_path: Path) -> None:
    """The sketch store opens read-only through a file URI; `?` and `#` must stay path."""
    root = tmp_path / "a?b#c"
    write(root, "draft.md", BODY)
    record(root)
    lines = BODY.splitlines(keepends=True)
    write(root, "final/essay.md", "".join(lines[:12] + [f"- rewritten {n}\n" for n in range(8)]))
    (root / "draft.md").unlink()
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(root / ".basic-memory"))
    report = Detector(root).status()
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(root / ".basic-memory"))) == before
    assert report.moved == [("draft.md", "final/essay.md")]
