"""The proposed in-process query: bounded bm25 plan + entity join + side-table snippet."""
import sqlite3, time, statistics, sys, json, zlib
sys.path.insert(0, "/work/research"); sys.path.insert(0, "/tmp/fts")
from snippet import make_snippet
import importlib.util
spec = importlib.util.spec_from_file_location("qp", "/tmp/fts/qplans_lib.py")
sys.argv = [sys.argv[0], sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "1000"]
qp = importlib.util.module_from_spec(spec); spec.loader.exec_module(qp)
con = qp.con
def search(q):
    hits = qp.bounded(q)
    if not hits: return []
    ids = [h[0] for h in hits]
    marks = ",".join("?" * len(ids))
    ents = {r[0]: r for r in con.execute(f"SELECT id, file_path, title, permalink FROM entity WHERE id IN ({marks}) AND project_id = 1", ids)}
    texts = dict(con.execute(f"SELECT entity_id, z FROM note_search_text WHERE entity_id IN ({marks})", ids))
    out = []
    for i, score in hits:
        v = json.loads(zlib.decompress(texts[i]))
        out.append((ents[i][1], ents[i][2], score, make_snippet(v[1] + "\n" + v[2], q)))
    return out
for q in qp.qs[:3]: search(q)
lat = []; snip = []
for q in qp.qs:
    t = time.process_time(); w = time.perf_counter(); r = search(q); lat.append((time.process_time() - t) * 1000)
lat.sort()
print("proposed plan + snippets: cpu p50 %.1f p95 %.1f max %.1f ms over %d queries" % (statistics.median(lat), lat[int(len(lat)*0.95)-1], lat[-1], len(lat)))
print(json.dumps(search('"sync index"')[:2], ensure_ascii=False))
# snippet cost alone
texts = [json.loads(zlib.decompress(z)) for (z,) in con.execute("SELECT z FROM note_search_text LIMIT 200")]
t = time.process_time()
for v in texts: make_snippet(v[1] + "\n" + v[2], "sync index*")
print("snippet alone: %.3f ms per hit" % ((time.process_time() - t) * 1000 / len(texts)))
