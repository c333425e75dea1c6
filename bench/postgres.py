"""SQLite and PostgreSQL side by side, in one run: the same `bm sync` commands on copies of one
corpus, alternating backends, so both see the same machine load.

    python bench/postgres.py [--sizes tenant,10000] [--runs 3] [--workdir /tmp/bm-bench-pg]
                             [--postgres-url URL]

Per corpus (`make_corpus.py`: `tenant` is 2,590 notes + 31 binaries; a number is that many
notes): a first sync into an empty database (a fresh PostgreSQL database each run); a sync
after the mixed 50-change set (`mutate.py`: 10 edits, adds, deletes, moves and moved edits,
the same seeded changes on both copies); a no-change `bm sync` on each backend against a
no-change `bm status`. Medians of `--runs` runs of wall time and of the `bm` process's CPU
time (PostgreSQL's server CPU is not in it: wall time is the fair comparison), and the
largest peak RSS of the `bm` process.

The PostgreSQL server: `--postgres-url`, else `$BM_TEST_POSTGRES_URL`, else a throwaway one
started here with the tests' helper (`tests/postgres.py`: initdb + pg_ctl, stopped at the end).
Needs the test extras (`pip install -e '.[test]'`: asyncpg creates the databases). Results go
to bench/results/postgres-*.json and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

from measure import (  # noqa: E402
    Sample,
    environment,
    markdown_table,
    ratio,
    results_path,
    run_measured,
)

from tests import postgres  # noqa: E402

BM = [sys.executable, "-m", "bm_sync"]
MIXED_50 = ["--edits", "10", "--adds", "10", "--deletes", "10", "--moves", "10",
            "--moved-edits", "10"]


def make_corpus(out: Path, size: str) -> None:
    options = ["--preset", "tenant"] if size == "tenant" else ["--notes", size]
    subprocess.run([sys.executable, str(BENCH / "make_corpus.py"), str(out), *options,
                    "--force"], check=True, stdout=subprocess.DEVNULL)


def fresh_copy(corpus: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(corpus, target, symlinks=True)
    return target


def sync(root: Path, url: str | None) -> Sample:
    """A `bm sync`; `url` None: the folder's default SQLite database."""
    sample, _out = run_measured([*BM, "sync", str(root), "--quiet",
                                 *(["--db", url] if url else [])])
    return sample


def status(root: Path) -> Sample:
    sample, _out = run_measured([*BM, "status", str(root)])
    return sample


def median(samples: list[Sample], field: str) -> float:
    return float(statistics.median(getattr(sample, field) for sample in samples))


def bench_size(size: str, runs: int, workdir: Path, server_url: str) -> dict[str, object]:
    corpus = workdir / f"corpus-{size}"
    make_corpus(corpus, size)
    samples: dict[str, list[Sample]] = {name: [] for name in (
        "first_sqlite", "first_postgres", "mixed_sqlite", "mixed_postgres",
        "nochange_sqlite", "nochange_postgres", "status")}
    for run in range(runs):
        lite = fresh_copy(corpus, workdir / "sqlite")
        pg = fresh_copy(corpus, workdir / "postgres")
        pg_url = postgres.create_database(server_url)
        try:
            # First syncs, alternating which backend goes first.
            order: list[tuple[str, Path, str | None]] = [("sqlite", lite, None),
                                                          ("postgres", pg, pg_url)]
            for backend, root, url in order if run % 2 == 0 else reversed(order):
                samples[f"first_{backend}"].append(sync(root, url))
            for root in (lite, pg):
                subprocess.run([sys.executable, str(BENCH / "mutate.py"), str(root), *MIXED_50,
                                "--seed", str(run + 1)], check=True, stdout=subprocess.DEVNULL)
            for backend, root, url in order if run % 2 == 0 else reversed(order):
                samples[f"mixed_{backend}"].append(sync(root, url))
            for backend, root, url in order:
                samples[f"nochange_{backend}"].append(sync(root, url))
            samples["status"].append(status(pg))
        finally:
            postgres.drop_database(pg_url)
    result: dict[str, object] = {"size": size}
    for name, taken in samples.items():
        result[name] = {"wall_s": median(taken, "wall_s"), "cpu_s": median(taken, "cpu_s"),
                        "rss_mb": max(sample.rss_mb for sample in taken),
                        "samples": [sample.__dict__ for sample in taken]}
    return result


def table(results: list[dict[str, object]]) -> str:
    rows: list[list[object]] = []
    for result in results:
        def get(name: str, field: str, result: dict[str, object] = result) -> float:
            value = result[name]
            assert isinstance(value, dict)
            return float(value[field])

        for what, lite, pg in (("first sync", "first_sqlite", "first_postgres"),
                               ("mixed 50 changes", "mixed_sqlite", "mixed_postgres"),
                               ("no-change sync", "nochange_sqlite", "nochange_postgres")):
            rows.append([result["size"], what, get(lite, "wall_s"), get(pg, "wall_s"),
                         ratio(get(pg, "wall_s"), get(lite, "wall_s")),
                         get(lite, "cpu_s"), get(pg, "cpu_s"),
                         get(lite, "rss_mb"), get(pg, "rss_mb")])
        rows.append([result["size"], "no-change status (reference)", get("status", "wall_s"),
                     "-", ratio(get("nochange_postgres", "wall_s"), get("status", "wall_s")),
                     get("status", "cpu_s"), "-", get("status", "rss_mb"), "-"])
    return markdown_table(["corpus", "command", "SQLite wall s", "PostgreSQL wall s",
                           "PG / SQLite (status row: PG sync / status)", "SQLite CPU s",
                           "PG CPU s", "SQLite RSS MB", "PG RSS MB"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tenant,10000",
                        help="comma-separated: tenant and/or note counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench-pg"))
    parser.add_argument("--postgres-url", help="a server's maintenance database URL "
                        "(postgresql+asyncpg://...); default $BM_TEST_POSTGRES_URL or a "
                        "throwaway server started here")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.pop("BM_DATABASE_URL", None)  # SQLite runs use each folder's default file
    given = args.postgres_url or os.environ.get(postgres.URL_VARIABLE)
    started = None if given else postgres.start()
    server_url = given or (started.url if started else "")
    try:
        results = [bench_size(size, args.runs, args.workdir, server_url)
                   for size in args.sizes.split(",")]
    finally:
        if started is not None:
            postgres.stop(started.folder)
    output = {"environment": environment(), "runs": args.runs, "results": results}
    path = results_path("postgres")
    path.write_text(json.dumps(output, indent=2))
    print(table(results))
    print(f"\n(raw samples: {path})")


if __name__ == "__main__":
    main()
