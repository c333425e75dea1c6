"""The benchmarks behind docs/benchmarks.md. Run from the repository root:

    .venv/bin/python bench/run.py                                 # every section
    .venv/bin/python bench/run.py --only status --sizes 10000 --runs 3
    .venv/bin/python bench/run.py --only sync --sizes tenant,10000

Sections (`--only`, repeatable): status, index, hash, sync, versions. `--sizes` lists the
corpora: note counts and/or `tenant` (2,590 notes + 31 binaries, 80 MB). status uses the
numeric sizes, index the largest, versions the smallest, sync all of them.

Corpora are made by make_corpus.py as committed git repositories under --workdir (default
/tmp/bm-bench), kept between invocations and put back to their commit before use.

Method: every timing is a whole child process (`bm ...` or `git ...`), measured by measure.py
(wall time, CPU time, the child's own peak RSS from `os.wait4`). Commands being compared run
side by side in the same invocation, after one uncounted warm-up, alternating which goes first,
reported as medians. Before a measured run that should find nothing to do, the baseline is
recorded with `bm sync` and we wait out bm's 2 s racy-timestamp window, so nothing is re-hashed
for being recent; bm's JSON output is checked against what should be pending. Results (every
sample) go to bench/results/run-*.json, written after each section; markdown tables to stdout.
Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import TENANT, generate  # noqa: E402
from measure import (  # noqa: E402
    Sample,
    environment,
    markdown_table,
    ratio,
    results_path,
    run_measured,
    summarize,
)
from mutate import mutate  # noqa: E402

SECTIONS = ("status", "index", "hash", "sync", "versions")
RACY_WAIT_S = 3.0  # bm treats an mtime within 2 s of the index's scan as racy: wait that out
MIB = 1 << 20
KINDS = ("added", "modified", "deleted", "moved", "failed")
NOTHING = dict.fromkeys(KINDS, 0)
MIXED = {"edits": 10, "adds": 10, "deletes": 10, "moves": 10, "moved_edits": 10}
MIXED_EXPECTED = {"added": 10, "modified": 10, "deleted": 10, "moved": 20, "failed": 0}
WARNINGS: list[str] = []


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    WARNINGS.append(message)
    log(f"WARNING: {message}")


def bm_command() -> list[str]:
    """The `bm` console script next to this interpreter, else `python -m bm_sync`."""
    script = Path(sys.executable).parent / "bm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bm_sync"]


BM = bm_command()


def bm(*args: object) -> list[str]:
    return [*BM, *(str(arg) for arg in args)]


def git_status(root: Path) -> list[str]:
    return ["git", "-C", str(root), "status", "--porcelain"]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def quiet(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


# --- corpora ---------------------------------------------------------------------------------

def restore(root: Path) -> None:
    """Put the tree back to its commit (undo mutate.py); leave git's index fresh, not racy.

    `.basic-memory/` is in .git/info/exclude, so `git clean` (without -x) keeps it.
    """
    if git(root, "status", "--porcelain"):
        git(root, "reset", "-q", "--hard")
        git(root, "clean", "-fdq")
        time.sleep(1.1)
    subprocess.run(["git", "-C", str(root), "update-index", "-q", "--refresh"],
                   capture_output=True)
    git(root, "status", "--porcelain")


def corpus(workdir: Path, size: str) -> tuple[Path, int]:
    """The committed git corpus `size` ("tenant" or a note count): (root, notes)."""
    options = dict(TENANT) if size == "tenant" else {"notes": int(size)}
    root = workdir / ("tenant" if size == "tenant" else f"notes-{size}")
    if (root / ".git").is_dir():
        restore(root)
    else:
        shutil.rmtree(root, ignore_errors=True)
        log(f"generating {root} ...")
        log(f"  {generate(root, seed=1, git_repo=True, **options)}")
    return root, int(options["notes"])


def forget(root: Path) -> None:
    """Delete bm's state: the next sync is a first sync."""
    shutil.rmtree(root / ".basic-memory", ignore_errors=True)


