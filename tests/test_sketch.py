"""Sketches, similarity, line weights and the line census of the sketch store (real SQLite)."""

from __future__ import annotations

import hashlib
import zlib
from array import array
from pathlib import Path

import pytest

from bm_sync import sketch
from bm_sync.sketch import (
    MAX_LINES,
    LineWeights,
    SketchStore,
    compute_sketch,
    line_counts,
    similarity,
)


def lines_of(sketch_bytes: bytes) -> list[int]:
    return list(array("I", sketch_bytes))


def crcs(*lines: bytes) -> list[int]:
    return sorted(zlib.crc32(line) for line in lines)


@pytest.mark.parametrize(("content", "expected"), [
    pytest.param(b"", [], id="empty"),
    pytest.param(b"\n\n   \n\t\n", [], id="only blank lines"),
    pytest.param(b"a\nb\n", crcs(b"a", b"b"), id="one hash per line"),
    pytest.param(b"  a  \n\tb\r\n", crcs(b"a", b"b"), id="whitespace and CR stripped"),
    pytest.param(b"b\na\n", crcs(b"a", b"b"), id="order does not matter"),
    pytest.param(b"a\na\nb", crcs(b"a", b"a", b"b"), id="repeats kept (a multiset)"),
    pytest.param(b"a\n\n\nb\n", crcs(b"a", b"b"), id="blank lines skipped"),
])
def test_compute_sketch(content: bytes, expected: list[int]) -> None:
    assert lines_of(compute_sketch(content)) == expected


def test_a_very_long_file_keeps_its_smallest_line_hashes() -> None:
    content = b"".join(b"line %d\n" % number for number in range(MAX_LINES + 100))
    everything = sorted(zlib.crc32(b"line %d" % number) for number in range(MAX_LINES + 100))
    assert lines_of(compute_sketch(content)) == everything[:MAX_LINES]


def text(*lines: str) -> bytes:
    return compute_sketch("\n".join(lines).encode())


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param(text("a", "b"), text("a", "b"), 1.0, id="identical"),
    pytest.param(text("a", "b"), text("c", "d"), 0.0, id="disjoint"),
    pytest.param(text("a", "b", "c", "d"), text("a", "b", "x", "y"), 0.5, id="half kept"),
    pytest.param(text("a", "b"), text("a", "b", "c", "d"), 0.5, id="divided by the larger side"),
    pytest.param(text("a", "b", "c", "d"), text("a"), 0.25, id="shrunk to one line"),
    pytest.param(text("a", "a", "b"), text("a", "b", "b"), 2 / 3, id="multiset intersection"),
    pytest.param(b"", text("a"), 0.0, id="old side empty"),
    pytest.param(text("a"), b"", 0.0, id="new side empty"),
])
def test_similarity(old: bytes, new: bytes, expected: float) -> None:
    assert similarity(old, new) == pytest.approx(expected)
    assert similarity(new, old) == pytest.approx(expected)


# Template lines a shape cannot tell from words (headings and keys never reach a sketch).
TEMPLATE = ("What went well today?", "What to improve", "Who I met", "Read", "Water")


def template_weight(line: int) -> float:
    """Template lines weigh 0 (every note has them), the rest 1."""
    return 0.0 if line in {zlib.crc32(text_line.encode()) for text_line in TEMPLATE} else 1.0


@pytest.mark.parametrize(("old", "new", "unweighted", "weighted"), [
    pytest.param(text(*TEMPLATE, "gym", "read"), text(*TEMPLATE, "call mum", "bake"),
                 5 / 7, 0.0, id="two notes from one template"),
    pytest.param(text(*TEMPLATE, "a", "b", "c", "d"), text(*TEMPLATE, "a", "b", "c", "x"),
                 8 / 9, 0.75, id="same note, one line changed"),
    pytest.param(text(*TEMPLATE), text(*TEMPLATE), 1.0, 0.0,
                 id="only template lines: nothing to go on"),
    pytest.param(text("a", "b"), text("a", "c"), 0.5, 0.5, id="no template lines"),
])
def test_weighted_similarity_sets_shared_lines_aside(old: bytes, new: bytes, unweighted: float,
                                                     weighted: float) -> None:
    assert similarity(old, new) == pytest.approx(unweighted)
    assert similarity(old, new, template_weight) == pytest.approx(weighted)


@pytest.mark.parametrize(("old", "new"), [
    (text("a", "b", "c"), text("a", "b", "d", "e")),
    (text("a", "a", "b"), text("a")),
    (text("x"), text("y")),
])
def test_weights_of_one_give_the_unweighted_score(old: bytes, new: bytes) -> None:
    assert similarity(old, new, lambda _line: 1.0) == similarity(old, new)


def test_line_counts() -> None:
    assert line_counts(None) == {}
    assert line_counts(text("a", "a", "b")) == {zlib.crc32(b"a"): 2, zlib.crc32(b"b"): 1}


def test_line_weights_load_once_and_only_when_asked() -> None:
    loads: list[int] = []

    def load() -> dict[int, float]:
        loads.append(1)
        return {7: 0.25}

    weights = LineWeights(load)
    assert loads == []
    assert (weights(7), weights(8), weights(7)) == (0.25, 1.0, 0.25)
    assert loads == [1]


# -- the line census in sketches.db --------------------------------------------------------


