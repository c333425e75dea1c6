"""Measure whole child processes: wall time, CPU time and the child's own peak RSS.

Peak RSS comes from `os.wait4` on the child's pid: the `ru_maxrss` of that one child (KiB on
Linux), exact per process, unlike `RUSAGE_CHILDREN`, which is a maximum over every child
ever waited for. Stdlib only.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One finished child process."""

    wall_s: float
    cpu_s: float      # user + system time of the child
    rss_mb: float     # the child's peak resident set size, MiB
    exit_code: int


class CommandFailed(RuntimeError):
    """A measured command exited with an unexpected code."""


def run_measured(command: list[str], *, ok_codes: tuple[int, ...] = (0,),
                 cwd: Path | None = None) -> tuple[Sample, str]:
    """Run `command` to the end; return its sample and its standard output.

    Output goes to temporary files (never a pipe: nothing reads a pipe while we wait4).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if code not in ok_codes:
        raise CommandFailed(f"{' '.join(command)} exited with {code}: {stderr.strip()[-2000:]}")
    sample = Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code)
    return sample, stdout


def summarize(samples: list[Sample]) -> dict[str, object]:
    """Medians of time, the maximum of peak RSS, and every sample."""
    return {
        "runs": len(samples),
        "wall_s": statistics.median(sample.wall_s for sample in samples),
        "cpu_s": statistics.median(sample.cpu_s for sample in samples),
        "rss_mb": max(sample.rss_mb for sample in samples),
        "min_wall_s": min(sample.wall_s for sample in samples),
        "samples": [asdict(sample) for sample in samples],
    }


def command_output(command: list[str]) -> str:
    """First line of a command's output, or why it failed (for the environment record)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable: {error}"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else f"exit {result.returncode}"


def environment() -> dict[str, object]:
    """What the numbers depend on: machine, versions, load at the start."""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "git": command_output(["git", "--version"]),
    }


def results_path(prefix: str, directory: Path | None = None) -> Path:
    """bench/results/PREFIX-YYYYmmdd-HHMMSS.json (the folder is created)."""
    folder = directory or Path(__file__).resolve().parent / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; floats get 3 significant decimals."""
    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.3f}" if value < 10 else f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
