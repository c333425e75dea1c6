"""basic-memory 0.23.2's own first index of a folder against `bm sync`, both with full-text
search on, side by side on identical copies of one corpus (issue 12).

Run it with the Python of a separate virtual environment that has basic-memory installed
(it needs Python >= 3.12; never add basic-memory to bm-sync's dependencies), and point
`--bm` at our `bm`:

    python3.12 -m venv /tmp/bmvenv && /tmp/bmvenv/bin/pip install basic-memory==0.23.2
    /tmp/bmvenv/bin/python bench/basic_memory_compare.py --bm .venv/bin/bm --runs 3

basic-memory 0.23.2 has no `sync` command; its first index of a folder is what `bm reindex
--full --search` runs for a local project: `reconcile_projects_with_config`, the database
made and migrated, then `run_local_project_index_for_project(force_full=True,
embeddings=False)` (`basic_memory.cli.commands.db._reindex`). This script runs exactly that
sequence in a child process, in a fresh `BASIC_MEMORY_CONFIG_DIR` whose config.json holds one
local project (the corpus copy) with semantic search off (no model download, no vectors),
then counts its `search_index` rows (its FTS5 rows: every entity, observation and relation
gets one) to show they were built. Side by side, in the same run, `bm sync` (search on) on
an identical copy. Each run uses fresh copies; which tool goes first alternates. CPU and peak
RSS are the child process's (`wait4`). The corpus is bench/make_corpus.py's (--preset tenant
by default), made under --workdir if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The child: basic-memory's own reindex sequence, timed from inside (after its imports).
BASIC_MEMORY_CHILD = r"""
import asyncio, json, sys, time

async def main():
    from basic_memory import db
    from basic_memory.config import ConfigManager, init_cli_logging
    from basic_memory.index.local_project import (
        LocalProjectIndexRuntimeFactory, run_local_project_index_for_project)
    from basic_memory.repository import ProjectRepository
    from basic_memory.repository.search_repository_base import purge_stale_search_index_rows
    from basic_memory.services.initialization import reconcile_projects_with_config

    init_cli_logging()  # as its CLI does (loguru's default would log DEBUG to stderr)
    app_config = ConfigManager().config
    assert not app_config.semantic_search_enabled
    started, cpu = time.perf_counter(), time.process_time()
    await reconcile_projects_with_config(app_config)
    _, session_maker = await db.get_or_create_db(db_path=app_config.database_path,
                                                 db_type=db.DatabaseType.FILESYSTEM)
    async with db.scoped_session(session_maker) as session:
        projects = await ProjectRepository().get_active_projects(session)
    results = []
    for project in projects:
        result = await run_local_project_index_for_project(
            project, runtime_factory=LocalProjectIndexRuntimeFactory(), force_full=True,
            embeddings=False)
        await purge_stale_search_index_rows(session_maker, project.id)
        results.append({"name": project.name, "total_files": result.total_files,
                        "indexed": result.enqueued_files})
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await db.shutdown_db()
    print(json.dumps({"projects": results, "in_process_s": elapsed, "in_process_cpu_s": cpu,
                      "database": str(app_config.database_path)}))

asyncio.run(main())
"""


def measured(command: list[str], env: dict[str, str] | None = None,
             timeout: float | None = None) -> dict[str, object]:
    """Run `command`: its wall seconds, CPU seconds and peak RSS in MB (its own, from
    `wait4`), its stdout, and whether it was stopped (SIGTERM) after `timeout` seconds."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        timed_out = False
        while True:  # wait4 reaps it (subprocess's own wait would take the rusage with it)
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - started > timeout and not timed_out:
                process.terminate()
                timed_out = True
            time.sleep(0.05)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0 and not timed_out:
            raise SystemExit(f"{command[0]} failed ({process.returncode}): "
                             f"{stderr.read().decode(errors='replace')[-2000:]}")
        return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout.read().decode(),
                "timed_out": timed_out}


