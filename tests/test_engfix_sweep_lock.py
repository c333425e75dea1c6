"""A rebuild's sweep must not wait on the run's own sketch cache (soak defect: a restarted
`bm sync` hung for 15+ minutes).

The run writing the cache flushed 500 sketches at a time but committed only at its end; a
flush larger than SQLite's page cache spills and so takes the file's exclusive lock. The sweep
then read the cache through a second connection of the same process, which waited 5 s (the
busy timeout) on every read while the lock was held: minutes per rebuild. The notes here have
many lines each so that the first flush spills; a hang fails the test by the subprocess's
timeout instead of blocking the suite.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import BM, write

NOTES = 520  # more than one flush of the cache (500 sketches)
LINES = 1200  # sketches large enough for the flush to outgrow the page cache (2 MB)
MOVED = list(range(0, NOTES, 13))
# Seconds: a clean rebuild takes a few; the hang took 5 s per cache read, 2 reads per move.
GUARD = 120


def test_rebuild_with_moves_completes_and_pairs_them(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    for number in range(NOTES):
        write(notes, f"d{number % 10}/note{number}.md", f"# Note {number}\n\n" + "".join(
            f"sentence {line} of note {number} says something\n" for line in range(LINES)))
    first = subprocess.run([*BM, "sync", str(notes)], capture_output=True, text=True,
                           timeout=GUARD)
    assert first.returncode == 0, first.stderr
    for number in MOVED:
        (notes / "moved").mkdir(exist_ok=True)
        (notes / f"d{number % 10}/note{number}.md").rename(notes / f"moved/note{number}.md")
    # A lost index: the next sync rebuilds by a full scan and sweeps the rows left behind.
    (notes / ".basic-memory" / "index").unlink()
    try:
        rebuild = subprocess.run([*BM, "sync", str(notes), "--json"], capture_output=True,
                                 text=True, timeout=GUARD)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the rebuild did not finish in {GUARD} s (hung)") from None
    assert rebuild.returncode == 0, rebuild.stderr
    report = json.loads(rebuild.stdout)
    assert report["rebuilt"]
    assert sorted((move["from"], move["to"]) for move in report["moved"]) == sorted(
        (f"d{number % 10}/note{number}.md", f"moved/note{number}.md") for number in MOVED)
    assert report["deleted"] == [] and report["added"] == []
