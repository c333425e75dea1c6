"""False moves between templated notes, and true move+edits, without and with line weights.

    .venv/bin/python bench/false_moves.py [--runs 5] [--json OUT]

Drives `renames.pair_moves` directly (no CLI, no index): each note's sketch comes from
`sketch.compute_sketch`, and the weights from a real `SketchStore` (in a temporary folder) that
recorded the tree's sketches and took its line census, as a recording sync leaves it. "Before"
is `line_weight=None` (every line counts 1), "after" is `line_weight=store.line_weights()`.
(Both use the sketches of the bm-sync being run, so both see its structural discount.)

Corpora, from bench/make_corpus.py (seed 1): `daily` is a year of daily notes from one template
plus a weekly review every Sunday (418 notes); `tenant` is the tenant-like corpus's 2,590 notes
(its binaries play no part in pairing); `tenant+daily` is both in one tree; `tenant+2 daily` is
the tenant corpus with only two daily notes (a template the census cannot learn from two notes).
The last 30 daily notes of the year are held out: they are the notes a user creates. The
recorded tree (what the census sees) is everything else.

To compare with another version of bm-sync, run this script with that version first on the
import path (e.g. `git archive main src | tar -x -C /tmp/old` then
`PYTHONPATH=/tmp/old/src .venv/bin/python bench/false_moves.py`).

Scenarios, each counted over 30 cases (one pairing run each, unless "in one run"):
- template delete+create: a recorded daily note deleted, a new day created (different body).
  Every move found is false. "inode reused" gives both the same (dev, inode), as ext4 often does
  for a file created right after one is deleted: rule 2 (inode, >= 30% similar) then applies.
- unrelated delete+add (tenant): a recorded note deleted, a new note from the same generator.
- moved+edited: a recorded note written elsewhere with one line rewritten and one observation
  appended ("few lines"), or with 20% of its lines rewritten (bench/mutate.py's moved-edit).
  Every such pair should be found; any other pair is false.
- mixed run: 30 template deletes, 30 creates and 30 moved+edited (20%) notes in one run.

Timing: `pair_moves` alone (sketches made beforehand) on 1000 deleted x 1000 added notes, every
one moved and edited (20%), from the tenant corpus and from a 1000-day journal, in-process:
the median wall time and the minimum CPU time of `--runs`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import (  # noqa: E402
    TENANT,
    daily_texts,
    note_texts,
    plan_notes,
)
from mutate import rewrite_lines  # noqa: E402

from bm_sync.renames import MoveCandidate, pair_moves  # noqa: E402
from bm_sync.sketch import LineWeights, SketchStore, compute_sketch  # noqa: E402

CASES = 30
SEED = 1


@dataclass(frozen=True)
class Corpus:
    """A tree of notes: what is recorded, what is held out as new, and its line weights."""

    name: str
    recorded: dict[str, str]
    new_days: dict[str, str]
    weights: LineWeights
    census_s: float


def tenant_notes(count: int = TENANT["notes"]) -> dict[str, str]:
    rng = random.Random(SEED)
    plan = plan_notes(count, rng)
    return {f"{note.folder}/{note.title}.md": text for note, text in note_texts(plan, rng)}


def census(notes: dict[str, str], folder: Path) -> tuple[LineWeights, float]:
    """Record every note's sketch in a real store, commit (which takes the census)."""
    store = SketchStore(folder / "sketches.db", writable=True)
    ids = []
    started = time.perf_counter()
    for text in notes.values():
        content_id = hashlib.sha1(text.encode()).digest()
        ids.append(content_id)
        store.put(content_id, None, compute_sketch(text.encode()))
    store.commit(ids, len(ids))
    store.close()
    elapsed = time.perf_counter() - started
    weights = SketchStore(folder / "sketches.db", writable=False).line_weights()
    return weights, elapsed


# Corpora whose tree records only this many daily notes (the rest of the year is dropped).
FEW_DAYS = {"tenant+2 daily": 2}


def make_corpus(name: str, folder: Path, days: int = 366) -> Corpus:
    notes = tenant_notes() if "tenant" in name else {}
    daily = daily_texts(days, SEED, list(notes)) if "daily" in name else {}
    day_paths = sorted(path for path in daily if "/Daily/" in path)
    new_days = {path: daily.pop(path) for path in day_paths[-CASES:]}
    if name in FEW_DAYS:
        kept_days = set(day_paths[:FEW_DAYS[name]])
        daily = {path: text for path, text in daily.items() if path in kept_days}
    recorded = {**notes, **daily}
    (folder / name).mkdir()
    weights, census_s = census(recorded, folder / name)
    return Corpus(name, recorded, new_days, weights, census_s)


