"""The search ranking against a reference commit, side by side in one process (issue 12).
From the repo root, on the synced corpus of `bench/search.py --only query`:

    .venv/bin/python bench/search_ranking.py                       # SQLite, against main
    .venv/bin/python bench/search_ranking.py --reference HEAD~3 --runs 7
    .venv/bin/python bench/search_ranking.py --database-url URL --query-root COPY

For each of bench/search.py's 50 queries it runs `db.search.rank` (the ranking only: no
snippets, no entity rows) of this checkout and of the reference commit's `db/search.py` and
`search_query.py` (read with `git show`, loaded beside this checkout's other modules) on one
connection, alternating which goes first, --runs times; a query's time is its best run (CPU
and wall). It prints p50/p95 of both and their ratio, then each query's top-10 overlap: how
many of the reference's 10 hits are still in the top 10, whether the order is the same, and
the `ranking` flag ("bounded"/"full") of both. Results go to bench/results/ranking-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import environment, markdown_table, ratio, results_path  # noqa: E402
from search import QUERIES  # noqa: E402

from bm_sync import search_query as current_query  # noqa: E402
from bm_sync.db import search as current_rows  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
Query = Callable[[str, dict[str, Any]], Any]


def reference_modules(reference: str) -> tuple[types.ModuleType, types.ModuleType]:
    """(db.search, search_query) as `reference` has them, with the reference's bm_sync.search
    and this checkout's other modules."""

    def load(name: str, path: str) -> types.ModuleType:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{reference}:{path}"],
                                check=True, capture_output=True, text=True).stdout
        module = types.ModuleType(name)
        module.__file__ = f"{reference}:{path}"
        sys.modules[name] = module  # dataclasses look their module up while they are made
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102
        return module

    query_module = load("reference_search_query", "src/bm_sync/search_query.py")
    search_module = load("reference_search", "src/bm_sync/search.py")
    saved = {name: sys.modules[name] for name in ("bm_sync.search_query", "bm_sync.search")}
    # what the reference's imports find (its db/search.py may import names this checkout's
    # modules no longer have)
    sys.modules["bm_sync.search_query"] = query_module
    sys.modules["bm_sync.search"] = search_module
    try:
        rows_module = load("reference_db_search", "src/bm_sync/db/search.py")
    finally:
        sys.modules.update(saved)
    return rows_module, query_module


