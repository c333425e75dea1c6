"""The CPU of first syncs in a warm process (as a worker's sync processes run them), ours and
the PostgreSQL server's, for two versions side by side.

    .venv/bin/python bench/first_sync_warm.py [--rounds 2] [--syncs 2] [--backends postgres,sqlite]
                                              [--reference SRC] [--pg-url URL] [--work DIR]

`bench/first_sync.py` measures a whole `bm sync` process, of which ~1 s is imports; a worker's
sync processes are started once and sync project after project. Here each version (this
checkout's `src`, and with `--reference SRC` another checkout's, put first on PYTHONPATH) gets a
child process that first syncs one copy of the tenant-like corpus (`make_corpus.py --preset
tenant`) to warm up, then `--syncs` fresh copies into fresh databases, each measured: the
process's CPU over the sync (`time.process_time`: every thread) and the server's CPU over the
same interval (`first_sync.server_cpu_s`: the postmaster's own, reaped and live children's
CPU, so the server must run on this machine and serve nothing else; by default a throwaway
one is started). Versions alternate within each round. Medians over rounds x syncs; results
as a markdown table on stdout and a JSON file in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO)]

from first_sync import postmaster_pid  # noqa: E402
from measure import environment, markdown_table, results_path  # noqa: E402

CHILD = r"""
import asyncio, json, shutil, sys, time
from pathlib import Path

bench, repo, corpus, work, url, syncs, postmaster = sys.argv[1:8]
sys.path[:0] = [bench, repo]
from first_sync import server_cpu_s
from bm_sync.project_sync import sync_folder


def one(tag: str) -> dict[str, float]:
    folder = Path(work) / tag
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(corpus, folder, symlinks=True)
    if url == "sqlite":
        database = Path(work) / f"{tag}.db"
        database.unlink(missing_ok=True)
        database_url = f"sqlite+aiosqlite:///{database}"
    else:
        from tests.postgres import create_database
        database_url = create_database(url)
    pid = int(postmaster)
    server_before = server_cpu_s(pid) if pid else 0.0
    cpu_before = time.process_time()
    outcome = asyncio.run(sync_folder(tag, folder, database_url, None))
    cpu = time.process_time() - cpu_before
    time.sleep(0.5)  # the backends exit after the client: let the postmaster reap them
    server = server_cpu_s(pid) - server_before if pid else 0.0
    if outcome.result != "ok":
        raise SystemExit(f"sync failed: {outcome.error}")
    return {"cpu_s": cpu, "server_cpu_s": server, "total_cpu_s": cpu + server}


one("warm")
print(json.dumps([one(f"sync-{number}") for number in range(int(syncs))]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--syncs", type=int, default=2, help="measured syncs per process")
    parser.add_argument("--backends", default="postgres,sqlite",
                        help="comma-separated: postgres, sqlite")
    parser.add_argument("--reference", type=Path,
                        help="the src folder of the version to compare with")
    parser.add_argument("--pg-url", help="a PostgreSQL server on this machine (default: a "
                                         "throwaway one, started and stopped here)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bm-first-sync-warm"))
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    versions = {"this": REPO / "src"}
    if args.reference is not None:
        versions["reference"] = args.reference.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.work / "corpus"
    if not corpus.exists():
        subprocess.run([sys.executable, str(BENCH / "make_corpus.py"), str(corpus),
                        "--preset", "tenant"], check=True, stdout=subprocess.DEVNULL)
    server = None
    url = args.pg_url
    if "postgres" in backends and url is None:
        from tests import postgres

        server = postgres.start()
        url = server.url
    results: dict[str, Any] = {"environment": environment(), "args": vars(args) | {
        "reference": str(args.reference), "work": str(args.work)}, "samples": {}}
    try:
        for round_number in range(args.rounds):
            order = list(versions) if round_number % 2 == 0 else list(reversed(versions))
            for backend in backends:
                target = url if backend == "postgres" else "sqlite"
                postmaster = postmaster_pid(url) if backend == "postgres" and url else 0
                for version in order:
                    command = [sys.executable, "-c", CHILD, str(BENCH), str(REPO), str(corpus),
                               str(args.work), str(target), str(args.syncs), str(postmaster)]
                    done = subprocess.run(command, capture_output=True, text=True, check=False,
                                          env={**os.environ, "PYTHONPATH": str(versions[version])})
                    if done.returncode != 0:
                        raise SystemExit(f"{backend} {version}: {done.stderr.strip()[-2000:]}")
                    samples = json.loads(done.stdout.strip().splitlines()[-1])
                    for sample in samples:
                        sample["loadavg_1m"] = os.getloadavg()[0]
                    results["samples"].setdefault(f"{backend}/{version}", []).extend(samples)
                    print(f"round {round_number + 1} {backend} {version}: {json.dumps(samples)}",
                          file=sys.stderr)
    finally:
        if server is not None:
            from tests import postgres

            postgres.stop(server.folder)
    results["environment"]["loadavg_end"] = os.getloadavg()
    medians = {key: {measure: statistics.median(sample[measure] for sample in samples)
                     for measure in ("cpu_s", "server_cpu_s", "total_cpu_s")}
               for key, samples in results["samples"].items()}
    results["medians"] = medians
    rows = []
    for backend in backends:
        this = medians[f"{backend}/this"]
        reference = medians.get(f"{backend}/reference")
        for measure in ("cpu_s", "server_cpu_s", "total_cpu_s"):
            if backend == "sqlite" and measure != "cpu_s":
                continue
            before = reference[measure] if reference else None
            rows.append([backend, measure, this[measure], before,
                         this[measure] / before if before else None])
    print(markdown_table(["backend", "measure (median, warm process)", "this", "reference",
                          "ratio"], rows))
    print(f"load average: start {results['environment']['loadavg']}, "
          f"end {results['environment']['loadavg_end']}")
    path = results_path("first-sync-warm")
    path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