Pair = tuple[str, str]
Case = tuple[dict[str, str], dict[str, str], set[Pair]]  # deleted, added, true pairs


def pair(deleted: dict[str, str], added: dict[str, str],
         line_weight: Callable[[int], float] | None, *, same_inode: bool = False) -> set[Pair]:
    """The moves pair_moves finds between `deleted` and `added` (path -> text)."""
    sketches = {("old", path): compute_sketch(text.encode()) for path, text in deleted.items()}
    sketches |= {("new", path): compute_sketch(text.encode()) for path, text in added.items()}

    def candidates(side: str, texts: dict[str, str]) -> list[MoveCandidate]:
        found = []
        for number, (path, text) in enumerate(sorted(texts.items())):
            data = text.encode()
            # Distinct inodes unless asked (the inode rule then needs 30% similar lines).
            ino = number if same_inode or side == "old" else 1_000_000 + number
            found.append(MoveCandidate(path.encode(), hashlib.sha1(data).digest(), 0, ino,
                                       size=len(data), mtime_ns=1 if side == "old" else 2))
        return found

    moves, _deleted, _added = pair_moves(
        candidates("old", deleted), candidates("new", added),
        old_sketch=lambda candidate: sketches["old", candidate.path.decode()],
        new_sketch=lambda candidate: sketches["new", candidate.path.decode()],
        line_weight=line_weight)
    return {(move.old.path.decode(), move.new.path.decode()) for move in moves}


def daily_paths(corpus: Corpus) -> list[str]:
    return sorted(path for path in corpus.recorded if "/Daily/" in path)


def other_paths(corpus: Corpus) -> list[str]:
    return sorted(path for path in corpus.recorded if "/Daily/" not in path
                  and "/Weekly/" not in path)


def few_lines(text: str, rng: random.Random, tag: str) -> str:
    """One line rewritten and one observation appended (bench/mutate.py's edit)."""
    return rewrite_lines(text, 0.0, rng, tag) + f"- [fact] edited ({tag}) #bench (false_moves)\n"


def moved_edited(corpus: Corpus, paths: list[str], rng: random.Random,
                 edit: Callable[[str, random.Random, str], str]) -> list[Case]:
    cases = []
    for number, path in enumerate(paths):
        target = f"Moved/{number}/{path.rsplit('/', 1)[-1]}"
        text = edit(corpus.recorded[path], rng, f"moved {number}")
        cases.append(({path: corpus.recorded[path]}, {target: text}, {(path, target)}))
    return cases


def scenarios(corpus: Corpus) -> dict[str, list[Case]]:
    rng = random.Random(SEED)
    found: dict[str, list[Case]] = {}
    days = daily_paths(corpus)
    if days:
        deleted_days = (rng.sample(days, CASES) if len(days) >= CASES
                        else [days[number % len(days)] for number in range(CASES)])
        found["template delete+create"] = [
            ({old: corpus.recorded[old]}, {new: text}, set())
            for old, (new, text) in zip(deleted_days, corpus.new_days.items(), strict=True)]
        found["template delete+create, inode reused"] = found["template delete+create"]
        found["template delete+create, 30 in one run"] = [(
            {old: corpus.recorded[old] for old in deleted_days}, dict(corpus.new_days), set())]
    else:
        new_notes = tenant_added(corpus)
        deleted_notes = rng.sample(other_paths(corpus), CASES)
        found["unrelated delete+add"] = [
            ({old: corpus.recorded[old]}, {new: text}, set())
            for old, (new, text) in zip(deleted_notes, new_notes.items(), strict=True)]
        found["unrelated delete+add, 30 in one run"] = [(
            {old: corpus.recorded[old] for old in deleted_notes}, new_notes, set())]
    sources = days if days and not other_paths(corpus) else other_paths(corpus)
    if days and other_paths(corpus):
        sources = days + other_paths(corpus)[:max(len(days), 2 * CASES)]
    picked = rng.sample(sources, 2 * CASES)
    found["moved+edited, few lines"] = moved_edited(corpus, picked[:CASES], rng, few_lines)
    share = 0.2

    def rewritten(text: str, rng: random.Random, tag: str) -> str:
        return rewrite_lines(text, share, rng, tag)

    found["moved+edited, 20% of lines"] = moved_edited(corpus, picked[CASES:], rng, rewritten)
    if days:
        deleted: dict[str, str] = {}
        added: dict[str, str] = {}
        truth: set[Pair] = set()
        for old, new, pairs in (*found["template delete+create, 30 in one run"],
                                *found["moved+edited, 20% of lines"]):
            deleted |= old
            added |= new
            truth |= pairs
        found["mixed run (30 + 30 + 30 moved+edited)"] = [(deleted, added, truth)]
    return found