def record_baseline(root: Path, *extra: str) -> float:
    """`bm sync` the tree as it is, then wait out the racy window. Returns the sync's seconds."""
    time.sleep(RACY_WAIT_S)
    started = time.perf_counter()
    quiet(bm("sync", "--quiet", *extra, root))
    elapsed = time.perf_counter() - started
    time.sleep(RACY_WAIT_S)
    return elapsed


def pending(stdout: str) -> dict[str, int]:
    """How many changes of each kind a `bm status --json` / `bm sync --json` output reports."""
    report = json.loads(stdout)
    return {key: len(report.get(key, [])) for key in KINDS}


def check(what: str, detected: dict[str, int], expected: dict[str, int]) -> None:
    if detected != expected:
        warn(f"{what}: bm reported {detected}, expected {expected}")


# --- measuring -------------------------------------------------------------------------------

def side_by_side(commands: dict[str, list[str]], runs: int, warmups: int = 1,
                 before_each: Callable[[str], None] | None = None,
                 ) -> tuple[dict[str, list[Sample]], dict[str, list[str]]]:
    """Warm up each command, then run them all `runs` times, alternating the order.

    `before_each(name)` runs before each counted run. Returns the counted samples and the
    outputs (warm-up outputs first) per command name.
    """
    names = list(commands)
    outputs: dict[str, list[str]] = {name: [] for name in names}
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for _ in range(warmups):
        for name in names:
            outputs[name].append(run_measured(commands[name])[1])
    for run in range(runs):
        for name in names if run % 2 == 0 else reversed(names):
            if before_each:
                before_each(name)
            sample, output = run_measured(commands[name])
            samples[name].append(sample)
            outputs[name].append(output)
    return samples, outputs


def verdict(value: float | None, limit: float, lower_is_better: bool = True) -> str:
    if value is None:
        return "-"
    return "met" if (value <= limit if lower_is_better else value >= limit) else "**missed**"


# --- A. status -------------------------------------------------------------------------------

def bench_status(workdir: Path, sizes: list[int], runs: int, changes: int) -> dict:
    rows = []
    for size in sizes:
        root, notes = corpus(workdir, str(size))
        forget(root)
        log(f"status {notes}: recording the baseline (bm sync --no-versions) ...")
        baseline_s = record_baseline(root, "--no-versions")
        cases = [("no changes", NOTHING, None), (f"{changes} changes",
                                                 {**NOTHING, "modified": changes}, changes)]
        for case, expected, edits in cases:
            if edits:
                mutate(root, edits=edits, seed=1)
            log(f"status {notes}, {case}: {runs} runs each ...")
            commands = {"bm": bm("status", "--json", root), "git": git_status(root)}
            samples, outputs = side_by_side(commands, runs)
            check(f"bm status {notes} {case}", pending(outputs["bm"][0]), expected)
            mine, reference = summarize(samples["bm"]), summarize(samples["git"])
            rows.append({"files": notes, "case": case, "bm": mine, "git": reference,
                         "ratio": ratio(mine["wall_s"], reference["wall_s"]),
                         "git_lines": len(outputs["git"][0].splitlines()),
                         "baseline_sync_s": baseline_s})
        restore(root)
    header = ["files", "case", "bm status s", "git status s", "bm/git", "target", "met?",
              "bm CPU s", "bm peak RSS MB", "RSS <= 80 MB?", "git peak RSS MB"]
    table = []
    for row in rows:
        big = row["files"] >= 100_000
        timed = big and row["case"] == "no changes"
        table.append([f"{row['files']:,}", row["case"], row["bm"]["wall_s"],
                      row["git"]["wall_s"], row["ratio"], "<= 1.5x" if timed else "-",
                      verdict(row["ratio"], 1.5) if timed else "-", row["bm"]["cpu_s"],
                      row["bm"]["rss_mb"], verdict(row["bm"]["rss_mb"], 80) if big else "-",
                      row["git"]["rss_mb"]])
    return {"rows": rows, "table": markdown_table(header, table)}


