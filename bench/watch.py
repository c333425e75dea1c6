"""The targets of issue 9 (`bm watch`), measured on the real CLI. Run from the repository root:

    .venv/bin/python bench/watch.py                                  # smoke: 10k files, short
    .venv/bin/python bench/watch.py --files 100000 --idle-seconds 600 --soak-minutes 10 \\
        --burst 10000                                                # the issue's targets
    .venv/bin/python bench/watch.py --only status --only latency --files 100000

Sections (`--only`, repeatable), each against one `bm watch --json` child on a committed git
corpus of --files notes (bench/make_corpus.py, kept under --workdir and put back to its commit
before use):

- status: no-change `bm status --json` with the watcher running, side by side with
  `git status --porcelain` on the same tree and with `bm status` forced to scan
  (BM_NO_FSMONITOR=1); whole child processes, medians of --runs (target: <= 1.0x git).
- latency: --edits saves of random notes, one at a time; each is timed from the write to the
  moment the entity table holds the note's new checksum (read with sqlite3 every 2 ms), at
  the default debounce (target: p95 <= 1 s).
- idle: the watcher's CPU (/proc/PID/stat) and RSS over --idle-seconds with no changes
  (targets: < 1% of one core, flat, <= 150 MB).
- burst: --burst notes replaced at once (unlink + create, as a `git checkout` does); the time
  until the database holds every new checksum, the watcher's peak RSS meanwhile, then the
  database compared with a fresh sync (target: exact).
- soak: a writer doing random creates, edits, same-size edits with the mtime put back, moves,
  folder renames and deletes for --soak-minutes while the watcher runs; the watcher is
  SIGKILLed and restarted twice; then it must settle, stop cleanly on SIGTERM, and its
  database must equal a fresh sync of a copy of the tree (target: zero differences).

The watcher is driven exactly per the issue's contract: the reconcile, then one line
`{"event": "ready", "files": N}`, then one JSON summary per applied batch. "A fresh sync" is
`bm sync --no-versions` of a copy of the tree (without .git and .basic-memory) into a new
database; the two entity tables are compared on path, checksum, title, permalink, type and
the number of observations and relations of each note. Every sample goes to
bench/results/watch-*.json, the tables to stdout. Stdlib only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import environment, markdown_table, ratio, results_path, summarize  # noqa: E402
from run import corpus, side_by_side  # noqa: E402

SECTIONS = ("status", "latency", "idle", "burst", "soak")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 3600.0
SETTLE_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 120.0
STATUS_TIMEOUT_S = 300.0
DATABASE = Path(".basic-memory/memory.db")
NO_FSMONITOR = ["env", "BM_NO_FSMONITOR=1"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def blob_id(data: bytes) -> str:
    """git's blob id: the checksum bm records for a file of up to 64 MiB."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Watcher:
    """One `bm watch --json` child: its ready event, its batch summaries, its CPU and RSS."""

    def __init__(self, bm: list[str], root: Path, log_path: Path) -> None:
        with open(log_path, "a") as stderr:
            self.process = subprocess.Popen([*bm, "watch", "--json", str(root)],
                                            stdout=subprocess.PIPE, stderr=stderr, text=True,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.files: int | None = None
        self.ready = threading.Event()
        self.summaries: list[dict[str, Any]] = []
        self.last_line_at = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.last_line_at = time.monotonic()
            try:
                message = json.loads(line)
            except ValueError:
                log(f"watcher printed a line that is not JSON: {line.strip()[:200]}")
                continue
            if message.get("event") == "ready":
                self.files = int(message["files"])
                self.ready.set()
            else:
                self.summaries.append(message)

    def wait_ready(self) -> int:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bm watch never became ready (exit {self.process.poll()})")
        assert self.files is not None
        return self.files

    def cpu_s(self) -> float:
        """User + system CPU of the watcher (all its threads) so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> int | str:
        """SIGTERM, as a user's Ctrl-C or a service manager would; the exit code (or why
        there is none: the watcher is then killed)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"still running {STOP_TIMEOUT_S:.0f} s after SIGTERM"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


