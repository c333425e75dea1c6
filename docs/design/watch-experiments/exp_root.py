import os, shutil, sys, time
sys.path.insert(0, "/tmp/wr"); from lib import *
backend = sys.argv[1]
def mk(kw={}): return Probe(root, debounce=800, step=50, **kw) if backend == "watchfiles" else Probe(root, script="/tmp/wr/inprobe.py")
def show(bs): return [(b.get("changes"), b.get("lost"), b.get("error")) for b in bs]
for root in ["/tmp/wr/rt/notes"]:
    shutil.rmtree("/tmp/wr/rt", ignore_errors=True); shutil.rmtree("/tmp/wr/rt-moved", ignore_errors=True); os.makedirs(root + "/sub")
    p = mk(); p.wait_ready()
    os.rename("/tmp/wr/rt", "/tmp/wr/rt-moved"); print("rename a parent of the root ->", show(p.drain(quiet=1.5)))
    open("/tmp/wr/rt-moved/notes/sub/a.md", "w").write("x"); print("  then write in the moved tree ->", show(p.drain(quiet=1.5)), "alive", p.p.poll() is None)
    p.stop(); os.rename("/tmp/wr/rt-moved", "/tmp/wr/rt")
    p = mk(); p.wait_ready()
    os.rename(root, root + "-2"); print("rename the root itself ->", show(p.drain(quiet=1.5)))
    open(root + "-2/sub/b.md", "w").write("x"); print("  then write in the renamed root ->", show(p.drain(quiet=1.5)), "alive", p.p.poll() is None)
    p.stop(); os.rename(root + "-2", root)
    p = mk(); p.wait_ready()
    shutil.rmtree(root); print("delete the root ->", show(p.drain(quiet=1.5)))
    os.makedirs(root + "/sub"); open(root + "/sub/c.md", "w").write("x"); print("  recreate root + write ->", show(p.drain(quiet=1.5)), "alive", p.p.poll() is None)
    p.stop()
if backend == "watchfiles":
    from watchfiles import DefaultFilter
    for root in ["/tmp/wr/.hidden/notes", "/tmp/wr/.venv/notes"]:
        os.makedirs(root, exist_ok=True)
        for filt in ("none", "default"):
            p = Probe(root, script="/tmp/wr/probe_filter.py", mode=filt); time.sleep(2.5)
            open(root + "/n.md", "w").write(str(time.time())); print(f"root {root} filter={filt}: write n.md ->", show(p.drain(quiet=1.5))); p.stop()