# --- B. index reader -------------------------------------------------------------------------

INDEX_SCRIPT = r"""
import json, statistics, sys, time
from pathlib import Path
from dulwich.index import Index, read_index_dict
from bm_sync.index_format import read_index

def bm_entries(path):
    return sum(1 for _ in read_index(path).entries())

def bm_records(path):
    return sum(1 for _ in read_index(path).records())

def dulwich_index(path):
    return len(Index(str(path)))

def dulwich_dict(path):
    with open(path, "rb") as handle:
        return len(read_index_dict(handle))

readers = {"bm read_index + entries()": bm_entries, "bm read_index + records()": bm_records,
           "dulwich Index(path)": dulwich_index, "dulwich read_index_dict": dulwich_dict}
runs = int(sys.argv[1])
result = {}
for label, path in (("bm index", Path(sys.argv[2])), ("git index", Path(sys.argv[3]))):
    times = {name: [] for name in readers}
    counts = {}
    for name, function in readers.items():   # warm-up
        counts[name] = function(path)
    for run in range(runs):
        for name in (list(readers) if run % 2 == 0 else list(readers)[::-1]):
            started = time.perf_counter()
            function = readers[name]
            function(path)
            times[name].append(time.perf_counter() - started)
    result[label] = {name: {"median_s": statistics.median(values), "samples": values,
                            "entries": counts[name]} for name, values in times.items()}
print(json.dumps(result))
"""


def bench_index(workdir: Path, size: int, runs: int) -> dict:
    root, notes = corpus(workdir, str(size))
    index = root / ".basic-memory" / "index"
    if not index.exists():
        log(f"index: recording {notes} notes (bm sync --no-versions) ...")
        quiet(bm("sync", "--quiet", "--no-versions", root))
    log(f"index: {runs} runs of each reader ...")
    sample, output = run_measured([sys.executable, "-c", INDEX_SCRIPT, str(runs), str(index),
                                   str(root / ".git" / "index")])
    result = json.loads(output)
    header = ["index file", "reader", "entries", "median s", "vs dulwich Index(path)"]
    table = []
    for label, readers in result.items():
        reference = readers["dulwich Index(path)"]["median_s"]
        for name, values in readers.items():
            table.append([label, name, f"{values['entries']:,}", values["median_s"],
                          f"{ratio(values['median_s'], reference):.2f}x"])
    return {"files": notes, "index_bytes": index.stat().st_size, "readers": result,
            "process_rss_mb": sample.rss_mb, "table": markdown_table(header, table)}


# --- C. hashing a 2 GiB file -----------------------------------------------------------------

HASH_SCRIPT = r"""
import json, resource, sys, time
from bm_sync.hashing import HashPolicy, hash_file
limit = sys.argv[2]
policy = HashPolicy() if limit == "default" else HashPolicy(full_hash_max_bytes=int(limit))
baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
hashed = hash_file(sys.argv[1], policy)
print(json.dumps({"baseline_kib": baseline_kib, "hash_s": time.perf_counter() - started,
                  "id": hashed.content_id.hex(), "kind": hashed.hash_kind.name,
                  "stable": hashed.stable}))
"""