class Checksums:
    """The entity table, read as another process would (sqlite3, read-only)."""

    def __init__(self, root: Path) -> None:
        self.connection = sqlite3.connect(f"file:{root / DATABASE}?mode=ro", uri=True,
                                          timeout=30)

    def of(self, path: str) -> str | None:
        row = self.connection.execute("SELECT checksum FROM entity WHERE file_path = ?",
                                      (path,)).fetchone()
        return None if row is None else str(row[0])

    def all(self) -> dict[str, str]:
        return dict(self.connection.execute("SELECT file_path, checksum FROM entity"))

    def close(self) -> None:
        self.connection.close()


def notes_of(root: Path) -> list[str]:
    """Every note below `root` (relative paths), in a stable order."""
    found = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        relative = os.path.relpath(folder, root)
        found += [os.path.normpath(os.path.join(relative, name)) for name in sorted(files)
                  if name.endswith(".md") and not name.startswith(".")]
    return found


def entity_rows(database: Path) -> dict[str, tuple[object, ...]]:
    """path -> (checksum, title, permalink, type, observations, relations, the permalink the
    note wants: its own unless it did not get it)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT e.file_path, e.checksum, e.title, e.permalink, e.entity_type,"
            " (SELECT count(*) FROM observation o WHERE o.entity_id = e.id),"
            " (SELECT count(*) FROM relation r WHERE r.from_id = e.id),"
            " coalesce(e.wanted_permalink, e.permalink) FROM entity e")
        return {row[0]: tuple(row[1:]) for row in rows}


def same_permalink(fresh: tuple[object, ...], watched: tuple[object, ...],
                   contested: set[object]) -> bool:
    """Equal permalinks, or two permalinks of one contested group: when several notes want one
    permalink, the note that got it first keeps it (links stay stable), where a fresh sync
    serves them in path order; then the two databases may hand the group's `x`, `x-1`, ...
    out differently. That is the one way a history may differ from a fresh sync."""
    if fresh[2] == watched[2]:
        return True
    wanted = fresh[6]
    if wanted != watched[6] or wanted not in contested:
        return False
    return all(isinstance(permalink, str) and isinstance(wanted, str) and (
        permalink == wanted or (permalink.startswith(f"{wanted}-")
                                and permalink[len(wanted) + 1:].isdigit()))
        for permalink in (fresh[2], watched[2]))


def compare_with_fresh_sync(bm: list[str], root: Path, workdir: Path) -> dict[str, object]:
    """The watcher's database against a fresh `bm sync` of a copy of the tree."""
    copy = Path(tempfile.mkdtemp(prefix="fresh-", dir=workdir))
    try:
        shutil.copytree(root, copy, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", ".basic-memory"))
        subprocess.run([*bm, "sync", "--quiet", "--no-versions", str(copy)], check=True)
        fresh = entity_rows(copy / DATABASE)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    watched = entity_rows(root / DATABASE)
    missing = sorted(set(fresh) - set(watched))
    extra = sorted(set(watched) - set(fresh))
    columns = ("checksum", "title", "permalink", "type", "observations", "relations")
    wanted_by = Counter(row[6] for row in fresh.values())
    contested = {permalink for permalink, notes in wanted_by.items() if notes > 1}
    differing = {column: sorted(path for path in set(fresh) & set(watched)
                                if (not same_permalink(fresh[path], watched[path], contested)
                                    if column == "permalink"
                                    else fresh[path][number] != watched[path][number]))
                 for number, column in enumerate(columns)}
    return {"entities": len(fresh), "missing": missing[:20], "missing_count": len(missing),
            "extra": extra[:20], "extra_count": len(extra),
            "differing": {column: paths[:20] for column, paths in differing.items() if paths},
            "differing_count": len({path for paths in differing.values() for path in paths}),
            "exact": not missing and not extra and not any(differing.values())}


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "**missed**")


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.bm: list[str] = options.bm
        self.workdir: Path = options.workdir
        self.rows: list[list[object]] = []
        self.results: dict[str, object] = {"environment": environment(),
                                           "options": {k: str(v) for k, v in
                                                       vars(options).items()}}
        self.log_path = results_path("watch-stderr").with_suffix(".log")

    def tree(self) -> Path:
        root, _notes = corpus(self.workdir, str(self.options.files))
        if self.options.keep_state and (root / DATABASE).exists():
            log(f"{root}: state kept (--keep-state): the watcher's reconcile catches up")
            return root
        shutil.rmtree(root / ".basic-memory", ignore_errors=True)
        log(f"{root}: first sync (bm sync --no-versions) ...")
        subprocess.run([*self.bm, "sync", "--quiet", "--no-versions", str(root)], check=True)
        return root

    def watcher(self, root: Path) -> Watcher:
        watcher = Watcher(self.bm, root, self.log_path)
        files = watcher.wait_ready()
        log(f"watching {files} files (pid {watcher.process.pid})")
        return watcher

    def row(self, section: str, measure: str, value: object, target: str,
            met: bool | None) -> None:
        self.rows.append([section, measure, value, target, verdict(met)])
        log(f"{section}: {measure}: {value} (target {target or '-'}: {verdict(met)})")

    # -- sections ------------------------------------------------------------------------

    def status(self, root: Path, watcher: Watcher) -> None:
        runs = self.options.runs
        log(f"status: {runs} runs of each, side by side ...")
        time.sleep(3)  # out of bm's racy window (the reconcile's index) and git's
        commands = {"bm status (watcher)": [*self.bm, "status", "--json", str(root)],
                    "git status --porcelain": ["git", "-C", str(root), "status",
                                               "--porcelain"],
                    "bm status (full scan)": [*NO_FSMONITOR, *self.bm, "status", "--json",
                                              str(root)]}
        samples, outputs = side_by_side(commands, runs)
        for output in outputs["bm status (watcher)"] + outputs["bm status (full scan)"]:
            report = json.loads(output)
            if any(report.get(kind) for kind in ("added", "modified", "deleted", "moved")):
                log(f"WARNING: bm status found changes on a clean tree: {output[:300]}")
        summary = {name: summarize(values) for name, values in samples.items()}
        self.results["status"] = summary
        git = summary["git status --porcelain"]
        for name in commands:
            wall_s, cpu_s = float(summary[name]["wall_s"]), float(summary[name]["cpu_s"])
            wall = ratio(wall_s, float(git["wall_s"])) or 0.0
            cpu = ratio(cpu_s, float(git["cpu_s"])) or 0.0
            target = "<= 1.0x git (wall)" if "watcher" in name else ""
            self.row("status", f"{name}: wall {1000 * wall_s:.0f} ms, CPU {1000 * cpu_s:.0f} ms, "
                     f"peak RSS {float(summary[name]['rss_mb']):.0f} MB",
                     f"{wall:.2f}x / {cpu:.2f}x git (wall / CPU)", target,
                     wall <= 1.0 if target else None)

    def latency(self, root: Path, watcher: Watcher) -> None:
        edits = self.options.edits
        chance = random.Random(7)
        notes = chance.sample(notes_of(root), edits)
        database = Checksums(root)
        latencies: list[float] = []
        lost = 0
        cpu_before = watcher.cpu_s()
        log(f"latency: {edits} saves, one at a time ...")
        for number, relative in enumerate(notes):
            path = root / relative
            data = path.read_bytes() + f"\nedit {number} at {time.time_ns()}\n".encode()
            expected = blob_id(data)
            started = time.perf_counter()
            path.write_bytes(data)
            deadline = started + 30
            while database.of(relative) != expected:
                if time.perf_counter() > deadline:
                    lost += 1
                    break
                time.sleep(0.002)
            else:
                latencies.append(time.perf_counter() - started)
            time.sleep(chance.uniform(0.1, 0.3))
        database.close()
        cpu_per_save = (watcher.cpu_s() - cpu_before) / edits
        self.results["latency"] = {"seconds": latencies, "lost": lost,
                                   "watcher_cpu_per_save_s": cpu_per_save}
        if latencies:
            p95 = percentile(latencies, 0.95)
            self.row("latency", f"save to database, {edits} saves: median "
                     f"{1000 * statistics.median(latencies):.0f} ms, max "
                     f"{1000 * max(latencies):.0f} ms; watcher CPU "
                     f"{1000 * cpu_per_save:.0f} ms a save", f"p95 {1000 * p95:.0f} ms",
                     "p95 <= 1000 ms", p95 <= 1.0 and not lost)
        self.row("latency", "saves never seen in the database (30 s)", lost, "0", not lost)

    def idle(self, root: Path, watcher: Watcher) -> None:
        seconds = self.options.idle_seconds
        log(f"idle: {seconds:.0f} s without changes ...")
        time.sleep(min(10.0, seconds / 10))  # let the last batch's work end
        cpu_before, started = watcher.cpu_s(), time.monotonic()
        rss = [watcher.rss_mb()]
        while time.monotonic() - started < seconds:
            time.sleep(min(5.0, seconds / 20))
            rss.append(watcher.rss_mb())
        cpu_share = (watcher.cpu_s() - cpu_before) / (time.monotonic() - started)
        self.results["idle"] = {"cpu_share": cpu_share, "rss_mb": rss, "seconds": seconds}
        self.row("idle", f"CPU over {seconds:.0f} s at {watcher.files} files",
                 f"{100 * cpu_share:.2f}% of a core", "< 1%", cpu_share < 0.01)
        growth = rss[-1] - rss[0]
        self.row("idle", f"RSS first/last/max {rss[0]:.0f}/{rss[-1]:.0f}/{max(rss):.0f} MB",
                 f"{growth:+.1f} MB", "flat, <= 150 MB", growth < 5 and max(rss) <= 150)

    def burst(self, root: Path, watcher: Watcher) -> None:
        count = self.options.burst
        chance = random.Random(11)
        notes = chance.sample(notes_of(root), count)
        expected = {}
        log(f"burst: {count} notes replaced (unlink + create) ...")
        peak = [watcher.rss_mb()]
        done = threading.Event()

        def sample_rss() -> None:
            while not done.wait(0.5):
                peak.append(watcher.rss_mb())

        threading.Thread(target=sample_rss, daemon=True).start()
        started = time.perf_counter()
        for number, relative in enumerate(notes):
            path = root / relative
            data = path.read_bytes() + f"\nburst {number}\n".encode()
            path.unlink()
            path.write_bytes(data)
            expected[relative] = blob_id(data)
        written = time.perf_counter() - started
        database = Checksums(root)
        while True:
            current = database.all()
            pending = sum(current.get(path) != checksum for path, checksum in expected.items())
            if not pending or time.perf_counter() - started > SETTLE_TIMEOUT_S:
                break
            time.sleep(0.5)
        converged = time.perf_counter() - started
        database.close()
        done.set()
        comparison = self.settle_and_compare(root, watcher)
        self.results["burst"] = {"written_s": written, "converged_s": converged,
                                 "pending": pending, "rss_mb": peak, "comparison": comparison}
        self.row("burst", f"{count} notes replaced in {written:.1f} s: all in the database "
                 f"after {converged:.1f} s, watcher peak RSS {max(peak):.0f} MB",
                 f"{pending} pending, {comparison['differing_count']} differing, "
                 f"{comparison['missing_count']} missing, {comparison['extra_count']} extra",
                 "exact, RSS <= 150 MB", not pending and bool(comparison["exact"])
                 and max(peak) <= 150)

    def soak(self, root: Path, watcher: Watcher) -> Watcher:
        seconds = 60 * self.options.soak_minutes
        writer = SoakWriter(root, random.Random(13))
        kills = [seconds / 3, 2 * seconds / 3]
        log(f"soak: {seconds:.0f} s of random changes, SIGKILL + restart at "
            f"{', '.join(f'{kill:.0f}' for kill in kills)} s ...")
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            if kills and elapsed >= kills[0]:
                kills.pop(0)
                watcher.kill()
                log(f"soak: watcher killed at {elapsed:.0f} s, restarting")
                watcher = Watcher(self.bm, root, self.log_path)  # ready later, in the thread
            writer.step()
            time.sleep(writer.chance.uniform(0, 0.05))
        log(f"soak: writer done ({writer.counts}); waiting for the watcher to settle ...")
        watcher.wait_ready()
        comparison = self.settle_and_compare(root, watcher, stop=True)
        stopped = comparison.pop("exit_code")
        self.results["soak"] = {"operations": writer.counts, "comparison": comparison}
        self.row("soak", f"{seconds / 60:g} min, {sum(writer.counts.values())} operations "
                 f"({', '.join(f'{n} {kind}' for kind, n in writer.counts.items())}), 2 SIGKILL "
                 f"restarts; {'settled' if comparison['settled'] else 'NOT settled'} "
                 f"{comparison['settled_s']:.0f} s after the writer stopped",
                 f"{comparison['differing_count']} differing, {comparison['missing_count']} "
                 f"missing, {comparison['extra_count']} extra", "database == fresh sync",
                 bool(comparison["exact"]))
        self.row("soak", "exit code on SIGTERM", stopped, "0", stopped == 0)
        return watcher

    def settle_and_compare(self, root: Path, watcher: Watcher, *,
                           stop: bool = False) -> dict[str, object]:
        """Wait until a full-scan `bm status` finds nothing and the watcher printed nothing
        for 3 s; `stop` it then (SIGTERM, its exit code in the result). Then compare with a
        fresh sync."""
        started = time.monotonic()
        clean = False
        while time.monotonic() < started + SETTLE_TIMEOUT_S:
            try:
                scan = subprocess.run([*NO_FSMONITOR, *self.bm, "status", "--json",
                                       str(root)], capture_output=True, text=True,
                                      timeout=STATUS_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log(f"a full-scan bm status took more than {STATUS_TIMEOUT_S:.0f} s")
                continue
            report = json.loads(scan.stdout or '{"added": ["(no report)"]}')
            clean = not any(report.get(kind) for kind in ("added", "modified", "deleted",
                                                          "moved"))
            if clean and time.monotonic() - watcher.last_line_at > 3:
                break
            time.sleep(1)
        comparison: dict[str, object] = {"settled_s": time.monotonic() - started,
                                         "settled": clean}
        if stop:
            comparison["exit_code"] = watcher.stop()
        comparison.update(compare_with_fresh_sync(self.bm, root, self.workdir))
        return comparison

    def run(self) -> None:
        sections = self.options.only or list(SECTIONS)
        root = self.tree()
        watcher = self.watcher(root)
        try:
            for section in SECTIONS:
                if section not in sections:
                    continue
                if section == "soak":
                    watcher = self.soak(root, watcher)
                else:
                    getattr(self, section)(root, watcher)
        finally:
            if watcher.process.poll() is None:
                watcher.stop()
            output = results_path("watch")
            self.results["rows"] = self.rows
            output.write_text(json.dumps(self.results, indent=1, default=str))
            print(markdown_table(["section", "what", "measured", "target", "verdict"],
                                 self.rows))
            print(f"\nload {os.getloadavg()[0]:.1f}; samples in {output}; the watcher's "
                  f"stderr in {self.log_path}")


class SoakWriter:
    """Random changes to the tree, as a person and their tools make them."""

    WEIGHTS = {"create": 20, "edit": 30, "same-size edit": 15, "move": 15,
               "folder rename": 2, "delete": 15}

    def __init__(self, root: Path, chance: random.Random) -> None:
        self.root = root
        self.chance = chance
        self.notes = notes_of(root)
        self.counts = dict.fromkeys(self.WEIGHTS, 0)
        self.created = 0

    def step(self) -> None:
        kind = self.chance.choices(list(self.WEIGHTS), list(self.WEIGHTS.values()))[0]
        try:
            getattr(self, kind.replace(" ", "_").replace("-", "_"))()
        except OSError:  # a path just moved or deleted by an earlier step, a name taken
            return
        self.counts[kind] += 1

    def pick(self) -> tuple[int, Path]:
        number = self.chance.randrange(len(self.notes))
        return number, self.root / self.notes[number]

    def create(self) -> None:
        _number, near = self.pick()
        self.created += 1
        relative = os.path.relpath(near.parent / f"soak note {self.created}.md", self.root)
        (self.root / relative).write_text(f"# Soak {self.created}\n\n- [fact] made in the soak\n")
        self.notes.append(relative)

    def edit(self) -> None:
        _number, path = self.pick()
        with open(path, "a") as handle:
            handle.write(f"- [fact] edited {self.chance.random()}\n")

    def same_size_edit(self) -> None:
        """One letter changed, the size kept and the mtime put back: only ctime and the
        content tell (bm's stat check includes ctime)."""
        _number, path = self.pick()
        before = path.stat()
        data = bytearray(path.read_bytes())
        letters = [index for index, byte in enumerate(data[:4096]) if byte in b"aeiou"]
        if not letters:
            return
        position = self.chance.choice(letters)
        data[position] = b"aeiou"[(b"aeiou".index(data[position]) + 1) % 5]
        path.write_bytes(bytes(data))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    def move(self) -> None:
        number, path = self.pick()
        _other, target_near = self.pick()
        target = target_near.parent / f"moved {self.chance.randrange(10**9)} {path.name}"
        os.rename(path, target)
        self.notes[number] = os.path.relpath(target, self.root)

    def folder_rename(self) -> None:
        _number, path = self.pick()
        folder = path.parent
        if folder == self.root:
            return
        renamed = folder.with_name(f"{folder.name} r{self.chance.randrange(1000)}")
        os.rename(folder, renamed)
        old = os.path.relpath(folder, self.root) + os.sep
        new = os.path.relpath(renamed, self.root) + os.sep
        self.notes = [new + note[len(old):] if note.startswith(old) else note
                      for note in self.notes]

    def delete(self) -> None:
        number, path = self.pick()
        path.unlink()
        self.notes[number] = self.notes[-1]
        self.notes.pop()


def default_bm() -> list[str]:
    script = Path(sys.executable).parent / "bm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bm_sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--only", action="append", choices=SECTIONS)
    parser.add_argument("--files", type=int, default=10_000, help="notes in the corpus")
    parser.add_argument("--runs", type=int, default=9, help="status runs of each command")
    parser.add_argument("--edits", type=int, default=100, help="saves timed for latency")
    parser.add_argument("--idle-seconds", type=float, default=60, help="600 for the target")
    parser.add_argument("--burst", type=int, default=2_000, help="10000 for the target")
    parser.add_argument("--soak-minutes", type=float, default=1, help="10 for the target")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bm-bench-watch"))
    parser.add_argument("--keep-state", action="store_true",
                        help="reuse the corpus's database and index from an earlier run "
                             "(skips the first sync, ~10 min at 100k on a busy machine)")
    parser.add_argument("--bm", type=str.split, default=default_bm(),
                        help="the bm command (default: the console script beside python)")
    options = parser.parse_args()
    options.workdir.mkdir(parents=True, exist_ok=True)
    Bench(options).run()


if __name__ == "__main__":
    main()
