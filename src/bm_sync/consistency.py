"""Whether the database and the index still describe the same state, and the circuit breaker.

`plan_sync` holds the rules that make the index and the database never disagree silently: any
mismatch makes the sync a rebuild (why a sync that was killed leaves one: `bm_sync.runs`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bm_sync.changes import Change
from bm_sync.db import HEAD_REVISION
from bm_sync.db.state import StoredState
from bm_sync.identity import Identity
from bm_sync.index_format import IndexSnapshot

# The circuit breaker: a path that failed this many times in a row with the same content is
# skipped until its content changes or this many seconds have passed since its last failure.
SKIP_AFTER_FAILURES = 3
SKIP_SECONDS = 3600
SKIPPED = "skipped: failed 3 times in a row; retried when it changes or after an hour"


@dataclass
class Breaker:
    """The paths the circuit breaker holds back this sync (path -> the content id, or stat
    signature, they failed with) and every path with a recorded failure."""

    tripped: dict[str, str | None] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)

    def holds_back(self, change: Change) -> bool:
        """A tripped path whose content is the same as when it failed."""
        return change.path in self.tripped and self.tripped[change.path] == change.content_id

    def unopened(self, root: Path) -> dict[str, str]:
        """Tripped paths that could not even be read, and whose stat has not moved since:
        the detector leaves them unopened (path -> the reason it reports)."""
        return {path: SKIPPED for path, content_id in self.tripped.items()
                if content_id is not None and content_id.startswith("stat:")
                and stat_signature(root, path) == content_id}


@dataclass
class SyncPlan:
    """What the consistency check decided for this sync: the database's current token, the
    reason to rebuild (None: an incremental sync) and the breaker."""

    token: str | None = None
    rebuild_reason: str | None = None
    breaker: Breaker = field(default_factory=Breaker)
    # The search index: why it needs a repair that reads no file (tables back, SQLite's FTS
    # index refilled from the stored documents), and whether to forget it (search turned off).
    search_repair: str | None = None
    search_clear: bool = False


def stat_signature(root: Path, path: str) -> str | None:
    """The "content id" of a file that cannot be read: its stat identity (size, mtime, ctime,
    mode, inode). Any change of it re-arms the breaker: `chmod 644` on a file that failed
    for its permissions changes ctime and mode, and the next sync tries it again."""
    try:
        stat_result = os.stat(root / path, follow_symlinks=False)
    except OSError:
        return None
    return (f"stat:{stat_result.st_size}:{stat_result.st_mtime_ns}:{stat_result.st_ctime_ns}:"
            f"{stat_result.st_mode:o}:{stat_result.st_ino}")


def plan_sync(stored: StoredState, identity: Identity, snapshot: IndexSnapshot | None, *,
              search: bool = True, search_documents: int | None = None,
              search_damaged: str | None = None) -> SyncPlan:
    """The rules that make the index and the database never disagree silently.

    `search_documents` is how many search documents the project has (None: not read, no
    usable project yet), `search_damaged` why the search index needs a repair. Search on, a
    count that differs from the entities' rebuilds (an emptied index, search turned back on);
    search off, documents left are forgotten. No flag is stored: the count says it all.
    """
    plan = _plan(stored, identity, snapshot)
    if search_documents is None:
        return plan
    plan.search_repair = search_damaged
    entity_count = identity.project.entity_count if identity.project else 0
    if not search:
        plan.search_clear = search_documents > 0
    elif plan.rebuild_reason is None and search_documents != entity_count:
        plan.rebuild_reason = (f"the search index holds {search_documents} documents but the "
                               f"database {entity_count} entities")
    return plan


def _plan(stored: StoredState, identity: Identity, snapshot: IndexSnapshot | None) -> SyncPlan:
    now = time.time()
    project = identity.project
    token = project.token if project else None
    entity_count = project.entity_count if project else 0
    failures = project.failures if project else {}
    plan = SyncPlan(token=token, breaker=Breaker(
        tripped={path: failure.content_id for path, failure in failures.items()
                 if failure.count >= SKIP_AFTER_FAILURES
                 and now - failure.last_failed_at < SKIP_SECONDS},
        failing=set(failures)))
    if snapshot is None:
        plan.rebuild_reason = "the index is unreadable"
        return plan
    index_token = snapshot.meta.get("db_token")
    if stored.unusable:
        plan.rebuild_reason = stored.unusable
    elif identity.copy_of is not None:
        plan.rebuild_reason = (f"this folder is a copy of {identity.copy_of}: it gets a "
                               "project of its own")
    elif token is None:
        # No completed sync against this database: it is new or was deleted, or the last sync
        # was killed after a commit.
        if stored.revision is None and snapshot.entry_count:
            plan.rebuild_reason = "the database is missing"
        elif snapshot.entry_count or entity_count:
            plan.rebuild_reason = "the last sync of this folder did not complete"
    elif index_token is None:
        plan.rebuild_reason = "the index is missing or was not written by a sync"
    elif index_token != token:
        plan.rebuild_reason = "the database does not belong to this index"
    elif stored.revision != HEAD_REVISION:
        plan.rebuild_reason = f"the database was migrated from revision {stored.revision}"
    elif entity_count != snapshot.entry_count:
        plan.rebuild_reason = (f"the database holds {entity_count} entities but the "
                               f"index {snapshot.entry_count} files")
    return plan
