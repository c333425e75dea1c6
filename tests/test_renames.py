"""Moves: a deleted and an added path paired by content id, inode, permalink or similarity."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bm_sync import Detector, HashPolicy
from bm_sync.changes import HashKind
from bm_sync.renames import MoveCandidate, pair_moves
from bm_sync.sketch import compute_sketch, similarity
from tests.helpers import bm_json, run_bm, write

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


# -- pair_moves, rule by rule (pure: sketches and weights given as functions) ---------------


def lines(prefix: str, count: int) -> list[str]:
    return [f"{prefix} line {number} of something worth keeping" for number in range(count)]


TEN = lines("body", 10)


def kept(share: int, total: int = 10) -> list[str]:
    """`share` of TEN kept, the rest rewritten: a note `share`/10 similar to TEN."""
    return TEN[:share] + lines(f"rewritten {share}", total - share)


@dataclass(frozen=True)
class Side:
    """One candidate as a table row writes it: its lines (None: no sketch) and its evidence."""

    path: str
    text: list[str] | None = None
    content: str | None = None  # content id seed; default: the text itself
    ino: int | None = None
    size: int | None = None
    mtime_ns: int | None = None
    hash_kind: HashKind | None = HashKind.FULL
    permalink: str | None = None

    def candidate(self, side: str) -> MoveCandidate:
        seed = self.content if self.content is not None else repr(self.text)
        ino = self.ino if self.ino is not None else zlib.crc32(f"{side}{self.path}".encode())
        return MoveCandidate(self.path.encode(), hashlib.sha1(seed.encode()).digest(), 1, ino,
                             self.permalink, self.size, self.mtime_ns, self.hash_kind)

    def sketch(self) -> bytes | None:
        return None if self.text is None else compute_sketch("\n".join(self.text).encode())


def run_pairing(deleted: list[Side], added: list[Side],
                **options: Any) -> list[tuple[str, str, str]]:
    sketches = {(b"old", side.path.encode()): side.sketch() for side in deleted}
    sketches |= {(b"new", side.path.encode()): side.sketch() for side in added}
    moves, still_deleted, still_added = pair_moves(
        [side.candidate("old") for side in deleted], [side.candidate("new") for side in added],
        old_sketch=lambda candidate: sketches[b"old", candidate.path],
        new_sketch=lambda candidate: sketches[b"new", candidate.path], **options)
    paired_old = {move.old.path for move in moves}
    paired_new = {move.new.path for move in moves}
    assert [c.path for c in still_deleted] == sorted(
        side.path.encode() for side in deleted if side.path.encode() not in paired_old)
    assert [c.path for c in still_added] == sorted(
        side.path.encode() for side in added if side.path.encode() not in paired_new)
    return [(move.old.path.decode(), move.new.path.decode(), move.rule.value) for move in moves]


RULES = [
    # content id
    pytest.param([Side("a.md", TEN)], [Side("b/a.md", TEN)], {},
                 [("a.md", "b/a.md", "content")], id="content: a pure rename"),
    pytest.param([Side("x/readme.md", content="same"), Side("y/other.md", content="same")],
                 [Side("z/other.md", content="same"), Side("z/readme.md", content="same")], {},
                 [("y/other.md", "z/other.md", "content"),
                  ("x/readme.md", "z/readme.md", "content")],
                 id="content: duplicates pair by file name first"),
    pytest.param([Side("b.md", content="same"), Side("a.md", content="same")],
                 [Side("d.md", content="same"), Side("c.md", content="same")], {},
                 [("a.md", "c.md", "content"), ("b.md", "d.md", "content")],
                 id="content: then in path order"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", TEN), Side("c.md", kept(9))], {},
                 [("a.md", "b.md", "content")], id="content: before similarity"),
    # inode
    pytest.param([Side("v.bin", content="partial", ino=5, size=9, mtime_ns=1,
                       hash_kind=HashKind.PARTIAL)],
                 [Side("w.bin", content="full", ino=5, size=9, mtime_ns=1)], {},
                 [("v.bin", "w.bin", "inode")], id="inode: same size and mtime"),
    pytest.param([Side("v.bin", content="one", ino=5, size=9, mtime_ns=1)],
                 [Side("w.bin", content="two", ino=5, size=9, mtime_ns=1)], {},
                 [], id="inode: two full ids that differ are different content"),
    pytest.param([Side("a.txt", TEN, ino=5, size=9, mtime_ns=1)],
                 [Side("b.txt", kept(4), ino=5, size=8, mtime_ns=2)], {},
                 [("a.txt", "b.txt", "inode")], id="inode: 40% similar text"),
    pytest.param([Side("a.txt", TEN, ino=5, size=9, mtime_ns=1)],
                 [Side("b.txt", kept(2), ino=5, size=8, mtime_ns=2)], {},
                 [], id="inode: 20% similar is a reused inode"),
    pytest.param([Side("a.bin", content="a", ino=5, size=9, mtime_ns=1)],
                 [Side("b.bin", content="b", ino=5, size=8, mtime_ns=2)], {},
                 [], id="inode: a bare inode match never pairs"),
    pytest.param([Side("a.txt", TEN, ino=5, size=9, mtime_ns=1)],
                 [Side("b.txt", kept(4), ino=6, size=8, mtime_ns=2)], {},
                 [], id="inode: other inode, text is not markdown: no similarity rule"),
    # permalink
    pytest.param([Side("a.md", TEN, permalink="p/x")],
                 [Side("b.md", lines("new", 5), permalink="p/x")], {},
                 [("a.md", "b.md", "permalink")], id="permalink: same frontmatter permalink"),
    pytest.param([Side("a.txt", TEN, permalink="p/x")],
                 [Side("b.txt", lines("new", 5), permalink="p/x")], {},
                 [], id="permalink: markdown only"),
    pytest.param([Side("a.md", TEN, permalink="p/x")],
                 [Side("b.md", kept(9), permalink="p/y"), Side("c.md", lines("new", 5),
                                                               permalink="p/x")], {},
                 [("a.md", "c.md", "permalink")], id="permalink: before similarity"),
    # similarity
    pytest.param([Side("a.md", TEN)], [Side("b.md", kept(6))], {},
                 [("a.md", "b.md", "similarity")], id="similarity: 60% kept"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", kept(5))], {},
                 [("a.md", "b.md", "similarity")], id="similarity: exactly the threshold"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", kept(4))], {},
                 [], id="similarity: below the threshold"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", kept(6))],
                 {"similarity_threshold": 0.7}, [], id="similarity: threshold is an option"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", TEN[:5])], {},
                 [("a.md", "b.md", "similarity")], id="similarity: half deleted"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", TEN[:4])], {},
                 [], id="similarity: divided by the larger side"),
    pytest.param([Side("a.md", TEN)], [Side("b.md", kept(6)), Side("c.md", kept(8))], {},
                 [("a.md", "c.md", "similarity")], id="similarity: best score first"),
    pytest.param([Side("b.md", kept(8)), Side("a.md", TEN)], [Side("c.md", kept(9))], {},
                 [("a.md", "c.md", "similarity")], id="similarity: best pair, not first path"),
    pytest.param([Side("a.md", TEN)], [Side("c.md", kept(7)), Side("b.md", kept(7))], {},
                 [("a.md", "b.md", "similarity")], id="similarity: a tie goes to path order"),
    pytest.param([Side("a.md", None)], [Side("b.md", TEN)], {},
                 [], id="similarity: no sketch, no evidence"),
    pytest.param([Side("a.md", [], content="a")], [Side("b.md", [], content="b")], {},
                 [], id="similarity: empty notes are no evidence"),
    pytest.param([Side("a.md", TEN), Side("b.md", lines("b", 10))],
                 [Side("c.md", kept(8)), Side("d.md", lines("b", 9))],
                 {"rename_limit": 1}, [], id="rename limit: skipped above it"),
    pytest.param([Side("a.md", TEN), Side("b.md", lines("b", 10))],
                 [Side("c.md", kept(8)), Side("d.md", lines("b", 9))],
                 {"rename_limit": 2},
                 [("a.md", "c.md", "similarity"), ("b.md", "d.md", "similarity")],
                 id="rename limit: applied at it"),
    pytest.param([Side("a.md", TEN), Side("b.md", lines("b", 10))],
                 [Side("c.md", TEN), Side("d.md", lines("b", 9))],
                 {"rename_limit": 1},
                 [("a.md", "c.md", "content"), ("b.md", "d.md", "similarity")],
                 id="rename limit: counts what earlier rules left"),
]


@pytest.mark.parametrize(("deleted", "added", "options", "expected"), RULES)
def test_pair_moves_rules(deleted: list[Side], added: list[Side], options: dict[str, Any],
                          expected: list[tuple[str, str, str]]) -> None:
    assert run_pairing(deleted, added, **options) == expected


@pytest.mark.parametrize(("deleted", "added", "options", "expected"), RULES)
def test_pair_moves_ignores_input_order(deleted: list[Side], added: list[Side],
                                        options: dict[str, Any],
                                        expected: list[tuple[str, str, str]]) -> None:
    """Determinism: the result depends on the candidates, never on the order they come in."""
    for seed in range(3):
        shuffled_deleted, shuffled_added = deleted[:], added[:]
        random.Random(seed).shuffle(shuffled_deleted)
        random.Random(seed + 10).shuffle(shuffled_added)
        assert run_pairing(shuffled_deleted, shuffled_added, **options) == expected


# -- templates: lines many notes share weigh little -------------------------------------------

DAILY_TEMPLATE = ["---", "type: daily", "tags: [daily, journal]", "---", "## Focus", "## Tasks",
                  "## Notes", "## Journal", "- Mood:", "- Energy:", "## Links"]


def daily_note(day: int, body: list[str]) -> list[str]:
    return [*DAILY_TEMPLATE[:1], f"title: 2024-01-{day:02d}", *DAILY_TEMPLATE[1:4],
            f"# 2024-01-{day:02d}", *DAILY_TEMPLATE[4:], *body]


def template_weights(notes_sharing: int) -> Callable[[int], float]:
    """What the census gives when `notes_sharing` notes were made from the template."""
    shared = {zlib.crc32(line.encode()) for line in DAILY_TEMPLATE}
    return lambda line: 1 / notes_sharing if line in shared else 1.0


DAY_ONE = daily_note(1, ["- gym at seven", "call the bank about the card"])
DAY_TWO = daily_note(2, ["- write the quarterly report", "lunch with Ana"])
LONG_DAY = daily_note(3, lines("journal", 8))

TEMPLATES = [
    pytest.param([Side("2024-01-01.md", DAY_ONE)], [Side("2024-01-02.md", DAY_TWO)], None,
                 [], id="unweighted: the template's shape is not in the sketch"),
    pytest.param([Side("2024-01-01.md", DAY_ONE)], [Side("2024-01-02.md", DAY_TWO)], 30, [],
                 id="weighted: it is an add and a delete"),
    pytest.param([Side("2024-01-01.md", DAY_ONE, ino=7, size=1, mtime_ns=1)],
                 [Side("2024-01-02.md", DAY_TWO, ino=7, size=2, mtime_ns=2)], None,
                 [], id="unweighted: not with a reused inode either"),
    pytest.param([Side("2024-01-01.md", DAY_ONE, ino=7, size=1, mtime_ns=1)],
                 [Side("2024-01-02.md", DAY_TWO, ino=7, size=2, mtime_ns=2)], 30, [],
                 id="weighted: not with a reused inode either"),
    pytest.param([Side("2024-01-01.md", DAY_ONE)],
                 [Side("archive/2024-01-01.md", [*DAY_ONE, "- one more thing"])], 30,
                 [("2024-01-01.md", "archive/2024-01-01.md", "similarity")],
                 id="weighted: the same day moved with a line added is a move"),
    pytest.param([Side("2024-01-03.md", LONG_DAY)],
                 [Side("archive/2024-01-03.md",
                       daily_note(3, lines("journal", 6) + ["a new line", "another"]))], 30,
                 [("2024-01-03.md", "archive/2024-01-03.md", "similarity")],
                 id="weighted: the same day moved with two lines rewritten is a move"),
    pytest.param([Side("2024-01-01.md", DAY_ONE), Side("2024-01-03.md", LONG_DAY)],
                 [Side("2024-01-02.md", DAY_TWO),
                  Side("archive/2024-01-03.md", [*LONG_DAY, "- appended"])], 30,
                 [("2024-01-03.md", "archive/2024-01-03.md", "similarity")],
                 id="weighted: one run with both, only the real move pairs"),
    pytest.param([Side("2024-01-01.md", DAY_ONE)], [Side("2024-01-02.md", DAY_TWO)], 2, [],
                 id="weighted: two notes from a template are not a move either"),
    pytest.param([Side("a.md", DAILY_TEMPLATE)], [Side("b.md", DAILY_TEMPLATE[:-1])], 30, [],
                 id="weighted: nothing but template lines is no evidence"),
]


@pytest.mark.parametrize(("deleted", "added", "notes_sharing", "expected"), TEMPLATES)
def test_pair_moves_templates(deleted: list[Side], added: list[Side],
                              notes_sharing: int | None,
                              expected: list[tuple[str, str, str]]) -> None:
    weights = template_weights(notes_sharing) if notes_sharing else None
    assert run_pairing(deleted, added, line_weight=weights) == expected


@pytest.mark.parametrize(("deleted", "added", "options", "expected"), RULES)
def test_weights_of_one_change_nothing(deleted: list[Side], added: list[Side],
                                       options: dict[str, Any],
                                       expected: list[tuple[str, str, str]]) -> None:
    assert run_pairing(deleted, added, line_weight=lambda _line: 1.0, **options) == expected


WORDS = [f"line {number}" for number in range(12)]
EXACT_WEIGHTS = (0.0, 0.25, 0.5, 1.0)  # sums of these are exact: no rounding in the comparison


def brute_force(deleted: list[list[str]], added: list[list[str]],
                weight: Callable[[int], float]) -> list[tuple[int, int]]:
    """Rule 4 by definition: score every pair with `similarity`, take the best first."""
    scored = []
    for old_number, old in enumerate(deleted):
        for new_number, new in enumerate(added):
            score = similarity(compute_sketch("\n".join(old).encode()),
                               compute_sketch("\n".join(new).encode()), weight)
            if score >= 0.5:
                scored.append((-score, old_number, new_number))
    taken_old: set[int] = set()
    taken_new: set[int] = set()
    pairs = []
    for _score, old_number, new_number in sorted(scored):
        if old_number not in taken_old and new_number not in taken_new:
            taken_old.add(old_number)
            taken_new.add(new_number)
            pairs.append((old_number, new_number))
    return sorted(pairs)


@settings(max_examples=300, deadline=None)
@given(deleted=st.lists(st.lists(st.sampled_from(WORDS), max_size=8), min_size=1, max_size=5),
       added=st.lists(st.lists(st.sampled_from(WORDS), max_size=8), min_size=1, max_size=5),
       weights=st.lists(st.sampled_from(EXACT_WEIGHTS), min_size=len(WORDS),
                        max_size=len(WORDS)),
       weighted=st.booleans())
def test_similarity_rule_scores_exactly_the_pairs_that_qualify(
        deleted: list[list[str]], added: list[list[str]], weights: list[float],
        weighted: bool) -> None:
    """The candidate filter (lines rarest in the index first) never loses a pair that
    qualifies, and never changes which pair wins: same answer as scoring every pair."""
    by_line = {zlib.crc32(word.encode()): weight for word, weight in zip(WORDS, weights,
                                                                           strict=True)}
    weight = by_line.__getitem__ if weighted else (lambda _line: 1.0)
    olds = [Side(f"old{number}.md", text, content=f"old{number}")
            for number, text in enumerate(deleted)]
    news = [Side(f"new{number}.md", text, content=f"new{number}")
            for number, text in enumerate(added)]
    found = run_pairing(olds, news, line_weight=weight if weighted else None)
    assert sorted((int(old[3:-3]), int(new[3:-3])) for old, new, _rule in found) == brute_force(
        deleted, added, weight)


# -- end to end: `bm sync`, then `bm status` (the census is taken by the recording sync) ------

JOURNAL_BODIES = [
    ["- [x] gym at seven", "Called the bank about the card."],
    ["- [ ] quarterly report draft", "Lunch with Ana, talked about the move."],
    ["- [x] fix the bike", "Rain all day; read two chapters."],
    ["- [ ] book the dentist", "Long walk by the river with Sam."],
    ["- [x] ship the release", "Pizza night, early to bed."],
    ["- [ ] plan the garden", "Tried the new coffee place on Elm street."],
    ["- [x] call grandma", "Finished the puzzle at last."],
    ["- [ ] renew passport", "Team offsite: mostly about hiring."],
]


def journal_day(day: int) -> str:
    """A daily note from one template: only the date and two body lines differ."""
    return "\n".join(daily_note(day, JOURNAL_BODIES[day - 1])) + "\n"


def synced_journal(root: Path) -> None:
    """A week of daily notes and a few other notes, recorded by a real `bm sync`."""
    for day in range(1, 8):
        write(root, f"journal/2024-01-{day:02d}.md", journal_day(day))
    write(root, "projects/roadmap.md", "# Roadmap\n" + BODY)
    result = run_bm("sync", str(root), "--quiet")
    assert result.returncode == 0, result.stderr


def test_bm_status_template_delete_create_is_not_a_move(notes: Path) -> None:
    """Issue 7: deleting one day and creating the next from the same template is an add and a
    delete; the new day must not inherit the old one's id and history."""
    synced_journal(notes)
    (notes / "journal/2024-01-01.md").unlink()
    write(notes, "journal/2024-01-08.md", journal_day(8))
    report = bm_json("status", str(notes))
    assert report["moved"] == []
    assert report["added"] == ["journal/2024-01-08.md"]
    assert report["deleted"] == ["journal/2024-01-01.md"]


def test_bm_status_templated_note_moved_and_edited_is_still_a_move(notes: Path) -> None:
    synced_journal(notes)
    text = (notes / "journal/2024-01-03.md").read_text()
    write(notes, "archive/2024-01-03.md", text + "- [ ] one more thing for the day\n")
    (notes / "journal/2024-01-03.md").unlink()
    report = bm_json("status", str(notes))
    assert report["moved"] == [{"from": "journal/2024-01-03.md", "to": "archive/2024-01-03.md"}]
    assert report["added"] == [] and report["deleted"] == []