def big_file(workdir: Path, size: int) -> Path:
    path = workdir / f"big-{size // MIB}mib.bin"
    if not path.exists() or path.stat().st_size != size:
        log(f"hash: writing {path} ...")
        with open(path, "wb") as handle:
            for _ in range(size // MIB):
                handle.write(os.urandom(MIB))
    return path


def bench_hash(workdir: Path, runs: int, size: int = 2 << 30) -> dict:
    path = big_file(workdir, size)
    script = [sys.executable, "-c", HASH_SCRIPT, str(path)]
    commands = {"bm full blob id (threshold 4 GiB)": [*script, str(4 << 30)],
                "bm default policy (partial above 64 MiB)": [*script, "default"],
                "git hash-object (reference)": ["git", "hash-object", str(path)]}
    log(f"hash: {runs} runs of each on {size // MIB} MiB ...")
    samples, outputs = side_by_side(commands, runs)
    rows = []
    for name, values in samples.items():
        summary = summarize(values)
        row = {"case": name, **summary}
        if not name.startswith("git"):
            reports = [json.loads(output) for output in outputs[name]]
            above = [sample.rss_mb - report["baseline_kib"] / 1024
                     for sample, report in zip(values, reports[-len(values):], strict=True)]
            row.update(above_baseline_mb=max(above), baseline_mb=reports[-1]["baseline_kib"] / 1024,
                       kind=reports[-1]["kind"], id=reports[-1]["id"],
                       hash_s=sorted(report["hash_s"] for report in reports)[len(reports) // 2])
        else:
            row["id"] = outputs[name][0].strip()
        rows.append(row)
    full_id, git_id = rows[0].get("id"), rows[2].get("id")
    if full_id != git_id:
        warn(f"hash: bm full blob id {full_id} != git hash-object {git_id}")
    header = ["case", "kind", "median wall s", "MB/s", "peak RSS MB", "RSS above baseline MB",
              "target", "met?"]
    table = []
    for row in rows:
        above = row.get("above_baseline_mb")
        table.append([row["case"], row.get("kind", "FULL"), row["wall_s"],
                      size / MIB / row["wall_s"], row["rss_mb"], above,
                      "<= 64 MB" if above is not None else "-",
                      verdict(above, 64)])
    return {"bytes": size, "rows": rows, "ids_match": full_id == git_id,
            "table": markdown_table(header, table)}


# --- D. sync ---------------------------------------------------------------------------------

def bench_sync(workdir: Path, sizes: list[str], runs: int, first_runs: int) -> dict:
    rows = []
    for size in sizes:
        root, notes = corpus(workdir, size)
        label = "tenant-like" if size == "tenant" else f"{notes:,} notes"
        log(f"sync {label}: first sync x{first_runs} (fresh .basic-memory each) ...")
        commands = {"first sync": bm("sync", "--json", root), "git status": git_status(root)}
        def fresh(name: str, root: Path = root) -> None:
            if name == "first sync":
                forget(root)

        samples, outputs = side_by_side(commands, first_runs, warmups=0, before_each=fresh)
        added = pending(outputs["first sync"][0])["added"]
        first, reference = summarize(samples["first sync"]), summarize(samples["git status"])
        rows.append({"corpus": label, "notes": notes, "files_added": added,
                     "case": "first sync", "bm": first, "git": reference,
                     "notes_per_s": notes / first["wall_s"]})
        time.sleep(RACY_WAIT_S)
        log(f"sync {label}: no-change sync vs status x{runs} ...")
        commands = {"sync": bm("sync", "--json", root), "status": bm("status", "--json", root),
                    "git": git_status(root)}
        samples, outputs = side_by_side(commands, runs)
        for name in ("sync", "status"):
            check(f"no-change bm {name} {label}", pending(outputs[name][0]), NOTHING)
        nochange = {name: summarize(values) for name, values in samples.items()}
        rows.append({"corpus": label, "notes": notes, "case": "no-change sync",
                     "bm": nochange["sync"], "status": nochange["status"],
                     "git": nochange["git"],
                     "ratio_vs_status": ratio(nochange["sync"]["wall_s"],
                                              nochange["status"]["wall_s"])})
        if notes <= 20_000:
            rows.append(mixed_sync(root, label, notes, first_runs))
    return {"rows": rows, "table": sync_table(rows)}


def mixed_sync(root: Path, label: str, notes: int, runs: int) -> dict:
    """10 edits + 10 adds + 10 deletes + 10 moves + 10 moved-and-edited, then `bm sync`."""
    mine: list[Sample] = []
    reference: list[Sample] = []
    detected = []
    for run in range(runs):
        log(f"sync {label}: mixed changes, run {run + 1}/{runs} ...")
        restore(root)
        record_baseline(root)
        mutate(root, seed=100 + run, **MIXED)
        order = ("git", "bm") if run % 2 == 0 else ("bm", "git")
        for name in order:
            if name == "git":
                reference.append(run_measured(git_status(root))[0])
            else:
                sample, output = run_measured(bm("sync", "--json", root))
                mine.append(sample)
                detected.append(pending(output))
    restore(root)
    for counts in detected:
        check(f"mixed sync {label}", counts, MIXED_EXPECTED)
    return {"corpus": label, "notes": notes, "case": "50 mixed changes",
            "bm": summarize(mine), "git": summarize(reference), "detected": detected}


def sync_table(rows: list[dict]) -> str:
    header = ["corpus", "case", "bm sync s", "reference s", "ratio", "notes/s", "target",
              "met?", "bm peak RSS MB", "RSS target", "RSS met?"]
    table = []
    for row in rows:
        rss = row["bm"]["rss_mb"]
        big = row["notes"] >= 100_000
        tenant = row["corpus"] == "tenant-like"
        rss_limit = 200 if big else 150 if tenant else None
        if row["case"] == "first sync":
            reference = row["git"]["wall_s"]
            if tenant:
                target, met = "<= 10 s", verdict(row["bm"]["wall_s"], 10)
            elif row["notes"] == 10_000:
                target, met = ">= 1,000 notes/s", verdict(row["notes_per_s"], 1000, False)
            else:
                target, met = "-", "-"
            ref_name, notes_per_s = "git status", f"{row['notes_per_s']:,.0f}"
        elif row["case"] == "no-change sync":
            reference, ref_name = row["status"]["wall_s"], "bm status"
            target, met = "<= 1.5x status", verdict(row["ratio_vs_status"], 1.5)
            notes_per_s = "-"
        else:
            reference, ref_name, target, met, notes_per_s = (row["git"]["wall_s"], "git status",
                                                             "-", "-", "-")
        table.append([row["corpus"], row["case"], row["bm"]["wall_s"],
                      f"{reference:.3f} ({ref_name})", ratio(row["bm"]["wall_s"], reference),
                      notes_per_s, target, met, rss,
                      f"<= {rss_limit} MB" if rss_limit else "-",
                      verdict(rss, rss_limit) if rss_limit else "-"])
    return markdown_table(header, table)


# --- E. versions -----------------------------------------------------------------------------

def disk_usage(folder: Path) -> tuple[int, int, int]:
    """(apparent bytes, allocated bytes, files) under `folder`."""
    apparent = allocated = files = 0
    for directory, _, names in os.walk(folder):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            apparent += info.st_size
            allocated += info.st_blocks * 512
            files += 1
    return apparent, allocated, files


def notes_bytes(root: Path) -> int:
    total = 0
    for directory, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        total += sum(os.lstat(os.path.join(directory, name)).st_size
                     for name in names if name.endswith(".md"))
    return total


def bench_versions(workdir: Path, size: int, runs: int) -> dict:
    root, notes = corpus(workdir, str(size))
    commands = {"versions on": bm("sync", "--quiet", root),
                "versions off": bm("sync", "--quiet", "--no-versions", root)}
    log(f"versions {notes}: first sync x{runs} each, on/off alternating ...")
    samples, _ = side_by_side(commands, runs, warmups=0,
                              before_each=lambda _name: forget(root))
    forget(root)
    quiet(commands["versions on"])
    objects = root / ".basic-memory" / "objects"
    apparent, allocated, files = disk_usage(objects)
    markdown = notes_bytes(root)
    on, off = summarize(samples["versions on"]), summarize(samples["versions off"])
    extra = on["wall_s"] / off["wall_s"] - 1
    result = {"notes": notes, "on": on, "off": off, "extra": extra, "objects_dir": str(objects),
              "store_apparent_bytes": apparent, "store_allocated_bytes": allocated,
              "store_files": files, "notes_bytes": markdown}
    header = ["notes", "first sync, versions on s", "versions off s", "extra time", "target",
              "met?", "RSS on / off MB", "notes MB", "object store MB (apparent / on disk)",
              "store MB per notes MB"]
    result["table"] = markdown_table(header, [[
        f"{notes:,}", on["wall_s"], off["wall_s"], f"{extra:+.1%}", "< +25%",
        verdict(extra, 0.25 - 1e-9), f"{on['rss_mb']:.0f} / {off['rss_mb']:.0f}",
        markdown / MIB, f"{apparent / MIB:.1f} / {allocated / MIB:.1f} ({files} files)",
        apparent / markdown]])
    return result


# --- driver ----------------------------------------------------------------------------------

def code_fingerprint() -> str:
    """A digest of bm_sync's source files (the code may change under a long run)."""
    import bm_sync

    digest = hashlib.sha1()
    for path in sorted(Path(bm_sync.__file__).parent.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def machine() -> dict[str, object]:
    info = environment()
    try:
        with open("/proc/cpuinfo") as handle:
            models = [line.split(":", 1)[1].strip() for line in handle
                      if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else "unknown"
    except OSError:
        info["cpu_model"] = "unknown"
    info["nproc"] = len(os.sched_getaffinity(0))
    info["bm"] = BM
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (repeatable; default: all)")
    parser.add_argument("--sizes", default="tenant,10000,100000",
                        help="corpora, comma-separated: note counts and/or 'tenant'")
    parser.add_argument("--runs", type=int, default=5, help="counted runs of cheap commands")
    parser.add_argument("--first-runs", type=int, default=3,
                        help="counted runs of first syncs, mixed syncs and hashing")
    parser.add_argument("--changes", type=int, default=100, help="pending edits for status")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    corpora = [size.strip() for size in args.sizes.split(",") if size.strip()]
    numeric = [int(size) for size in corpora if size != "tenant"]
    args.workdir.mkdir(parents=True, exist_ok=True)
    wanted = [section for section in SECTIONS if section in (args.only or SECTIONS)]
    out = results_path("run")
    results: dict[str, object] = {"environment": machine(), "argv": sys.argv,
                                  "options": {key: str(value) for key, value in
                                              vars(args).items()}, "warnings": WARNINGS}
    for section in wanted:
        started, code_before = time.perf_counter(), code_fingerprint()
        load_start = os.getloadavg()
        log(f"{section}: load average at start {load_start[0]:.2f} {load_start[1]:.2f} "
            f"{load_start[2]:.2f}")
        if section == "status" and numeric:
            result = bench_status(args.workdir, numeric, args.runs, args.changes)
        elif section == "index" and numeric:
            result = bench_index(args.workdir, max(numeric), args.runs)
        elif section == "hash":
            result = bench_hash(args.workdir, args.first_runs)
        elif section == "sync":
            result = bench_sync(args.workdir, corpora, args.runs, args.first_runs)
        elif section == "versions" and numeric:
            result = bench_versions(args.workdir, min(numeric), args.first_runs)
        else:
            continue
        result["section_s"] = time.perf_counter() - started
        result["loadavg_start"], result["loadavg_end"] = load_start, os.getloadavg()
        log(f"{section}: load average at end {result['loadavg_end'][0]:.2f}")
        result["code"] = code_after = code_fingerprint()
        if code_after != code_before:
            warn(f"{section}: bm_sync's source changed during the section "
                 f"({code_before} -> {code_after}): its numbers mix two versions")
        results[section] = result
        results["loadavg_end"] = os.getloadavg()
        out.write_text(json.dumps(results, indent=2))
        print(f"\n## {section}\n\n{result['table']}\n", flush=True)
        log(f"{section} done in {result['section_s']:.0f} s; results in {out}")
    for message in WARNINGS:
        print(f"WARNING: {message}")


if __name__ == "__main__":
    main()
