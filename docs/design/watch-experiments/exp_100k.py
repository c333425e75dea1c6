import os, random, statistics, sys, time, json
sys.path.insert(0, "/tmp/wr"); from lib import *
root = "/tmp/wr/c100k"; backend = sys.argv[1]; idle = float(sys.argv[2]) if len(sys.argv) > 2 else 60
kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
p = Probe(root, **kw) if backend == "watchfiles" else Probe(root, script="/tmp/wr/inprobe.py")
t0 = time.time(); r = p.wait_ready(); c_ready = cpu_s(p.pid)
print(f"[{backend} {kw}] ready in {r:.2f}s  cpu {c_ready:.2f}s  rss {rss_mb(p.pid):.1f} MB  threads {threads(p.pid)}")
c0, t = cpu_s(p.pid), time.time(); time.sleep(idle); c1 = cpu_s(p.pid); dt = time.time() - t
print(f"idle {dt:.0f}s: cpu {c1-c0:.3f}s = {100*(c1-c0)/dt:.2f}% of a core; rss {rss_mb(p.pid):.1f} MB; batches during idle {len(p.lines)} total lines")
files = [os.path.join(dp, f) for dp, dn, fn in os.walk(root) if ".git" not in dp for f in fn if f.endswith(".md")]
random.seed(1); lat = []
for f in random.sample(files, 30):
    rel = os.path.relpath(f, root); t = time.time()
    with open(f, "a") as fh: fh.write("\nedit\n")
    got = None; end = time.time() + 10
    while time.time() < end and got is None:
        try: b = p.q.get(timeout=end - time.time())
        except Exception: break
        if any(pp == rel for _, pp in b.get("changes", [])): got = b["t"] - t
    lat.append(got); time.sleep(0.3); p.drain(quiet=0.2)
ok = [x for x in lat if x is not None]
print(f"single-write latency (write -> batch delivered), n={len(lat)}: median {statistics.median(ok)*1000:.0f} ms, p95 {sorted(ok)[int(0.95*len(ok))-1]*1000:.0f} ms, max {max(ok)*1000:.0f} ms, missed {len(lat)-len(ok)}")
sample = random.sample(files, 10000); c0 = cpu_s(p.pid); t = time.time()
for f in sample:            # git-checkout-like: unlink then create with new content
    data = open(f, "rb").read(); os.unlink(f)
    with open(f, "wb") as fh: fh.write(data + b"\ncheckout\n")
tw = time.time() - t
bs = p.drain(quiet=3.0, limit=120); te = time.time() - t
paths = set()
for b in bs: paths.update(pp for _, pp in b.get("changes", []))
print(f"10k unlink+create: writer {tw:.1f}s, events drained by {te - 3:.1f}s; batches {len(bs)} sizes {[b.get('n') for b in bs][:12]}; "
      f"distinct paths in batches {sum(b.get('n',0) for b in bs)}; lost={[b.get('lost') for b in bs if b.get('lost')]}; errors={[b['error'] for b in bs if 'error' in b]}; "
      f"cpu {cpu_s(p.pid)-c0:.2f}s; rss {rss_mb(p.pid):.1f} MB")
p.stop()
