import os, shutil, signal, sys, time, glob
sys.path.insert(0, "/tmp/wr"); from lib import *
root = "/tmp/wr/ovf"; shutil.rmtree(root, ignore_errors=True); os.makedirs(root)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
p = Probe(root, debounce=1600, step=50, debug=True) if len(sys.argv) < 3 else Probe(root, script="/tmp/wr/inprobe.py"); print("ready", round(p.wait_ready(), 2), "s")
os.kill(p.pid, signal.SIGSTOP)   # the Rust reader thread stops draining the inotify fd
t = time.time()
for i in range(N):
    with open(f"{root}/f{i}.md", "w") as f: f.write("x")
print(f"wrote {N} new files while the watcher was stopped ({time.time()-t:.1f}s); each = CREATE+OPEN+MODIFY+CLOSE_WRITE")
os.kill(p.pid, signal.SIGCONT)
bs = p.drain(quiet=2.0)
seen = sum(b.get("n", 0) for b in bs)
print("batches:", len(bs), "paths reported:", seen, "of", N, "errors:", [b for b in bs if "error" in b], "lost:", [b.get("lost") for b in bs], "events:", [b.get("events") for b in bs])
time.sleep(0.5)
with open(f"{root}/after.md", "w") as f: f.write("after")
print("after overflow, a new write is reported:", [b.get("changes") for b in p.drain(quiet=1.0)])
p.stop()
err = sorted(glob.glob("/tmp/wr/probe-*.err"), key=os.path.getmtime)[-1]
txt = open(err).read()
print("stderr lines:", txt.count("\n"), "| 'Rescan' occurrences:", txt.count("Rescan"), "| 'no paths found':", txt.count("no paths found"))
for l in txt.splitlines():
    if "Rescan" in l or "Q_OVERFLOW" in l or "error" in l.lower(): print("  ", l[:300]); break
