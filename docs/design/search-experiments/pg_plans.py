"""PG at 10k (the maintained_nobody tables left by bench_pg.py): exhaustive vs bounded ts_rank,
server-side execution time from EXPLAIN ANALYZE; and to_tsvector cost per note, server side."""
import asyncio, json, re, statistics, sys
import asyncpg
sys.path.insert(0, "/work/research")
from bench_fts import body_without_obs, load

DSN = "postgresql://postgres@/bench?host=/tmp/fts/pgsock&port=55432"
QS = ["sync", "budget", "harbor", "lantern", "retrospective", "sync <-> index", "quiet <-> harbor",
      "syn:*", "lant:*", "orch:*"]
EXH = ("SELECT entity_id, ts_rank(tsv, q) r FROM note_search, to_tsquery('bm_simple', $1) q "
       "WHERE tsv @@ q AND project_id = 1 ORDER BY r DESC LIMIT 10")
BND = ("WITH c AS (SELECT entity_id, tsv FROM note_search WHERE tsv @@ to_tsquery('bm_simple', $1) "
       "AND project_id = 1 ORDER BY entity_id DESC LIMIT 1001) SELECT entity_id, "
       "ts_rank(tsv, to_tsquery('bm_simple', $1)) r FROM c ORDER BY r DESC LIMIT 10")

async def main():
    con = await asyncpg.connect(DSN)
    out = {}
    for name, sql in (("exhaustive", EXH), ("bounded_1000", BND)):
        times = []
        for q in QS * 2:
            plan = await con.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, q)
            times.append(json.loads(plan)[0]["Execution Time"])
        times.sort()
        out[name] = {"p50_ms": round(statistics.median(times), 1), "max_ms": round(times[-1], 1)}
    out["matches"] = {q: await con.fetchval("SELECT count(*) FROM note_search WHERE tsv @@ to_tsquery('bm_simple', $1)", q) for q in QS[:3]}
    rows, _ = load(__import__("pathlib").Path("/tmp/fts/c10k"))
    bodies = [body_without_obs(r["body"]) for r in rows[:2000]]
    plan = await con.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(length(to_tsvector('bm_simple', t))) FROM unnest($1::text[]) t", bodies)
    out["to_tsvector_ms_per_note"] = round(json.loads(plan)[0]["Execution Time"] / len(bodies), 4)
    plan = await con.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(length(to_tsvector('simple', t))) FROM unnest($1::text[]) t", bodies)
    out["to_tsvector_simple_ms_per_note"] = round(json.loads(plan)[0]["Execution Time"] / len(bodies), 4)
    print(json.dumps(out))
    open("/work/research/pg-plans-c10k.json", "w").write(json.dumps(out, indent=1))
asyncio.run(main())
