"""`bm status --json DIR` against `git -C DIR status --porcelain`, side by side, same tree.

    .venv/bin/python bench/bench_status.py                        # 10k and 100k notes, 5 runs
    .venv/bin/python bench/bench_status.py --sizes 10000 --runs 3 --reuse
    .venv/bin/python bench/bench_status.py --bm ".venv/bin/python -m bm_sync"

For each corpus size (made by make_corpus.py --git under --corpus-dir, kept for --reuse):

1. the tree is put back to its committed state and git's index refreshed;
2. the baseline is recorded (`record_baseline`, by default `bm sync DIR`), then we wait out
   the racy-timestamp window so no entry is re-hashed for being recent;
3. "no changes": one uncounted warm-up of each command (bm's output is checked: nothing
   pending), then --runs runs of each, alternating which goes first;
4. "N changes": mutate.py --changes N once (N pending edits), then the same;
5. the tree is restored (git reset --hard + git clean) for the next run.

Every sample is a whole process: wall time, CPU time and the child's own peak RSS (os.wait4).
Prints a markdown table; writes every sample to bench/results/status-*.json. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_corpus import generate  # noqa: E402
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

BENCH = Path(__file__).resolve().parent
RACY_WAIT_S = 3.0  # bm treats an mtime within 2 s of its scan start as racy: wait that out


def default_bm() -> list[str]:
    """The `bm` console script next to this interpreter, else `python -m bm_sync`."""
    script = Path(sys.executable).parent / "bm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bm_sync"]


# --- hooks: the lead may adjust these three to the final CLI ---------------------------------

def record_baseline(bm: list[str], root: Path, how: str) -> None:
    """HOOK: make bm's index describe the tree as it is now (before the changes).

    "sync": `bm sync --quiet DIR` (index + database); "record": the library call
    `bm_sync.Detector(DIR).record()` (index only, much cheaper for a first run).
    """
    if how == "sync":
        command = [*bm, "sync", "--quiet", str(root)]
    else:
        code = "import sys, bm_sync; bm_sync.Detector(sys.argv[1]).record()"
        command = [sys.executable, "-c", code, str(root)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def bm_status_command(bm: list[str], root: Path) -> list[str]:
    """HOOK: the measured bm command."""
    return [*bm, "status", "--json", str(root)]


def pending_counts(stdout: str) -> dict[str, int]:
    """HOOK: how many changes of each kind `bm status --json` reports."""
    report = json.loads(stdout)
    return {key: len(report.get(key, [])) for key in ("added", "modified", "deleted", "moved",
                                                          "failed")}

# ---------------------------------------------------------------------------------------------


def git_status_command(root: Path) -> list[str]:
    return ["git", "-C", str(root), "status", "--porcelain"]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def restore(root: Path) -> None:
    """Put the tree back to its commit (undo mutate.py) and leave git's index fresh, not racy."""
    if git(root, "status", "--porcelain"):
        git(root, "reset", "-q", "--hard")
        git(root, "clean", "-fdq")
        time.sleep(1.1)
    subprocess.run(["git", "-C", str(root), "update-index", "-q", "--refresh"],
                   capture_output=True)
    git(root, "status", "--porcelain")


def ensure_corpus(corpus_dir: Path, notes: int, seed: int, reuse: bool) -> Path:
    """The git corpus of `notes` notes: reused (and restored) or generated afresh."""
    root = corpus_dir / f"status-{notes}-s{seed}"
    if reuse and (root / ".git").is_dir():
        print(f"reusing {root}", file=sys.stderr)
        restore(root)
        return root
    if root.exists():
        shutil.rmtree(root)
    print(f"generating {root}", file=sys.stderr)
    summary = generate(root, notes, seed=seed, git_repo=True)
    print(f"  {summary}", file=sys.stderr)
    return root


def side_by_side(commands: dict[str, list[str]], runs: int, warmups: int
                 ) -> tuple[dict[str, list[Sample]], dict[str, str]]:
    """Warm up each command, then alternate them `runs` times (the first one swaps each run).

    Returns the counted samples per name and each command's output from its first warm-up.
    """
    names = list(commands)
    first_output: dict[str, str] = {}
    for _ in range(warmups):
        for name in names:
            _, output = run_measured(commands[name])
            first_output.setdefault(name, output)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for run in range(runs):
        for name in names if run % 2 == 0 else reversed(names):
            sample, output = run_measured(commands[name])
            first_output.setdefault(name, output)
            samples[name].append(sample)
    return samples, first_output


