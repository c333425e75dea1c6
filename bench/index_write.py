"""CPU per index write with one changed entry: the splice writer against the full writer.

    .venv/bin/python bench/index_write.py                          # 1k, 10k, 100k entries
    .venv/bin/python bench/index_write.py --sizes 1000,100000 --runs 9 --changes 10

Every sync ends by writing the index; a watcher writes it after every batch. `write_index`
packs every entry through dulwich; `splice_index` copies the old file's bytes for the entries
that did not change. Both are driven exactly as `recording.IndexRecording.write` drives them
(the same merged view of the old index and the run's updates).

Method: for each size a synthetic index (paths shaped like bench/make_corpus.py's, about 1%
of the entries hashed partially, so the kinds extension is not empty) is written once under
--workdir. Each sample is a fresh child process that reads it, changes `--changes` entries
spread over the index, and times only the write (CPU: `time.process_time`, wall around it);
it reports its own peak RSS. dulwich is imported before the clock starts (a process imports
it once). Splice and full children alternate, which goes first too; the table gives medians,
and every sample checks that both writers wrote the same bytes. Results go to
bench/results/index-write-*.json. Stdlib only (plus bm_sync itself).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import environment, markdown_table, ratio, results_path  # noqa: E402

WRITERS = ("splice", "full")
NS = 1_000_000_000


def synthetic_index(path: Path, size: int) -> None:
    """`size` entries in path order, written by the full writer, as a sync would."""
    from bm_sync.changes import HashKind
    from bm_sync.index_format import IndexEntry, write_index

    chance = random.Random(size)
    paths = sorted(
        f"Area {number % 12:02}/Folder {number % 97:02} Notes/Topic {number % 7}/"
        f"Note {number:06} about things.md".encode()
        for number in range(size))
    entries = []
    for number, name in enumerate(paths):
        kind = HashKind.PARTIAL if number % 100 == 99 else HashKind.FULL
        mtime = 1_700_000_000 * NS + chance.randrange(10**15)
        entries.append(IndexEntry(name, mtime, mtime, 2049, 1_000_000 + number, 0o100644, 0, 0,
                                  chance.randrange(512, 8192) << (20 if kind else 0),
                                  hashlib.sha1(name).digest(), kind))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_index(path, entries, len(entries), {"format": 1, "token": "bench"},
                [entry for entry in entries if entry.hash_kind is not HashKind.FULL])


def child(writer: str, source: Path, output: Path, changes: int) -> dict[str, float]:
    """Read `source`, change `changes` entries, write with `writer` to `output`; the sample."""
    from bm_sync.index_format import read_index, splice_index, write_index
    from bm_sync.recording import _EntryTable, _MergedEntries

    snapshot = read_index(source)
    step = max(1, snapshot.entry_count // changes)
    updates = _EntryTable()
    for number, entry in enumerate(snapshot.entries()):
        if number % step == step // 2 and number // step < changes:
            updates[entry.path] = entry._replace(mtime_ns=entry.mtime_ns + NS,
                                                 content_id=hashlib.sha1(entry.path).digest())
    merged = _MergedEntries(snapshot, updates, set(), [], set())
    meta = {**snapshot.meta, "token": "next"}
    output.parent.mkdir(parents=True, exist_ok=True)
    import dulwich.index  # noqa: F401  # imported once per process: not part of a write

    cpu, wall = time.process_time(), time.perf_counter()
    if writer == "splice":
        if not splice_index(output, snapshot, touched=merged.touched(), rewrite=merged.rewritten,
                            added=[], entry_count=merged.count, meta=meta):
            raise SystemExit("the synthetic index was not spliceable")
    else:
        write_index(output, merged, merged.count, meta, merged.non_full())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_s": cpu, "wall_s": wall,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def sample(writer: str, source: Path, output: Path, changes: int) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--child", writer, "--source", str(source),
                             "--output", str(output), "--changes", str(changes)],
                            capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="entry counts")
    parser.add_argument("--runs", type=int, default=7, help="samples per writer and size")
    parser.add_argument("--changes", type=int, default=1, help="entries changed per write")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench-index-write"))
    parser.add_argument("--child", choices=WRITERS, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(child(options.child, options.source, options.output, options.changes)))
        return

    record: dict[str, object] = {"environment": environment(), "changes": options.changes,
                                 "sizes": {}}
    rows = []
    for size in (int(text) for text in options.sizes.split(",")):
        folder = options.workdir / str(size)
        source = folder / "source" / "index"
        if not source.exists():
            synthetic_index(source, size)
        samples: dict[str, list[dict[str, float]]] = {writer: [] for writer in WRITERS}
        for run in range(options.runs):
            order = WRITERS if run % 2 == 0 else WRITERS[::-1]
            for writer in order:
                samples[writer].append(sample(writer, source, folder / writer / "index",
                                              options.changes))
            if (folder / "splice/index").read_bytes() != (folder / "full/index").read_bytes():
                raise SystemExit(f"{size} entries: the two writers wrote different bytes")
        medians = {writer: {key: statistics.median(one[key] for one in samples[writer])
                            for key in ("cpu_s", "wall_s")} for writer in WRITERS}
        peaks = {writer: max(one["rss_mb"] for one in samples[writer]) for writer in WRITERS}
        record["sizes"][size] = {"samples": samples, "medians": medians,  # type: ignore[index]
                                 "index_bytes": source.stat().st_size}
        rows.append([f"{size:,}", f"{source.stat().st_size / 2**20:.1f} MB",
                     1000 * medians["full"]["cpu_s"], 1000 * medians["splice"]["cpu_s"],
                     ratio(medians["splice"]["cpu_s"], medians["full"]["cpu_s"]),
                     1000 * medians["full"]["wall_s"], 1000 * medians["splice"]["wall_s"],
                     peaks["full"], peaks["splice"]])
        shutil.rmtree(folder / "splice")
        shutil.rmtree(folder / "full")
    output = results_path("index-write")
    output.write_text(json.dumps(record, indent=1))
    print(markdown_table(
        ["entries", "index", "full CPU ms", "splice CPU ms", "splice / full (CPU)",
         "full wall ms", "splice wall ms", "full peak RSS MB", "splice peak RSS MB"], rows))
    print(f"\n{options.runs} runs each, medians; {options.changes} changed entr"
          f"{'y' if options.changes == 1 else 'ies'} per write; load {os.getloadavg()[0]:.1f}; "
          f"samples in {output}")


if __name__ == "__main__":
    main()
