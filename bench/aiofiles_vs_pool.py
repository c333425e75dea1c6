"""Why the detector hashes in a thread pool and not with aiofiles: the two, side by side.

The developers' guide names aiofiles among the packages to consider for async file reads. The
detector reads every changed file once, whole or streamed, and hashes it. This script reads and
hashes the same files both ways, alternating, in one process, with warm page cache:

- `pool`: what bm-sync does: one `ThreadPoolExecutor` task per file (open, read, sha1, close in
  that one task: one thread hop per file).
- `aiofiles`: `aiofiles.open` + `await f.read()` per file under a semaphore of the same width,
  sha1 on the event loop (every open, read and close is its own hop to aiofiles' executor).

It prints the median wall and CPU seconds of each and their ratio. aiofiles is a bench-only
dependency: `pip install aiofiles` into the venv that runs this.

    python bench/aiofiles_vs_pool.py --files 5000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiofiles


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """`count` files of about `size` bytes of distinct text."""
    paths = []
    for number in range(count):
        path = folder / f"note-{number:06d}.md"
        line = f"- [fact] note {number} says something worth keeping #tag{number % 50}\n"
        path.write_text(line * max(1, size // len(line)))
        paths.append(path)
    return paths


def _hash_one(path: Path) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()


def hash_with_pool(paths: list[Path], workers: int) -> list[bytes]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_hash_one, paths))


async def _hash_async(paths: list[Path], workers: int) -> list[bytes]:
    gate = asyncio.Semaphore(workers)

    async def one(path: Path) -> bytes:
        async with gate, aiofiles.open(path, "rb") as handle:
            data = await handle.read()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()

    return await asyncio.gather(*(one(path) for path in paths))


def hash_with_aiofiles(paths: list[Path], workers: int) -> list[bytes]:
    return asyncio.run(_hash_async(paths, workers))


def timed(run: Callable[[], list[bytes]]) -> tuple[float, float, list[bytes]]:
    wall, cpu = time.perf_counter(), time.process_time()
    ids = run()
    return time.perf_counter() - wall, time.process_time() - cpu, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size", type=int, default=3000, help="bytes per file (a typical note)")
    parser.add_argument("--workers", type=int, default=min(8, (os.cpu_count() or 1) * 2))
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bm-aiofiles-") as folder:
        paths = make_files(Path(folder), arguments.files, arguments.size)
        ways = {"pool": lambda: hash_with_pool(paths, arguments.workers),
                "aiofiles": lambda: hash_with_aiofiles(paths, arguments.workers)}
        reference = ways["pool"]()  # warms the page cache
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
        for _ in range(arguments.runs):
            for name, way in ways.items():
                wall, cpu, ids = timed(way)
                assert ids == reference, f"{name} hashed differently"
                samples[name].append((wall, cpu))
    medians = {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
               for name, runs in samples.items()}
    print(f"{arguments.files} files of ~{arguments.size} B, {arguments.workers} workers, "
          f"median of {arguments.runs} alternating runs")
    print("| way | wall s | CPU s | wall vs pool | CPU vs pool |")
    print("|---|---:|---:|---:|---:|")
    pool_wall, pool_cpu = medians["pool"]
    for name, (wall, cpu) in medians.items():
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {wall / pool_wall:.2f}x | "
              f"{cpu / pool_cpu:.2f}x |")


if __name__ == "__main__":
    main()
