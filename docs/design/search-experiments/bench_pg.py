"""PostgreSQL tsvector + GIN measurements for issue 12 (research, not product code).

    /work/main/.venv/bin/python bench_pg.py CORPUS 'postgresql://postgres@/db?host=/sock&port=N'

Per variant: fresh tables, one transaction per 200 notes (entity rows + search rows), then the
relation sizes, then query latency over the fixed query set.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, "/work/research")
from bench_fts import body_without_obs, cjk_bigrams, load  # noqa: E402

SETUP = [
    "DROP TABLE IF EXISTS note_search, entity",
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS bm_simple",
    "CREATE TEXT SEARCH CONFIGURATION bm_simple (COPY = simple)",
    "ALTER TEXT SEARCH CONFIGURATION bm_simple ALTER MAPPING FOR hword, hword_part, word "
    "WITH unaccent, simple",
]
ENTITY = """CREATE TABLE entity (id INTEGER PRIMARY KEY, project_id INT, file_path TEXT UNIQUE,
    permalink TEXT, title TEXT, entity_type TEXT, content_type TEXT, checksum TEXT, size BIGINT,
    mtime DOUBLE PRECISION, tags TEXT)"""
TSV = ("setweight(to_tsvector('{cfg}'::regconfig, coalesce(title,'')), 'A') || "
       "setweight(to_tsvector('{cfg}'::regconfig, coalesce(tags,'') || ' ' || "
       "coalesce(permalink,'') || ' ' || coalesce(path,'')), 'B') || "
       "setweight(to_tsvector('{cfg}'::regconfig, coalesce(observations,'') || ' ' || "
       "coalesce(cjk,'')), 'C') || "
       "setweight(to_tsvector('{cfg}'::regconfig, coalesce(body,'')), 'D')")
SEARCH = """CREATE TABLE note_search (entity_id INTEGER PRIMARY KEY REFERENCES entity(id)
    ON DELETE CASCADE, project_id INT NOT NULL, entity_type TEXT, tags TEXT, title TEXT,
    body TEXT, observations TEXT, permalink TEXT, path TEXT, cjk TEXT
    {tsv})"""
VARIANTS = {
    "none": None,
    "maintained_nobody": ", tsv tsvector NOT NULL",
    "generated_simple": ", tsv tsvector GENERATED ALWAYS AS (" + TSV.format(cfg="simple")
                        + ") STORED",
    "generated_unaccent": ", tsv tsvector GENERATED ALWAYS AS (" + TSV.format(cfg="bm_simple")
                          + ") STORED",
}
QUERIES = ["sync", "budget", "latency", "garden", "coffee", "release", "keyboard", "winter",
           "permalink", "observation"]


async def run(dsn: str, rows: list[dict], md_bytes: int, name: str) -> dict:
    con = await asyncpg.connect(dsn)
    for stmt in SETUP:
        await con.execute(stmt)
    await con.execute("DROP TABLE IF EXISTS note_search, entity")
    await con.execute(ENTITY)
    if VARIANTS[name] is not None:
        await con.execute(SEARCH.format(tsv=VARIANTS[name]))
        await con.execute("CREATE INDEX note_search_tsv ON note_search USING gin (tsv)")
        await con.execute("CREATE INDEX note_search_project ON note_search (project_id)")
    start, cpu0 = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), 200):
        batch = rows[i:i + 200]
        async with con.transaction():
            await con.executemany(
                "INSERT INTO entity VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                [(r["id"], 1, r["path"], r["permalink"], r["title"], r["type"], "text/markdown",
                  "0" * 40, len(r["raw"]), 0.0, r["tags"]) for r in batch])
            if name == "maintained_nobody":
                await con.executemany(
                    "INSERT INTO note_search (entity_id, project_id, entity_type, tags, title, "
                    "permalink, path, tsv) VALUES ($1,$2,$3,$4,$5,$6,$7, "
                    + TSV.format(cfg="bm_simple").replace("coalesce(body,'')", "$8")
                    .replace("coalesce(observations,'')", "$9").replace("coalesce(cjk,'')", "$10")
                    .replace("coalesce(title,'')", "coalesce($5,'')")
                    .replace("coalesce(tags,'')", "coalesce($4,'')")
                    .replace("coalesce(permalink,'')", "coalesce($6,'')")
                    .replace("coalesce(path,'')", "coalesce($7,'')") + ")",
                    [(r["id"], 1, r["type"], r["tags"], r["title"], r["permalink"], r["path"],
                      body_without_obs(r["body"]), r["observations"],
                      cjk_bigrams(r["title"] + " " + r["body"])) for r in batch])
            elif VARIANTS[name] is not None:
                await con.executemany(
                    "INSERT INTO note_search (entity_id, project_id, entity_type, tags, title, "
                    "body, observations, permalink, path, cjk) "
                    "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                    [(r["id"], 1, r["type"], r["tags"], r["title"], body_without_obs(r["body"]),
                      r["observations"], r["permalink"], r["path"],
                      cjk_bigrams(r["title"] + " " + r["body"]) or None) for r in batch])
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    await con.execute("VACUUM ANALYZE")
    sizes = await con.fetchrow(
        "SELECT pg_total_relation_size('entity') AS entity, "
        "coalesce(pg_total_relation_size(to_regclass('note_search')), 0) AS search, "
        "coalesce(pg_relation_size(to_regclass('note_search_tsv')), 0) AS gin")
    result = {"variant": name, "notes": len(rows), "seconds": round(elapsed, 3),
              "ms_per_note": round(elapsed * 1000 / len(rows), 4),
              "client_cpu_ms_per_note": round(cpu * 1000 / len(rows), 4),
              **{f"{k}_bytes": v for k, v in sizes.items()}, "md_bytes": md_bytes,
              "search_vs_md": round(sizes["search"] / md_bytes, 3)}
    if VARIANTS[name] is not None:
        cfg = "simple" if name == "generated_simple" else "bm_simple"
        lat = []
        sql = (f"SELECT entity_id, path, title, ts_rank(tsv, q) AS rank, " +
               (f"ts_headline('{cfg}', body, q, 'MaxWords=20, MinWords=8, MaxFragments=1') "
                if name != "maintained_nobody" else "1 ") +
               f"FROM (SELECT entity_id, path, title, body, tsv, q FROM note_search, "
               f"websearch_to_tsquery('{cfg}', $1) q WHERE tsv @@ q AND project_id = 1 "
               f"ORDER BY ts_rank(tsv, q) DESC LIMIT 10) hits")
        for q in QUERIES + ['"sync index"', "sync -budget", "sync or budget"]:
            for _ in range(3):
                t = time.perf_counter()
                await con.fetch(sql, q)
                lat.append((time.perf_counter() - t) * 1000)
        prefix = []
        for q in ["syn:*", "lat:*", "gard:*"]:
            for _ in range(3):
                t = time.perf_counter()
                await con.fetch(
                    f"SELECT entity_id, ts_rank(tsv, q) r FROM note_search, to_tsquery('{cfg}', $1)"
                    f" q WHERE tsv @@ q ORDER BY r DESC LIMIT 10", q)
                prefix.append((time.perf_counter() - t) * 1000)
        lat.sort()
        prefix.sort()
        result["query_ms_p50"] = round(statistics.median(lat), 2)
        result["query_ms_p95"] = round(lat[int(len(lat) * 0.95) - 1], 2)
        result["prefix_ms_p50"] = round(statistics.median(prefix), 2)
        result["prefix_ms_max"] = round(prefix[-1], 2)
        result["cafe_hits"] = await con.fetchval(
            f"SELECT count(*) FROM note_search WHERE tsv @@ websearch_to_tsquery('{cfg}', 'cafe')")
    await con.close()
    return result


async def main() -> None:
    corpus, dsn = Path(sys.argv[1]), sys.argv[2]
    names = sys.argv[3:] or list(VARIANTS)
    rows, md_bytes = load(corpus)
    print(f"loaded {len(rows)}", flush=True)
    out = []
    for name in names:
        result = await run(dsn, rows, md_bytes, name)
        print(json.dumps(result), flush=True)
        out.append(result)
    Path(f"/work/research/pg-{corpus.name}-{'-'.join(names)}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
