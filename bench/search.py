"""The search index's cost and speed (issue 12), side by side in one run. From the repo root:

    .venv/bin/python bench/search.py                          # every section
    .venv/bin/python bench/search.py --only first --only mixed --notes 10000 --runs 3
    .venv/bin/python bench/search.py --only query --query-notes 100000

Sections (`--only`, repeatable):
- first: first sync of --notes notes with search on vs `--no-search` (time, CPU, peak RSS);
- mixed: a sync after bench/mutate.py's 50 mixed changes, search on vs off;
- size: the search tables' bytes on disk (SQLite `dbstat`) against the notes' markdown bytes;
- query: 50 fixed queries (20 words, 10 phrases, 10 prefixes, 10 word + tag) on --query-notes
  notes: in-process `SyncEngine.search` latency (wall and CPU, p50/p95; each query's best of
  --runs, one engine for all, as an app holds one), and whole `bm search` processes (median of
  --process-runs, wall and CPU) side by side with `git grep -c WORD` on the same notes and the
  `sqlite3` CLI running a MATCH on the same database. `--database-url URL` measures the
  in-process latency on another database holding the same notes (PostgreSQL; the folder's
  copy synced there first, e.g. `bm sync COPY --db URL`, and `--query-root COPY`).

Corpora are bench/make_corpus.py's committed git trees under --workdir (default
/tmp/bm-bench-search), as bench/run.py makes and restores them. Whole commands are measured by
bench/measure.py (wall, CPU, the child's peak RSS), alternating which goes first, medians.
Results go to bench/results/search-*.json; markdown tables to stdout. Stdlib + bm_sync.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bm_sync

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import (  # noqa: E402
    environment,
    markdown_table,
    ratio,
    results_path,
    run_measured,
    summarize,
)
from mutate import mutate  # noqa: E402
from run import (  # noqa: E402
    MIXED,
    MIXED_EXPECTED,
    bm,
    check,
    corpus,
    forget,
    log,
    notes_bytes,
    pending,
    record_baseline,
    restore,
    side_by_side,
)

SECTIONS = ("first", "mixed", "size", "query")
WORDS = ["sync", "budget", "latency", "garden", "coffee", "release", "keyboard", "winter",
         "harbor", "lantern", "orchard", "retrospective", "quarterly", "meadow", "beacon",
         "schema", "ledger", "brainstorm", "compass", "puzzle"]
PHRASES = ['"sync index"', '"coffee morning"', '"quiet harbor"', '"release plan"',
           '"the graph"', '"memory stream"', '"open garden"', '"daily journal"',
           '"budget review"', '"hidden lantern"']
PREFIXES = ["syn*", "lat*", "gard*", "retro*", "quart*", "lant*", "budg*", "key*", "orch*",
            "sched*"]
TAGGED = [("sync", "garden"), ("budget", "coffee"), ("release", "travel"), ("winter", "habit"),
          ("garden", "metric"), ("coffee", "release"), ("ledger", "server"),
          ("compass", "laptop"), ("meadow", "summer"), ("beacon", "winter")]
QUERIES: list[tuple[str, str | None]] = ([(word, None) for word in WORDS]
                                         + [(phrase, None) for phrase in PHRASES]
                                         + [(prefix, None) for prefix in PREFIXES] + TAGGED)


def bench_first(root: Path, notes: int, runs: int) -> dict:
    log(f"first sync of {notes:,} notes, search on vs off, x{runs} ...")
    commands = {"search on": bm("sync", "--json", root),
                "search off": bm("sync", "--json", "--no-search", root)}
    samples, outputs = side_by_side(commands, runs, warmups=0,
                                    before_each=lambda _name: forget(root))
    for name in commands:
        check(f"first sync {name}", {"added": pending(outputs[name][0])["added"]},
              {"added": notes})
    on, off = summarize(samples["search on"]), summarize(samples["search off"])
    return {"case": f"first sync, {notes:,} notes", "on": on, "off": off}


def bench_mixed(root: Path, notes: int, runs: int) -> dict:
    """Each run: the same mutation (one seed per run) synced with search on and with it off,
    each from a baseline recorded in its own mode."""
    samples: dict[str, list] = {"on": [], "off": []}
    for run in range(runs):
        for mode in (("on", "off") if run % 2 == 0 else ("off", "on")):
            log(f"50 mixed changes, run {run + 1}/{runs}, search {mode} ...")
            extra = () if mode == "on" else ("--no-search",)
            restore(root)
            record_baseline(root, *extra)
            mutate(root, seed=100 + run, **MIXED)
            sample, output = run_measured(bm("sync", "--json", *extra, root))
            check(f"mixed sync search {mode}", pending(output), MIXED_EXPECTED)
            samples[mode].append(sample)
    restore(root)
    return {"case": f"50 mixed changes, {notes:,} notes", "on": summarize(samples["on"]),
            "off": summarize(samples["off"])}


def search_bytes(root: Path) -> int:
    """Bytes of the search tables (FTS5 shadow tables, search_text and its index)."""
    with sqlite3.connect(root / ".basic-memory" / "memory.db") as connection:
        ((total,),) = connection.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'note_search%' "
            "OR name IN ('search_text', 'ix_search_text_project') "
            "OR name LIKE 'sqlite_autoindex_search_text%'").fetchall()
    return int(total or 0)


def bench_size(root: Path) -> dict:
    forget(root)
    subprocess.run(bm("sync", "--quiet", root), check=True)
    index, markdown = search_bytes(root), notes_bytes(root)
    log(f"search index {index / 1e6:.1f} MB for {markdown / 1e6:.1f} MB of markdown")
    return {"index_bytes": index, "markdown_bytes": markdown, "ratio": index / markdown}


def in_process_latency(root: Path, repeats: int, database_url: str | None = None) -> dict:
    from bm_sync.sync import SyncEngine

    async def measure() -> list[tuple[str, float, float, int]]:
        timings = []
        async with SyncEngine.open(root, database_url) as engine:
            await engine.search("warmup")
            for query, tag in QUERIES:
                walls, cpus = [], []
                for _ in range(repeats):
                    wall, cpu = time.perf_counter(), time.process_time()
                    result = await engine.search(query, tag=tag)
                    cpus.append(time.process_time() - cpu)
                    walls.append(time.perf_counter() - wall)
                timings.append((query if tag is None else f"{query} --tag {tag}",
                                min(walls), min(cpus), len(result.hits)))
        return timings

    timings = asyncio.run(measure())
    walls = sorted(wall for _query, wall, _cpu, _hits in timings)
    cpus = sorted(cpu for _query, _wall, cpu, _hits in timings)

    def p95(values: list[float]) -> float:
        return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]

    return {"queries": [{"query": query, "wall_ms": wall * 1e3, "cpu_ms": cpu * 1e3,
                         "hits": hits} for query, wall, cpu, hits in timings],
            "wall_p50_ms": statistics.median(walls) * 1e3, "wall_p95_ms": p95(walls) * 1e3,
            "cpu_p50_ms": statistics.median(cpus) * 1e3, "cpu_p95_ms": p95(cpus) * 1e3,
            "wall_max_ms": walls[-1] * 1e3}


def bench_query(root: Path, notes: int, runs: int, process_runs: int,
                database_url: str | None) -> dict:
    if database_url is None and not (root / ".basic-memory" / "memory.db").exists():
        log(f"query corpus: first sync of {notes:,} notes ...")
        subprocess.run(bm("sync", "--quiet", root), check=True)
    log(f"in-process latency of 50 queries ({database_url or 'SQLite'}) ...")
    latency = in_process_latency(root, repeats=max(3, runs), database_url=database_url)
    if database_url is not None:
        return {"notes": notes, "database": database_url.split("?")[0], "latency": latency}
    log("bm search processes, and the references ...")
    # As an installed package has them (pip compiles on install): with PYTHONDONTWRITEBYTECODE
    # set, an editable install would compile every bm module in every process.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(bm_sync.__file__).parent)],
                   check=True)
    database = root / ".basic-memory" / "memory.db"
    commands = {"bm search sync": bm("search", "sync", root),
                "bm search phrase": bm("search", '"sync index"', root),
                "bm search prefix+tag": bm("search", "syn*", root, "--tag", "garden"),
                "bm search sync --json": bm("search", "sync", root, "--json"),
                "git grep -c sync": ["git", "-C", str(root), "grep", "-c", "sync"],
                "sqlite3 MATCH sync": ["sqlite3", f"file:{database}?mode=ro",
                                       "SELECT rowid FROM note_search WHERE note_search MATCH "
                                       "'sync' ORDER BY rowid DESC LIMIT 10"],
                "python -c pass": [sys.executable, "-c", "pass"]}
    samples, _outputs = side_by_side(commands, process_runs)
    return {"notes": notes, "latency": latency,
            "processes": {name: summarize(values) for name, values in samples.items()}}


def side_table(rows: list[dict]) -> str:
    header = ["case", "search on wall s", "search off wall s", "wall ratio", "on CPU s",
              "off CPU s", "CPU ratio", "on peak RSS MB", "off peak RSS MB", "RSS +MB"]
    table = [[row["case"], row["on"]["wall_s"], row["off"]["wall_s"],
              ratio(row["on"]["wall_s"], row["off"]["wall_s"]), row["on"]["cpu_s"],
              row["off"]["cpu_s"], ratio(row["on"]["cpu_s"], row["off"]["cpu_s"]),
              row["on"]["rss_mb"], row["off"]["rss_mb"],
              row["on"]["rss_mb"] - row["off"]["rss_mb"]] for row in rows]
    return markdown_table(header, table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--only", action="append", choices=SECTIONS)
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--query-notes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--process-runs", type=int, default=10,
                        help="whole `bm search` processes per command (median)")
    parser.add_argument("--database-url", help="query latency on this database instead")
    parser.add_argument("--query-root", type=Path,
                        help="the notes folder for --database-url (default: the corpus)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench-search"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sections = args.only or list(SECTIONS)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"environment": environment(),
                                  "args": vars(args) | {"workdir": str(args.workdir)}}
    output = results_path("search")
    side_rows = []
    if "first" in sections or "mixed" in sections or "size" in sections:
        root, notes = corpus(args.workdir, str(args.notes))
        if "first" in sections:
            side_rows.append(bench_first(root, notes, args.runs))
        if "mixed" in sections:
            side_rows.append(bench_mixed(root, notes, args.runs))
        if "size" in sections:
            results["size"] = bench_size(root)
        results["side_by_side"] = side_rows
    if "query" in sections:
        if args.query_root is not None:
            root, notes = args.query_root, args.query_notes
        else:
            root, notes = corpus(args.workdir, str(args.query_notes))
        results["query"] = bench_query(root, notes, args.runs, args.process_runs,
                                       args.database_url)
    output.write_text(json.dumps(results, indent=1, default=str))
    if side_rows:
        print(side_table(side_rows))
    if "size" in results:
        size = results["size"]
        print(f"\nsearch index {size['index_bytes']:,} bytes / markdown "  # type: ignore[index]
              f"{size['markdown_bytes']:,} bytes = {size['ratio']:.3f}x")  # type: ignore[index]
    if "query" in results:
        query = results["query"]
        latency = query["latency"]  # type: ignore[index]
        print(f"\nin-process, 50 queries: wall p50 {latency['wall_p50_ms']:.1f} ms, p95 "
              f"{latency['wall_p95_ms']:.1f} ms; CPU p50 {latency['cpu_p50_ms']:.1f} ms, p95 "
              f"{latency['cpu_p95_ms']:.1f} ms")
        slowest = sorted(latency["queries"], key=lambda item: -item["cpu_ms"])[:5]
        print("slowest (CPU): " + ", ".join(f"{item['query']} {item['cpu_ms']:.1f} ms"
                                            for item in slowest))
        if "processes" in query:  # type: ignore[operator]
            print(markdown_table(["process", "median wall s", "median CPU s", "peak RSS MB"], [
                [name, value["wall_s"], value["cpu_s"], value["rss_mb"]]
                for name, value in query["processes"].items()]))  # type: ignore[index]
    print(f"\nresults: {output}")


if __name__ == "__main__":
    main()
