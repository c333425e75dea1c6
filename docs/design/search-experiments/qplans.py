import sqlite3, time, statistics, sys
db = sys.argv[1]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
W = "10.0, 1.0, 2.0, 5.0, 3.0, 1.0, 1.0"
words = ["sync", "budget", "latency", "garden", "coffee", "release", "keyboard", "winter",
         "harbor", "lantern", "orchard", "retrospective", "quarterly", "meadow", "beacon",
         "schema", "ledger", "brainstorm", "compass", "puzzle"]
phrases = ['"sync index"', '"coffee morning"', '"quiet harbor"', '"release plan"',
           '"the graph"', '"memory stream"', '"open garden"', '"daily journal"',
           '"budget review"', '"hidden lantern"']
prefixes = ["syn*", "lat*", "gard*", "retro*", "quart*", "lant*", "budg*", "key*", "orch*", "sched*"]
tags = [f'{w} AND tags : "{t}"' for w, t in zip(words[:10], ["garden", "coffee", "travel", "habit", "metric", "release", "server", "laptop", "summer", "winter"])]
qs = words + phrases + prefixes + tags
HEAD = "{title observations tags permalink path cjk}"
def full(q):
    return con.execute(f"SELECT h.id, e.file_path FROM (SELECT rowid id, bm25(note_search, {W}) r FROM note_search WHERE note_search MATCH ? ORDER BY r LIMIT 10) h JOIN entity e ON e.id=h.id", (q,)).fetchall()
CAP = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
def bounded(q):
    # tier 1: the head columns only; tier 2: the newest CAP matches of the whole query, ranked
    hits = con.execute(f"SELECT rowid, bm25(note_search, {W}) r FROM note_search WHERE note_search MATCH ? ORDER BY rowid DESC LIMIT ?", (f"{HEAD} : ({q})", CAP + 1)).fetchall()
    if len(hits) <= CAP:
        ranked = sorted(hits, key=lambda h: h[1])[:10]
        if len(ranked) >= 10:
            return ranked
    floor = con.execute("SELECT min(rowid) FROM (SELECT rowid FROM note_search WHERE note_search MATCH ? ORDER BY rowid DESC LIMIT ?)", (q, CAP)).fetchone()[0]
    if floor is None:
        return []
    return con.execute(f"SELECT rowid, bm25(note_search, {W}) r FROM note_search WHERE note_search MATCH ? AND rowid >= ? ORDER BY r LIMIT 10", (q, floor)).fetchall()
def count(q):
    return con.execute("SELECT count(*) FROM note_search WHERE note_search MATCH ?", (q,)).fetchone()[0]
for name, fn in (("count", count), ("full_bm25", full), (f"bounded_{CAP}", bounded)):
    for q in qs[:3]: fn(q)
    lat, kinds = [], {}
    for i, q in enumerate(qs):
        t = time.process_time(); w = time.perf_counter(); fn(q); ms = (time.process_time()-t)*1000
        lat.append(ms); kinds.setdefault(i // 10, []).append(ms)
    lat.sort()
    print(name.ljust(14), "cpu p50 %.1f p95 %.1f max %.1f ms" % (statistics.median(lat), lat[int(len(lat)*0.95)-1], lat[-1]),
          {k: round(statistics.median(v), 1) for k, v in kinds.items()}, flush=True)
print("matches:", {q: count(q) for q in qs[::5]})
