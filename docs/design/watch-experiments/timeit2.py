import subprocess, sys, time, statistics, os
R = "/tmp/wr/c100k"; PY = "/work/main/.venv/bin/python"
cmds = {
 "git status --porcelain": ["git", "-C", R, "status", "--porcelain"],
 "python -S -c pass": [PY, "-S", "-c", "pass"],
 "python -c pass": [PY, "-c", "pass"],
 "python -I -S client.py (socket+json, cookie)": [PY, "-I", "-S", "/tmp/wr/fsmon_client.py", R],
 "python -c 'import bm_sync'": [PY, "-c", "import bm_sync"],
 "bm status --help": ["/work/main/.venv/bin/bm", "status", "--help"],
}
if os.environ.get("FULL"): cmds["bm status --json (full scan, no watcher)"] = ["/work/main/.venv/bin/bm", "status", "--json", R]
res = {k: [] for k in cmds}; cpu = {}
for i in range(int(os.environ.get("N", 11))):
    for k, c in (list(cmds.items()) if i % 2 else list(cmds.items())[::-1]):
        t = time.perf_counter(); pr = subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, st, ru = os.wait4(pr.pid, 0); pr.returncode = 0; res[k].append(time.perf_counter() - t); cpu.setdefault(k, []).append(ru.ru_utime + ru.ru_stime)
        if st: print("status", st, k)
g = statistics.median(res["git status --porcelain"])
for k, v in res.items():
    gc = statistics.median(cpu["git status --porcelain"])
    print(f"| {k} | {statistics.median(v)*1000:.0f} | {min(v)*1000:.0f} | {statistics.median(v)/g:.2f}x | {statistics.median(cpu[k])*1000:.0f} | {statistics.median(cpu[k])/gc:.2f}x |")