def tenant_added(corpus: Corpus) -> dict[str, str]:
    """30 new notes from the corpus generator, unrelated to any recorded one."""
    rng = random.Random(SEED + 1)
    plan = plan_notes(CASES, rng)
    return {f"New/{note.title}.md": text for note, text in note_texts(plan, rng)}


def count(cases: list[Case], line_weight: Callable[[int], float] | None,
          same_inode: bool) -> tuple[int, int, int]:
    """(false moves, true moves found, true moves expected)."""
    false = found = expected = 0
    for deleted, added, truth in cases:
        moves = pair(deleted, added, line_weight, same_inode=same_inode)
        false += len(moves - truth)
        found += len(moves & truth)
        expected += len(truth)
    return false, found, expected


def pairing_only(notes: dict[str, str], weights: LineWeights, runs: int) -> dict[str, float]:
    """Median seconds of pair_moves alone (sketches made beforehand) on 1000 notes, every one
    moved and edited (20% of its lines rewritten)."""
    rng = random.Random(SEED)
    paths = sorted(notes)[:1000]
    olds, news, sketches = [], [], {}
    for number, path in enumerate(paths):
        old_text = notes[path].encode()
        new_text = rewrite_lines(notes[path], 0.2, rng, "timing").encode()
        old = MoveCandidate(path.encode(), hashlib.sha1(old_text).digest(), 0, 2 * number)
        new = MoveCandidate(b"Moved/" + path.encode(), hashlib.sha1(new_text).digest(), 0,
                            2 * number + 1)
        sketches[old.path] = compute_sketch(old_text)
        sketches[new.path] = compute_sketch(new_text)
        olds.append(old)
        news.append(new)
    result: dict[str, float] = {}
    for label, line_weight in (("before", None), ("after", weights)):
        samples, cpu_samples = [], []
        for _ in range(runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            moves, _d, _a = pair_moves(
                olds, news, old_sketch=lambda candidate: sketches[candidate.path],
                new_sketch=lambda candidate: sketches[candidate.path], line_weight=line_weight)
            samples.append(time.perf_counter() - started)
            cpu_samples.append(time.process_time() - cpu_started)
        result[label] = statistics.median(samples)
        result[f"{label}_cpu"] = min(cpu_samples)
        result[f"{label}_moves"] = len(moves)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timing samples (median)")
    parser.add_argument("--json", type=Path, help="also write the results there")
    args = parser.parse_args(argv)
    results: dict[str, object] = {"rows": [], "census": {}, "timing": {}}
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bm-false-moves-") as scratch:
        folder = Path(scratch)
        print("| corpus | scenario | false moves unweighted | weighted | true moves found "
              "unweighted | weighted |")
        print("|---|---|---|---|---|---|")
        for name in ("daily", "tenant", "tenant+daily", *FEW_DAYS):
            corpus = make_corpus(name, folder)
            results["census"][name] = {  # type: ignore[index]
                "notes": len(corpus.recorded), "census_s": round(corpus.census_s, 3)}
            for scenario, cases in scenarios(corpus).items():
                same_inode = "inode reused" in scenario
                before = count(cases, None, same_inode)
                after = count(cases, corpus.weights, same_inode)
                row = {"corpus": name, "scenario": scenario, "before": before, "after": after}
                rows.append(row)
                found_before, found_after = (
                    (f"{before[1]} of {before[2]}", f"{after[1]} of {after[2]}") if before[2]
                    else ("-", "-"))
                print(f"| {name} | {scenario} | {before[0]} | {after[0]} | {found_before} | "
                      f"{found_after} |", flush=True)
        tenant = make_corpus("tenant-timing", folder)
        journal = make_corpus("daily-timing", folder, days=1030)
        journal_notes = {path: text for path, text in journal.recorded.items()
                         if "/Daily/" in path}
        results["timing"] = {
            "tenant": pairing_only(tenant.recorded, tenant.weights, args.runs),
            "daily": pairing_only(journal_notes, journal.weights, args.runs),
        }
    results["rows"] = rows
    print()
    print("pair_moves, 1000 deleted x 1000 added, all moved+edited (20%): wall time median "
          f"and CPU time minimum of {args.runs} (CPU time is steadier on a shared machine):")
    for name, measured in results["timing"].items():  # type: ignore[attr-defined]
        print(f"  {name}: before {measured['before']:.3f} s wall, {measured['before_cpu']:.3f} s "
              f"CPU ({measured['before_moves']} moves); after {measured['after']:.3f} s wall, "
              f"{measured['after_cpu']:.3f} s CPU ({measured['after_moves']} moves)")
    print("census (record every sketch, commit, count lines):",
          json.dumps(results["census"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
