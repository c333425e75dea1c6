"""Where a worker's syncs run: a pool of child processes, one sync at a time in each.

Why processes: a sync is mostly Python (parsing notes), so syncs in threads of one process
share one core (the GIL); a first sync of a tenant-sized project takes ~4.5 s of CPU, and ten
of them in one process cannot finish in 30 s on any number of cores. Child processes also keep
a sync's memory out of the long-lived worker, and a child the kernel kills (out of memory)
fails that sync only.

The children are started once (spawn: the worker's event loop, threads and connections are
not inherited) and reused, so a no-change sync costs no interpreter start. They ignore SIGTERM
and SIGINT (the worker decides when to stop: it lets them finish the syncs in flight) and die
with the worker (`PR_SET_PDEATHSIG`): a SIGKILLed worker leaves no sync running behind leases
that are about to expire.

With one process (`--concurrency 1`, the default on SQLite) there is nothing to run in
parallel: the sync runs in the worker itself, and no child is started.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from bm_sync.project_sync import FAILED, SyncOutcome, sync_folder

PR_SET_PDEATHSIG = 1


def _child_setup(parent: int) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child ends when its sync does
        pass
    if os.getppid() != parent:  # the worker died before the signal was armed
        os._exit(1)


def _sync_in_child(name: str, root: str, url: str, last_files: int | None) -> SyncOutcome:
    return asyncio.run(sync_folder(name, Path(root), url, last_files))


class SyncPool:
    """`processes` child processes (none for one: see the module doc); `sync` runs one
    project's sync in one of them."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool = self._new_pool() if processes > 1 else None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.processes, mp_context=get_context("spawn"),
                                   initializer=_child_setup, initargs=(os.getpid(),))

    async def sync(self, name: str, root: Path, url: str,
                   last_files: int | None) -> SyncOutcome:
        """The outcome of the sync; a child that died is a failed sync, and a new pool."""
        pool = self._pool
        if pool is None:
            return await sync_folder(name, root, url, last_files)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, _sync_in_child, name, str(root), url, last_files)
        except BrokenProcessPool:
            if self._pool is pool:
                pool.shutdown(wait=False)
                self._pool = self._new_pool()
            return SyncOutcome(name, str(root), FAILED,
                               "the process syncing it died (out of memory?)")

    def peak_rss_mb(self) -> float:
        """The sum of the children's peak resident memory, in MiB (0 where unknown)."""
        total = 0.0
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        return total

    def close(self) -> None:
        """Wait for the syncs in flight, then end the children."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
