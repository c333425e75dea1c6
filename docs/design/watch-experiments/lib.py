import json, os, subprocess, sys, threading, time, queue
PY = "/tmp/research-venv/bin/python"
class Probe:
    def __init__(self, root, env=None, prefix=(), script="/tmp/wr/probe.py", **kw):
        self.root = root
        self.p = subprocess.Popen([*prefix, PY, script, root, json.dumps(kw)], stdout=subprocess.PIPE,
                                  stderr=open(f"/tmp/wr/probe-{os.getpid()}-{time.time():.0f}.err", "w"), text=True, env=env)
        self.q = queue.Queue(); self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
    def _read(self):
        for line in self.p.stdout:
            d = json.loads(line); self.lines.append(d); self.q.put(d)
    @property
    def pid(self): return self.p.pid
    def drain(self, quiet=1.0, limit=60.0):
        """Collect batches until none arrives for `quiet` s."""
        out = []; end = time.time() + limit
        while time.time() < end:
            try: out.append(self.q.get(timeout=quiet))
            except queue.Empty: break
        return out
    def wait_ready(self, timeout=300):
        s = os.path.join(self.root, ".ready-probe"); t0 = time.time()
        while time.time() - t0 < timeout:
            with open(s, "w") as f: f.write(str(time.time()))
            for b in self.drain(quiet=0.3, limit=0.6):
                if "error" in b: raise RuntimeError(b["error"])
                if any(p == ".ready-probe" for _, p in b.get("changes", [])) or b.get("n", 0) > 60:
                    os.unlink(s); self.drain(quiet=0.5); return time.time() - t0
        raise TimeoutError
    def stop(self):
        self.p.terminate()
        try: self.p.wait(5)
        except subprocess.TimeoutExpired: self.p.kill()
def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def rss_mb(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
def threads(pid): return len(os.listdir(f"/proc/{pid}/task"))