def run_basic_memory(corpus: Path, scratch: Path, timeout: float | None) -> dict[str, object]:
    """basic-memory's full index of a copy of `corpus`; stopped after `timeout` seconds, it
    reports how far it got (entities and search rows written), from which a rate."""
    notes = scratch / "bm-notes"
    shutil.copytree(corpus, notes, ignore=shutil.ignore_patterns(".git", ".basic-memory"))
    config_dir = scratch / "bm-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({
        "projects": {"tenant": {"path": str(notes), "mode": "local"}},
        "default_project": "tenant", "semantic_search_enabled": False}))
    env = {**os.environ, "BASIC_MEMORY_CONFIG_DIR": str(config_dir),
           "BASIC_MEMORY_SEMANTIC_SEARCH_ENABLED": "false", "BASIC_MEMORY_NO_PROMOS": "1",
           "HOME": str(scratch)}
    result = measured([sys.executable, "-c", BASIC_MEMORY_CHILD], env=env, timeout=timeout)
    sample: dict[str, object] = {key: result[key] for key in (
        "wall_s", "cpu_s", "peak_rss_mb", "timed_out")}
    if not result["timed_out"]:
        sample.update(json.loads(str(result["stdout"]).strip().splitlines()[-1]))
    with sqlite3.connect(config_dir / "memory.db") as connection:
        sample["search_rows"] = dict(connection.execute(
            "SELECT type, count(*) FROM search_index GROUP BY type").fetchall())
        sample["entities"] = connection.execute("SELECT count(*) FROM entity").fetchone()[0]
    return sample


def run_bm_sync(bm: str, corpus: Path, scratch: Path) -> dict[str, object]:
    notes = scratch / "our-notes"
    shutil.copytree(corpus, notes, ignore=shutil.ignore_patterns(".git", ".basic-memory"))
    result = measured([bm, "sync", "--json", str(notes)])
    report = json.loads(str(result["stdout"]))
    with sqlite3.connect(notes / ".basic-memory" / "memory.db") as connection:
        documents = connection.execute("SELECT count(*) FROM search_text").fetchone()[0]
        entities = connection.execute("SELECT count(*) FROM entity").fetchone()[0]
    return {"wall_s": result["wall_s"], "cpu_s": result["cpu_s"],
            "peak_rss_mb": result["peak_rss_mb"], "added": len(report["added"]),
            "entities": entities, "search_documents": documents}


def make_corpus(workdir: Path, preset: str) -> Path:
    corpus = workdir / f"corpus-{preset}"
    if not corpus.is_dir():
        subprocess.run([sys.executable, str(HERE / "make_corpus.py"), str(corpus),
                        "--preset", preset], check=True)
    return corpus


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--bm", required=True, help="our `bm` executable (e.g. .venv/bin/bm)")
    parser.add_argument("--corpus", type=Path, help="a notes folder (default: make one)")
    parser.add_argument("--preset", default="tenant", help="make_corpus.py --preset")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--basic-memory-timeout", type=float,
                        help="stop basic-memory after this many seconds and report its rate")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench-basic-memory"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or make_corpus(args.workdir, args.preset)
    samples: dict[str, list[dict[str, object]]] = {"basic-memory": [], "bm sync": []}
    for run in range(args.runs):
        order = ("basic-memory", "bm sync") if run % 2 == 0 else ("bm sync", "basic-memory")
        for name in order:
            with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
                print(f"run {run + 1}/{args.runs}: {name} ...", file=sys.stderr)
                sample = (run_basic_memory(corpus, Path(scratch), args.basic_memory_timeout)
                          if name == "basic-memory"
                          else run_bm_sync(args.bm, corpus, Path(scratch)))
                print(f"  {json.dumps(sample)}", file=sys.stderr)
                samples[name].append(sample)
    print(f"load average {os.getloadavg()}; corpus {corpus}")
    print("| tool | median wall s | median CPU s | peak RSS MB | entities | search rows "
          "| CPU ms per entity | finished |")
    print("|---|---|---|---|---|---|---|---|")
    for name, values in samples.items():
        wall = statistics.median(float(str(value["wall_s"])) for value in values)
        cpu = statistics.median(float(str(value["cpu_s"])) for value in values)
        last = values[-1]
        entities = int(str(last["entities"]))
        rows = last.get("search_rows") or last.get("search_documents")
        print(f"| {name} | {wall:.2f} | {cpu:.2f} "
              f"| {max(float(str(value['peak_rss_mb'])) for value in values):.0f} "
              f"| {entities} | {rows} | {1e3 * cpu / max(1, entities):.1f} "
              f"| {'no (stopped)' if last.get('timed_out') else 'yes'} |")
    results = args.workdir / f"basic-memory-compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results.write_text(json.dumps(samples, indent=1, default=str))
    print(f"results: {results}")


if __name__ == "__main__":
    main()
