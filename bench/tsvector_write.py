"""The CPU of writing a tenant's search rows to PostgreSQL, three ways side by side.

    .venv/bin/python bench/tsvector_write.py [--runs 5] [--corpus DIR] [--pg-url URL]
                                             [--work DIR]

The documents of a tenant-like corpus (`make_corpus.py --preset tenant`: 2,590 notes; built
in --work unless --corpus is given) are built as the sync builds them (`parse_note`,
`search_doc`), then, per run and in turn, inserted into an empty `search_text`-like table
(GIN index on `tsv`, one transaction, asyncpg `executemany`) as:

- `to_tsvector`: the words as text, the server's parser and `setweight`s (`TSVECTOR_SQL` in
  tests/helpers_tsv.py, what the sync did before);
- `literal`: the tsvector's text form (`CAST($4 AS tsvector)`: the server's tsvectorin; the
  texts are the server's own rendering, made before the runs, so "ours" is only the rows);
- `binary`: the tsvector's binary form (`postgres_tsvector`, what the sync does now).

Measured: our CPU to build the parameters (`postgres_columns`, the literal's text, or
`postgres_tsvector`; process CPU, one thread), and the server backend's CPU for the insert
(/proc of the connection's backend, so the server must run on this machine: by default a
throwaway one, started and stopped here). Medians; a markdown table on stdout and a JSON file
in bench/results/.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO), str(REPO / "src")]

from measure import environment, markdown_table, results_path  # noqa: E402

from bm_sync.markdown import parse_note  # noqa: E402
from bm_sync.search import (  # noqa: E402
    note_body,
    postgres_tsvector,
    search_doc,
)
from tests.helpers_tsv import TSVECTOR_SQL, postgres_columns  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TABLE = ("DROP TABLE IF EXISTS bench_search; CREATE TABLE bench_search (entity_id int PRIMARY"
         " KEY, project_id int NOT NULL, z bytea NOT NULL, tsv tsvector NOT NULL);"
         " CREATE INDEX ON bench_search USING gin (tsv)")
INSERT = "INSERT INTO bench_search VALUES ($1, $2, $3, {tsv})"
_REFERENCE = TSVECTOR_SQL.replace("CAST(:scope AS text[])", "CAST($8 AS text[])")
for _index, _name in enumerate("abcd"):
    _REFERENCE = _REFERENCE.replace(f":{_name}", f"${_index + 4}")


def documents(corpus: Path) -> list[tuple[tuple[str, ...], bytes]]:
    """(values, z) of every note of the corpus, as `apply.prepare` builds them."""
    found = []
    for file in sorted(corpus.rglob("*.md")):
        path = file.relative_to(corpus).as_posix()
        text = file.read_text(encoding="utf-8", errors="replace")
        note = parse_note(text, path)
        doc = search_doc(project_id=1, path=path, title=note.title, entity_type=note.entity_type,
                         permalink=note.permalink or path.removesuffix(".md"), tags=note.tags,
                         body=note_body(text),
                         categories=(item.category for item in note.observations))
        found.append((doc.values, doc.z))
    return found


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def measure(url: str, docs: list[tuple[tuple[str, ...], bytes]], runs: int
                  ) -> dict[str, list[dict[str, float]]]:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.set_type_codec("tsvector", schema="pg_catalog", encoder=bytes,
                                    decoder=bytes, format="binary")
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    texts = [row[0] for row in await connection.fetch(
        "SELECT t::text FROM unnest($1::tsvector[]) t",
        [postgres_tsvector(values) for values, _z in docs])]

    def to_tsvector_rows() -> list[tuple[Any, ...]]:
        rows = []
        for number, (values, z) in enumerate(docs):
            parts = postgres_columns(values)
            rows.append((number, 1, z, parts["a"], parts["b"], parts["c"], parts["d"],
                         parts["scope"]))
        return rows

    ways: dict[str, tuple[str, Callable[[], list[tuple[Any, ...]]]]] = {
        "to_tsvector": (INSERT.format(tsv=_REFERENCE), to_tsvector_rows),
        "literal": ("INSERT INTO bench_search VALUES ($1, $2, $3, CAST($4::text AS tsvector))",
                    lambda: [(number, 1, z, text) for number, ((_values, z), text)
                             in enumerate(zip(docs, texts, strict=True))]),
        "binary": (INSERT.format(tsv="CAST($4 AS tsvector)"),
                   lambda: [(number, 1, z, postgres_tsvector(values))
                            for number, (values, z) in enumerate(docs)]),
    }
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    for run in range(runs):
        for name, (sql, build) in ways.items():
            await connection.execute(TABLE)
            started = time.process_time()
            rows = build()
            ours = time.process_time() - started
            before = backend_cpu_s(pid)
            async with connection.transaction():
                await connection.executemany(sql, rows)
            server = backend_cpu_s(pid) - before
            samples[name].append({"ours_cpu_s": ours, "server_cpu_s": server,
                                  "total_cpu_s": ours + server})
            print(f"run {run + 1} {name}: ours {ours:.3f} s, server {server:.2f} s",
                  file=sys.stderr)
    await connection.execute("DROP TABLE bench_search")
    await connection.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, help="a tenant corpus (default: built in --work)")
    parser.add_argument("--pg-url", help="a PostgreSQL server on this machine (default: a "
                                         "throwaway one, started and stopped here)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bm-tsvector-bench"))
    args = parser.parse_args()
    corpus = args.corpus
    if corpus is None:
        corpus = args.work / "corpus"
        if not corpus.exists():
            args.work.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, str(BENCH / "make_corpus.py"), str(corpus),
                            "--preset", "tenant"], check=True, stdout=subprocess.DEVNULL)
    docs = documents(corpus)
    server = None
    url = args.pg_url
    if url is None:
        from tests import postgres

        server = postgres.start()
        url = server.url
    try:
        samples = asyncio.run(measure(url, docs, args.runs))
    finally:
        if server is not None:
            from tests import postgres

            postgres.stop(server.folder)
    results: dict[str, Any] = {"environment": environment(), "args": {
        "runs": args.runs, "corpus": str(corpus), "documents": len(docs)}, "samples": samples}
    results["environment"]["loadavg_end"] = os.getloadavg()
    medians = {name: {measure: statistics.median(sample[measure] for sample in runs)
                      for measure in runs[0]} for name, runs in samples.items()}
    results["medians"] = medians
    base = medians["to_tsvector"]["total_cpu_s"]
    print(markdown_table(["way", "ours CPU s", "server CPU s", "total CPU s",
                          "total / to_tsvector"],
                         [[name, values["ours_cpu_s"], values["server_cpu_s"],
                           values["total_cpu_s"], values["total_cpu_s"] / base]
                          for name, values in medians.items()]))
    print(f"documents: {len(docs)}; load average: start {results['environment']['loadavg']}, "
          f"end {results['environment']['loadavg_end']}")
    path = results_path("tsvector-write")
    path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
