"""The CPU of one first sync, ours and the PostgreSQL server's, for two versions side by side.

    .venv/bin/python bench/first_sync.py [--runs 3] [--warm SYNCS] [--backends postgres,sqlite]
                                         [--reference SRC] [--pg-url URL] [--work DIR]

Syncs a tenant-like corpus (`make_corpus.py --preset tenant`: 2,590 notes + 31 binaries,
80 MB) into an empty database with `bm sync PATH --db URL`, once per run and version, the
versions alternating within each run (so a load change hits both): this checkout's `src`, and
with `--reference SRC` another checkout's `src` (e.g. `git archive <commit> src alembic | tar
-x -C DIR`, then `--reference DIR/src`: its migrations are found beside it), put first on
PYTHONPATH. Each sync gets a fresh copy of the corpus and a fresh database.

Measured: the `bm sync` process's user + system CPU and peak RSS (wait4), its wall time, and
for PostgreSQL the server's CPU over the same interval: the postmaster's own and reaped
children's CPU plus its live children's, from /proc (the backends of the sync's connections
exit when it ends, so their CPU is the postmaster's reaped CPU by then). The server must
therefore run on this machine, and should serve nothing else meanwhile: by default a throwaway
server is started (tests/postgres.py) and stopped at the end. Medians over the runs; results as
a markdown table on stdout and a JSON file in bench/results/.

`--warm SYNCS`: first syncs in a warm process instead, as a worker's sync processes run them
(a `bm sync` process spends ~1 s of its CPU on imports). Per run and version, one child
process (the version's `src` first on PYTHONPATH) first syncs one copy to warm up, then SYNCS
fresh copies into fresh databases, each measured: the process's CPU over the sync
(`time.process_time`: every thread) and the server's over the same interval, as above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO)]

from measure import environment, markdown_table, results_path, run_measured  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")

# The child process of `--warm`: argv = bench, repo, corpus, work, url or "sqlite", syncs,
# postmaster pid (0: none). Prints one JSON list of samples.
WARM_CHILD = r"""
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



def postmaster_pid(url: str) -> int:
    """The pid of the server's postmaster (first line of `postmaster.pid` in its data
    directory), asked of the server itself."""
    import asyncpg

    from tests.postgres import _driver_dsn

    async def data_directory() -> str:
        connection = await asyncpg.connect(_driver_dsn(url))
        try:
            return str(await connection.fetchval("SHOW data_directory"))
        finally:
            await connection.close()

    folder = Path(asyncio.run(data_directory()))
    return int((folder / "postmaster.pid").read_text().splitlines()[0])


def server_cpu_s(postmaster: int) -> float:
    """CPU seconds of the server so far: the postmaster's own and its reaped children's, plus
    its live children's."""
    def fields(pid: int | str) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    own = fields(postmaster)
    ticks = sum(int(value) for value in own[11:15])
    for child in Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split():
        try:
            child_fields = fields(child)
        except OSError:  # exited meanwhile: its CPU is in the postmaster's reaped CPU
            continue
        ticks += int(child_fields[11]) + int(child_fields[12])
    return ticks / TICKS


def first_sync(corpus: Path, work: Path, source: Path, url: str | None,
               postmaster: int | None) -> dict[str, float]:
    """One first sync of a fresh copy of `corpus` with the bm_sync found in `source`."""
    folder = work / "tenant"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(corpus, folder, symlinks=True)
    command = [sys.executable, "-m", "bm_sync", "sync", str(folder), "--quiet"]
    if url is not None:
        from tests.postgres import create_database

        command += ["--db", create_database(url)]
    environment_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(source)
    try:
        server_before = server_cpu_s(postmaster) if postmaster else 0.0
        sample, _output = run_measured(command)
        time.sleep(0.5)  # the backends exit after the client: let the postmaster reap them
        server = server_cpu_s(postmaster) - server_before if postmaster else 0.0
    finally:
        if environment_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = environment_before
    return {"wall_s": sample.wall_s, "cpu_s": sample.cpu_s, "server_cpu_s": server,
            "total_cpu_s": sample.cpu_s + server, "rss_mb": sample.rss_mb}


def warm_syncs(corpus: Path, work: Path, src: Path, syncs: int, url: str | None,
               postmaster: int | None) -> list[dict[str, float]]:
    """`syncs` measured first syncs in one warm child process of the version at `src`."""
    command = [sys.executable, "-c", WARM_CHILD, str(BENCH), str(REPO), str(corpus), str(work),
               url or "sqlite", str(syncs), str(postmaster or 0)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(src)})
    if done.returncode != 0:
        raise SystemExit(f"warm syncs of {src}: {done.stderr.strip()[-2000:]}")
    samples: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm", type=int, default=0, metavar="SYNCS",
                        help="measure SYNCS first syncs in one warm process per run and version")
    parser.add_argument("--backends", default="postgres,sqlite",
                        help="comma-separated: postgres, sqlite")
    parser.add_argument("--reference", type=Path,
                        help="the src folder of the version to compare with")
    parser.add_argument("--pg-url", help="a PostgreSQL server on this machine (default: a "
                                         "throwaway one, started and stopped here)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bm-first-sync-bench"))
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
        postmaster = postmaster_pid(url) if url is not None and "postgres" in backends else None
        for run in range(args.runs):
            order = list(versions) if run % 2 == 0 else list(reversed(versions))
            for backend in backends:
                for version in order:
                    if args.warm:
                        samples = warm_syncs(corpus, args.work, versions[version], args.warm,
                                             url if backend == "postgres" else None,
                                             postmaster if backend == "postgres" else None)
                    else:
                        samples = [first_sync(corpus, args.work, versions[version],
                                              url if backend == "postgres" else None,
                                              postmaster if backend == "postgres" else None)]
                    for sample in samples:
                        sample["loadavg_1m"] = os.getloadavg()[0]
                    results["samples"].setdefault(f"{backend}/{version}", []).extend(samples)
                    print(f"run {run + 1} {backend} {version}: {json.dumps(samples)}",
                          file=sys.stderr)
    finally:
        if server is not None:
            from tests import postgres

            postgres.stop(server.folder)
    results["environment"]["loadavg_end"] = os.getloadavg()
    rows = []
    medians: dict[str, dict[str, float]] = {}
    for key, samples in results["samples"].items():
        medians[key] = {measure: statistics.median(sample[measure] for sample in samples)
                        for measure in samples[0]}
    results["medians"] = medians
    for backend in backends:
        this = medians[f"{backend}/this"]
        reference = medians.get(f"{backend}/reference")
        for measure in ("cpu_s", "server_cpu_s", "total_cpu_s", "wall_s", "rss_mb"):
            if (backend == "sqlite" and measure in ("server_cpu_s", "total_cpu_s")
                    or measure not in this):
                continue
            before = reference[measure] if reference else None
            rows.append([backend, measure, this[measure], before,
                         this[measure] / before if before else None])
    kind = "median, warm process" if args.warm else "median"
    print(markdown_table(["backend", f"measure ({kind})", "this", "reference", "ratio"], rows))
    print(f"load average: start {results['environment']['loadavg']}, "
          f"end {results['environment']['loadavg_end']}")
    path = results_path("first-sync-warm" if args.warm else "first-sync")
    path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
