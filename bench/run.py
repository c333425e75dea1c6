"""The benchmarks behind docs/benchmarks.md. Run from the repository root:

    .venv/bin/python bench/run.py                  # everything (about 25 minutes here)
    .venv/bin/python bench/run.py --only status --sizes 10000 --runs 3

Every timing is a whole process (`bm ...` or `git ...`) started from here, run side by side
with the reference (`git status --porcelain` on the same tree) in the same invocation,
interleaved, reported as the median of several runs after a warm-up. Peak RSS is the child's
own `ru_maxrss` from `os.wait4`. These machines are shared and noisy: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import TENANT, generate  # noqa: E402
from mutate import mutate  # noqa: E402

BIN = Path(sys.executable).parent
BM = str(BIN / "bm")
RESULTS = Path(__file__).resolve().parent / "results"


def measure(command: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} failed: {process.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def median_of(runs: int, command: list[str], before: Callable[[], None] | None = None,
              cwd: Path | None = None) -> dict[str, float]:
    times, memory = [], []
    for _ in range(runs):
        if before:
            before()
        elapsed, rss = measure(command, cwd)
        times.append(elapsed)
        memory.append(rss)
    return {"s": statistics.median(times), "rss_mb": max(memory)}


def side_by_side(runs: int, ours: list[str], reference: list[str],
                 before: Callable[[], None] | None = None) -> dict[str, dict[str, float]]:
    """Interleave our command and the reference, `runs` times each, after one warm-up."""
    measure(ours), measure(reference)
    mine, theirs = [], []
    for _ in range(runs):
        if before:
            before()
        mine.append(measure(ours))
        theirs.append(measure(reference))
    summary = {}
    for name, samples in (("bm", mine), ("git", theirs)):
        summary[name] = {"s": statistics.median(s for s, _ in samples),
                         "rss_mb": max(rss for _, rss in samples)}
    return summary


def corpus(workdir: Path, name: str, **options: object) -> Path:
    root = workdir / name
    if not root.exists():
        generate(root, git=True, **options)
    return root


def reset(root: Path) -> None:
    shutil.rmtree(root / ".basic-memory", ignore_errors=True)


def git_status(root: Path) -> list[str]:
    return ["git", "-C", str(root), "status", "--porcelain"]


def bench_status(workdir: Path, sizes: list[int], runs: int) -> list[dict]:
    rows = []
    for size in sizes:
        root = corpus(workdir, f"notes-{size}", notes=size)
        reset(root)
        subprocess.run([BM, "sync", str(root), "--quiet", "--no-versions"], check=True)
        result = side_by_side(runs, [BM, "status", str(root)], git_status(root))
        rows.append({"files": size, "case": "no changes", **result})
        changed = workdir / f"notes-{size}-changed"
        shutil.rmtree(changed, ignore_errors=True)
        shutil.copytree(root, changed, symlinks=True)
        mutate(changed, edits=100)
        result = side_by_side(runs, [BM, "status", str(changed)], git_status(changed))
        rows.append({"files": size, "case": "100 changes", **result})
        shutil.rmtree(changed)
    return rows


def bench_sync(workdir: Path, sizes: list[int], runs: int, first_runs: int) -> list[dict]:
    rows = []
    corpora = [("tenant-like", dict(TENANT))] + [(f"{size:,} notes", {"notes": size})
                                                 for size in sizes]
    for label, options in corpora:
        root = corpus(workdir, label.replace(",", "").replace(" ", "-"), **options)
        notes = options["notes"]
        first = median_of(first_runs, [BM, "sync", str(root), "--quiet"],
                          before=lambda root=root: reset(root))
        reference = median_of(runs, git_status(root))
        rows.append({"corpus": label, "case": "first sync", **first,
                     "notes_per_s": notes / first["s"], "git_s": reference["s"]})
        nochange = side_by_side(runs, [BM, "sync", str(root), "--quiet"],
                                [BM, "status", str(root)])
        rows.append({"corpus": label, "case": "no-change sync", **nochange["bm"],
                     "status_s": nochange["git"]["s"], "git_s": reference["s"]})
        if notes <= 20000:
            rows.append({"corpus": label, "case": "50 mixed changes",
                         **bench_mixed(workdir, root, runs)})
    return rows


def bench_mixed(workdir: Path, root: Path, runs: int) -> dict:
    """10 edits + 10 adds + 10 deletes + 10 moves + 10 moved-and-edited, then `bm sync`."""
    times, memory, git_times = [], [], []
    for run in range(runs):
        copy = workdir / "mixed"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy, symlinks=True)
        subprocess.run([BM, "sync", str(copy), "--quiet"], check=True)
        mutate(copy, edits=10, adds=10, deletes=10, moves=10, moved_edits=10, seed=run)
        git_times.append(measure(git_status(copy))[0])
        elapsed, rss = measure([BM, "sync", str(copy), "--quiet"])
        times.append(elapsed)
        memory.append(rss)
        shutil.rmtree(copy)
    return {"s": statistics.median(times), "rss_mb": max(memory),
            "git_s": statistics.median(git_times)}


def bench_hash(workdir: Path) -> list[dict]:
    """Peak RSS of hashing a 2 GiB file, above the same process's baseline."""
    path = workdir / "big.bin"
    if not path.exists():
        with open(path, "wb") as handle:
            block = os.urandom(1 << 20)
            for _ in range(2048):
                handle.write(block)
    baseline = "import bm_sync.hashing"
    script = ("import sys, bm_sync.hashing as h; "
              "policy = h.HashPolicy(full_hash_max_bytes={limit}); "
              "print(h.hash_file(sys.argv[1], policy).content_id.hex())")
    rows = []
    _, base_rss = measure([sys.executable, "-c", baseline])
    for label, limit in (("full git blob id", 4 << 30), ("partial (default policy)", 64 << 20)):
        elapsed, rss = measure([sys.executable, "-c", script.format(limit=limit), str(path)])
        rows.append({"case": label, "s": elapsed, "rss_mb": rss,
                     "above_baseline_mb": rss - base_rss})
    git_s, git_rss = measure(["git", "hash-object", str(path)])
    rows.append({"case": "git hash-object (reference)", "s": git_s, "rss_mb": git_rss,
                 "above_baseline_mb": None})
    return rows