def measure(query: Query, project_id: int, sqlite: bool, runs: int,
            versions: dict[str, tuple[types.ModuleType, types.ModuleType]]) -> dict:
    """Best CPU and wall time of each query under each version, and its ranked ids."""
    shared = current_rows.other_projects(query, project_id)
    timings: dict[str, dict[str, list[float]]] = {name: {} for name in versions}
    ranked: dict[str, dict[str, Any]] = {name: {} for name in versions}
    for run in range(runs):
        order = list(versions) if run % 2 == 0 else list(reversed(versions))
        for text, tag in QUERIES:
            label = text if tag is None else f"{text} --tag {tag}"
            for name in order:
                rows_module, query_module = versions[name]
                node = query_module.parse_query(text)
                scope = query_module.scope_query(project_id if shared else None, None,
                                                 [tag] if tag else [], None)
                wall, cpu = time.perf_counter(), time.process_time()
                result = rows_module.rank(query, node, sqlite=sqlite, project_id=project_id,
                                          scope=scope, limit=10)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                best = timings[name].setdefault(label, [cpu, wall])
                best[0], best[1] = min(best[0], cpu), min(best[1], wall)
                ranked[name][label] = result
    return {"timings": timings, "ranked": ranked}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(measured: dict, reference: str) -> dict:
    timings, ranked = measured["timings"], measured["ranked"]
    summary = {}
    for name in timings:
        cpus = [cpu * 1e3 for cpu, _wall in timings[name].values()]
        walls = [wall * 1e3 for _cpu, wall in timings[name].values()]
        summary[name] = {"cpu_p50_ms": statistics.median(cpus), "cpu_p95_ms": p95(cpus),
                         "cpu_max_ms": max(cpus), "wall_p50_ms": statistics.median(walls),
                         "wall_p95_ms": p95(walls), "wall_max_ms": max(walls)}
    rows = []
    for label in timings["this checkout"]:
        new, old = ranked["this checkout"][label], ranked["reference"][label]
        new_ids = [entity_id for entity_id, _score in new.ids]
        old_ids = [entity_id for entity_id, _score in old.ids]
        rows.append({"query": label, "overlap": len(set(new_ids) & set(old_ids)),
                     "same_order": new_ids == old_ids,
                     "ranking": ("bounded" if old.bounded else "full",
                                 "bounded" if new.bounded else "full"),
                     "cpu_ms": (timings["reference"][label][0] * 1e3,
                                timings["this checkout"][label][0] * 1e3),
                     "wall_ms": (timings["reference"][label][1] * 1e3,
                                 timings["this checkout"][label][1] * 1e3)})
    print(markdown_table(
        ["rank() of 50 queries", "CPU p50 ms", "CPU p95 ms", "CPU max ms", "wall p50 ms",
         "wall p95 ms"],
        [[f"{name} ({reference})" if name == "reference" else name, value["cpu_p50_ms"],
          value["cpu_p95_ms"], value["cpu_max_ms"], value["wall_p50_ms"],
          value["wall_p95_ms"]] for name, value in summary.items()]))
    print(f"\nCPU p95 ratio (this / reference): "
          f"{ratio(summary['this checkout']['cpu_p95_ms'], summary['reference']['cpu_p95_ms']):.2f}"
          f"; load average {os.getloadavg()[0]:.2f}\n")
    print(markdown_table(
        ["query", "top-10 overlap", "same order", "ranking (reference -> this)",
         "CPU ms (reference -> this)", "wall ms (reference -> this)"],
        [[row["query"], row["overlap"], "yes" if row["same_order"] else "no",
          " -> ".join(row["ranking"]), f"{row['cpu_ms'][0]:.1f} -> {row['cpu_ms'][1]:.1f}",
          f"{row['wall_ms'][0]:.1f} -> {row['wall_ms'][1]:.1f}"] for row in rows]))
    unchanged = sum(row["same_order"] for row in rows)
    print(f"\n{unchanged}/{len(rows)} queries keep the reference's top 10 in the same order; "
          f"mean overlap {statistics.mean(row['overlap'] for row in rows):.1f}/10")
    return {"summary": summary, "queries": rows}


def project_of(query: Query, root: Path) -> int:
    rows = query("SELECT id FROM project WHERE root_path = :root", {"root": str(root)})
    if len(rows) != 1:
        sys.exit(f"search_ranking: no project at {root} in this database: sync it first")
    return int(rows[0][0])


def run(args: argparse.Namespace) -> dict:
    versions = {"this checkout": (current_rows, current_query),
                "reference": reference_modules(args.reference)}
    root = (args.query_root or args.workdir / f"notes-{args.query_notes}").resolve()
    if args.database_url is None:
        database = root / ".basic-memory" / "memory.db"
        if not database.is_file():
            sys.exit(f"search_ranking: {database} is missing: run bench/search.py "
                     f"--only query --query-notes {args.query_notes} first")

        def work(query: Query) -> dict:
            return measure(query, project_of(query, root), True, args.runs, versions)

        return current_rows.run_on_file(database, work)

    def work_on_engine(query: Query) -> dict:
        return measure(query, project_of(query, root), False, args.runs, versions)

    return asyncio.run(current_rows.run_on_engine(args.database_url, work_on_engine))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--reference", default="main", help="the git commit to compare with")
    parser.add_argument("--query-notes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="runs of each query (best kept)")
    parser.add_argument("--database-url", help="rank on this database instead (PostgreSQL)")
    parser.add_argument("--query-root", type=Path,
                        help="the notes folder (default: the corpus under --workdir)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench-search"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    measured = run(args)
    results = {"environment": environment(), "args": vars(args) | {"workdir": str(args.workdir)},
               "load_average": os.getloadavg()}
    results |= report(measured, args.reference)
    output = results_path("ranking")
    output.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults: {output}")


if __name__ == "__main__":
    main()
