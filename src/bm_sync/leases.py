"""Leases: how a process holds the registered projects it syncs or watches, so that a
project is synced by at most one process of a fleet at a time.

A lease is the registry row's `lease_holder` and `lease_expires_at` (`db.registry.claim` takes
it), not a database lock: it works through a transaction-pooling proxy and survives a dropped
connection (docs/deploy.md). Its holder renews it while it works; a killed holder's lease
expires, and the project goes to the next claimant.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bm_sync.projects import Registry

# Appended to a worker's id for the leases of the projects it watches (`bm worker --watch`):
# such a lease lasts a whole slot, so `bm project remove` revokes it instead of waiting.
WATCH_SUFFIX = "/watch"


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leases:
    """The leases one process holds (registered project id -> worker run id), renewed every
    quarter of `lease_s` while the `async with` block runs: a sync may take longer than a
    lease, and a killed process's leases expire within `lease_s`.

    `on_lost(project id)` hears of a lease this process no longer holds: another holder has
    it (revoked by `bm project remove`), or renewals failed until it expired. A sync goes on
    regardless (its lease only guards the start); a watcher stops."""

    def __init__(self, registry: Registry, holder: str, lease_s: float,
                 on_lost: Callable[[int], None] | None = None) -> None:
        self.registry = registry
        self.holder = holder
        self.lease_s = lease_s
        self.on_lost = on_lost
        self.held: dict[int, int] = {}
        self._confirmed: dict[int, float] = {}  # project id -> the expiry last confirmed
        self._renewing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Leases:
        self._renewing = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)

    def hold(self, project: int, run_id: int) -> None:
        """A lease just claimed (good for `lease_s`)."""
        self.held[project] = run_id
        self._confirmed[project] = time.time() + self.lease_s

    def drop(self, project: int) -> None:
        self.held.pop(project, None)
        self._confirmed.pop(project, None)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 4)
            held = dict(self.held)
            until = time.time() + self.lease_s
            try:
                kept = await self.registry.renew(self.holder, held, until)
            except Exception:  # the database is away: the next renewal tries again
                kept = set()
                lost = {project for project in held
                        if self._confirmed.get(project, until) < time.time()}
            else:
                lost = set(held) - kept
            for project in kept:
                if project in self.held:
                    self._confirmed[project] = until
            for project in lost:
                if self.on_lost is not None and project in self.held:
                    self.on_lost(project)