def scenario(name: str, notes: int, root: Path, bm: list[str], args: argparse.Namespace,
             expected: dict[str, int]) -> dict[str, object]:
    """Time one pending state of the tree; check bm reports what is expected."""
    commands = {"bm": bm_status_command(bm, root), "git": git_status_command(root)}
    print(f"  {notes} notes, {name}: {args.runs} runs each ...", file=sys.stderr)
    samples, outputs = side_by_side(commands, args.runs, args.warmups)
    detected = pending_counts(outputs["bm"])
    if detected != expected:
        print(f"  WARNING: bm reported {detected}, expected {expected}", file=sys.stderr)
    git_lines = len(outputs["git"].splitlines())
    bm, reference = summarize(samples["bm"]), summarize(samples["git"])
    return {"notes": notes, "scenario": name, "bm": bm, "git": reference,
            "ratio": ratio(bm["wall_s"], reference["wall_s"]),
            "bm_detected": detected, "expected": expected, "git_lines": git_lines,
            "commands": commands}


def bench_size(notes: int, bm: list[str], args: argparse.Namespace) -> list[dict[str, object]]:
    """Both scenarios on one corpus size."""
    root = ensure_corpus(args.corpus_dir, notes, args.seed, args.reuse)
    started = time.perf_counter()
    time.sleep(RACY_WAIT_S)
    record_baseline(bm, root, args.baseline)
    baseline_s = time.perf_counter() - started - RACY_WAIT_S
    print(f"  baseline ({args.baseline}) recorded in {baseline_s:.1f} s", file=sys.stderr)
    time.sleep(RACY_WAIT_S)
    nothing = {"added": 0, "modified": 0, "deleted": 0, "moved": 0, "failed": 0}
    rows = [scenario("no changes", notes, root, bm, args, nothing)]
    if args.changes:
        try:
            mutate(root, edits=args.changes, seed=args.seed)
            rows.append(scenario(f"{args.changes} changes", notes, root, bm, args,
                                 {**nothing, "modified": args.changes}))
        finally:
            restore(root)
    for row in rows:
        row["baseline_s"] = baseline_s
    return rows


def report(rows: list[dict[str, object]]) -> str:
    """The markdown table of the medians."""
    header = ["notes", "scenario", "bm status s", "git status s", "bm/git", "bm CPU s",
              "git CPU s", "bm peak RSS MB", "git peak RSS MB"]
    table = [[f"{row['notes']:,}", row["scenario"], row["bm"]["wall_s"], row["git"]["wall_s"],
              row["ratio"], row["bm"]["cpu_s"], row["git"]["cpu_s"], row["bm"]["rss_mb"],
              row["git"]["rss_mb"]] for row in rows]
    return markdown_table(header, table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="note counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each command")
    parser.add_argument("--warmups", type=int, default=1, help="uncounted runs of each first")
    parser.add_argument("--changes", type=int, default=100,
                        help="pending edits in the second scenario (0: skip it)")
    parser.add_argument("--corpus-dir", type=Path, default=BENCH / "corpora")
    parser.add_argument("--reuse", action="store_true", help="keep an existing corpus")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bm", type=shlex.split, default=None,
                        help='the bm command (default: the "bm" next to this python)')
    parser.add_argument("--baseline", choices=["sync", "record"], default="sync",
                        help="how the baseline is recorded (see record_baseline)")
    parser.add_argument("--out", type=Path, help="the JSON file (default: bench/results/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bm = args.bm or default_bm()
    env = environment()
    rows: list[dict[str, object]] = []
    for notes in (int(size) for size in args.sizes.split(",")):
        rows += bench_size(notes, bm, args)
    out = args.out or results_path("status")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "status", "environment": env,
                               "loadavg_end": list(__import__("os").getloadavg()),
                               "options": {key: str(value) for key, value in vars(args).items()},
                               "bm_command": bm, "rows": rows}, indent=2))
    print(report(rows))
    print(f"\nmedian of {args.runs} runs after {args.warmups} warm-up; peak RSS is the maximum "
          f"over the runs; {env['git']}; results: {out}")


if __name__ == "__main__":
    main()