def content_id(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def record(store_path: Path, notes: list[bytes], *, stale: list[bytes] = ()) -> None:
    """What a recording run does: put the sketches of what it hashed, then commit with the
    content ids the index now holds (`stale` ones are put but no longer live)."""
    store = SketchStore(store_path, writable=True)
    for data in [*stale, *notes]:
        store.put(content_id(data), None, compute_sketch(data))
    store.commit([content_id(data) for data in notes], len(notes))
    store.close()


def weights_of(store_path: Path) -> LineWeights:
    return SketchStore(store_path, writable=False).line_weights()


# A template line with words (a heading or key would never reach the census: no sketch has it).
TASKS = "What did I get done"


def daily(number: int) -> bytes:
    return (f"---\ntitle: day {number}\ntype: daily\n---\n## Tasks\n{TASKS}\n- task {number}\n"
            f"## Notes\nnote {number}\n").encode()


def crc(line: str) -> int:
    return zlib.crc32(line.encode())


def test_census_weighs_a_line_by_how_many_notes_hold_it(tmp_path: Path) -> None:
    notes = [daily(number) for number in range(20)] + [
        b"twice here\nshared by two\ntwice here\n", b"other\nshared by two\ntwice here\n"]
    record(tmp_path / "sketches.db", notes)
    weights = weights_of(tmp_path / "sketches.db")
    assert weights(crc(TASKS)) == pytest.approx(1 / 20)
    assert weights(crc("twice here")) == pytest.approx(1 / 2)  # twice in a note counts once
    assert weights(crc("## Tasks")) == 1.0  # a heading is never in a sketch
    assert weights(crc("shared by two")) == pytest.approx(1 / 2)
    assert weights(crc("task 3")) == 1.0
    assert weights(crc("never seen")) == 1.0


def test_old_versions_of_a_note_do_not_make_its_lines_boilerplate(tmp_path: Path) -> None:
    """A note edited fifty times leaves fifty sketches; only the live one is counted."""
    versions = [b"my todo list\nbuy milk\n- item %d\n" % number for number in range(50)]
    others = [b"unrelated %d\n" % number for number in range(10)]
    record(tmp_path / "sketches.db", [versions[-1], *others], stale=versions[:-1])
    assert weights_of(tmp_path / "sketches.db")(crc("my todo list")) == 1.0


def test_census_follows_the_tree_once_enough_notes_changed(tmp_path: Path) -> None:
    store_path = tmp_path / "sketches.db"
    first = [daily(number) for number in range(10)]
    record(store_path, first)
    assert weights_of(store_path)(crc(TASKS)) == pytest.approx(1 / 10)
    second = first + [daily(number) for number in range(10, 30)]
    record(store_path, second)
    assert weights_of(store_path)(crc(TASKS)) == pytest.approx(1 / 30)


def test_census_is_the_same_whatever_the_order_of_puts(tmp_path: Path) -> None:
    notes = [daily(number) for number in range(30)]
    record(tmp_path / "a.db", notes)
    record(tmp_path / "b.db", notes[::-1])
    lines = [crc(line) for line in (TASKS, "task 1", "note 2")]
    assert ([weights_of(tmp_path / "a.db")(line) for line in lines]
            == [weights_of(tmp_path / "b.db")(line) for line in lines])


def test_a_sampled_census_scales_its_counts(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Past CENSUS_SAMPLE live sketches the census reads a sample and scales it to the tree."""
    monkeypatch.setattr(sketch, "CENSUS_SAMPLE", 20)
    record(tmp_path / "sketches.db", [daily(number) for number in range(80)])
    assert weights_of(tmp_path / "sketches.db")(crc(TASKS)) == pytest.approx(1 / 80)


def test_pruning_still_drops_sketches_of_content_no_longer_recorded(tmp_path: Path) -> None:
    store_path = tmp_path / "sketches.db"
    gone = [b"gone %d\n" % number for number in range(1100)]
    kept = [b"kept\n"]
    record(store_path, kept, stale=gone)
    store = SketchStore(store_path, writable=False)
    assert store.get(content_id(gone[0])) is None
    assert store.get(content_id(kept[0])) is not None


@pytest.mark.parametrize(("state", "weight_after_a_recording_run"), [
    ("missing", 1 / 5), ("empty file", 1 / 5), ("before the census", 1 / 5), ("garbage", 1.0)])
def test_a_missing_old_or_damaged_store_weighs_every_line_one(
        tmp_path: Path, state: str, weight_after_a_recording_run: float) -> None:
    """sketches.db is a cache: whatever became of it, weights fall back to 1 and nothing
    raises, for reading runs and recording runs alike."""
    store_path = tmp_path / "sketches.db"
    if state == "empty file":
        store_path.write_bytes(b"")
    elif state == "garbage":
        store_path.write_bytes(b"not a database at all " * 100)
    elif state == "before the census":
        import sqlite3

        connection = sqlite3.connect(store_path)
        connection.execute("CREATE TABLE sketch (content_id BLOB PRIMARY KEY, "
                           "permalink TEXT, lines BLOB NOT NULL) WITHOUT ROWID")
        connection.execute("INSERT INTO sketch VALUES (?, NULL, ?)",
                           (content_id(b"x"), compute_sketch(b"x")))
        connection.commit()
        connection.close()
    assert weights_of(store_path)(crc("---")) == 1.0
    record(store_path, [daily(number) for number in range(5)])  # must not raise
    after = weights_of(store_path)(crc(TASKS))
    assert after == pytest.approx(weight_after_a_recording_run)


def test_a_damaged_sketch_row_is_no_evidence(tmp_path: Path) -> None:
    import sqlite3

    store_path = tmp_path / "sketches.db"
    record(store_path, [b"a\n"])
    connection = sqlite3.connect(store_path)
    connection.execute("INSERT INTO sketch VALUES (?, NULL, ?)", (b"bad", b"\x01\x02\x03"))
    connection.commit()
    connection.close()
    assert SketchStore(store_path, writable=False).get(b"bad") is None