def bench_index_reader(workdir: Path, size: int) -> dict:
    """Loading the index of `size` entries: our reader against dulwich's."""
    root = corpus(workdir, f"notes-{size}", notes=size)
    if not (root / ".basic-memory" / "index").exists():
        subprocess.run([BM, "sync", str(root), "--quiet"], check=True)
    code = """
import sys, time
from pathlib import Path
index = Path(sys.argv[1]) / ".basic-memory" / "index"
from dulwich.index import read_index_dict
from bm_sync.index_format import read_index
def ours():
    return sum(1 for _ in read_index(index).records())
def theirs():
    with open(index, "rb") as handle:
        return len(read_index_dict(handle))
for name, function in (("ours", ours), ("dulwich", theirs)):
    samples = []
    for _ in range(5):
        started = time.perf_counter(); function(); samples.append(time.perf_counter() - started)
    samples.sort(); print(name, samples[2])
"""
    output = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True,
                            text=True, check=True).stdout.split()
    return {"entries": size, "ours_s": float(output[1]), "dulwich_s": float(output[3])}


def bench_versions(workdir: Path, size: int, runs: int) -> dict:
    root = corpus(workdir, f"notes-{size}", notes=size)
    on = median_of(runs, [BM, "sync", str(root), "--quiet"], before=lambda: reset(root))
    objects = root / ".basic-memory" / "objects"
    stored = sum(path.stat().st_size for path in objects.rglob("*") if path.is_file())
    notes_bytes = sum(path.stat().st_size for path in root.rglob("*.md")
                      if ".git" not in path.parts)
    off = median_of(runs, [BM, "sync", str(root), "--quiet", "--no-versions"],
                    before=lambda: reset(root))
    return {"notes": size, "on_s": on["s"], "off_s": off["s"], "extra": on["s"] / off["s"] - 1,
            "store_mb_per_notes_mb": stored / notes_bytes, "notes_mb": notes_bytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["status", "sync", "hash", "index", "versions"],
                        action="append")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--first-runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bm-bench")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ["status", "sync", "hash", "index", "versions"])
    results: dict[str, object] = {"runs": args.runs, "first_runs": args.first_runs}
    if "status" in wanted:
        results["status"] = bench_status(args.workdir, sizes, args.runs)
    if "sync" in wanted:
        results["sync"] = bench_sync(args.workdir, sizes, args.runs, args.first_runs)
    if "hash" in wanted:
        results["hash"] = bench_hash(args.workdir)
    if "index" in wanted:
        results["index"] = bench_index_reader(args.workdir, max(sizes))
    if "versions" in wanted:
        results["versions"] = bench_versions(args.workdir, min(sizes), args.first_runs)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"saved {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
