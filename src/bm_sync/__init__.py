"""bm-sync: change detection and sync for a local-first markdown knowledge base.

The public API is exactly what `__all__` lists; modules and names starting with `_`, and the
pipeline modules themselves, may change between releases.
"""

import typing

if typing.TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from bm_sync.changes import Change, ChangeKind, Failure, HashKind
    from bm_sync.detector import DetectionRun, Detector, StatusReport
    from bm_sync.errors import (
        BmSyncError,
        DatabaseUnusable,
        DatabaseUrlInvalid,
        HistoryError,
        IndexCorrupt,
        NotAFolder,
        PathOutsideRoot,
        SyncFailed,
        SyncLocked,
    )
    from bm_sync.hashing import HashPolicy
    from bm_sync.history import RunRecord, VersionRecord
    from bm_sync.reports import SyncProgress, SyncReport
    from bm_sync.roots import find_root
    from bm_sync.search import (
        Backlink,
        NoteNotFound,
        NoteView,
        ObservationView,
        RelationView,
        SearchHit,
        SearchQueryError,
        SearchResult,
        SearchUnavailable,
    )
    from bm_sync.sync import SyncEngine
    from bm_sync.versions import VersionPolicy

__version__ = "0.1.0"

# Every public name is loaded on first use: `import bm_sync` costs nothing, so the light
# console entry (`bm_sync.entry`: a watcher's fast path) pays only for what it uses, and the
# sync side's SQLAlchemy is never imported by `bm status`.
_LAZY = {
    "Change": "bm_sync.changes",
    "ChangeKind": "bm_sync.changes",
    "Failure": "bm_sync.changes",
    "HashKind": "bm_sync.changes",
    "DetectionRun": "bm_sync.detector",
    "Detector": "bm_sync.detector",
    "StatusReport": "bm_sync.detector",
    "BmSyncError": "bm_sync.errors",
    "DatabaseUnusable": "bm_sync.errors",
    "DatabaseUrlInvalid": "bm_sync.errors",
    "HistoryError": "bm_sync.errors",
    "IndexCorrupt": "bm_sync.errors",
    "NotAFolder": "bm_sync.errors",
    "PathOutsideRoot": "bm_sync.errors",
    "SyncFailed": "bm_sync.errors",
    "SyncLocked": "bm_sync.errors",
    "HashPolicy": "bm_sync.hashing",
    "find_root": "bm_sync.roots",
    "SyncEngine": "bm_sync.sync",
    "SyncReport": "bm_sync.reports",
    "SyncProgress": "bm_sync.reports",
    "VersionPolicy": "bm_sync.versions",
    "RunRecord": "bm_sync.history",
    "VersionRecord": "bm_sync.history",
    "Backlink": "bm_sync.search",
    "NoteNotFound": "bm_sync.search",
    "NoteView": "bm_sync.search",
    "ObservationView": "bm_sync.search",
    "RelationView": "bm_sync.search",
    "SearchHit": "bm_sync.search",
    "SearchQueryError": "bm_sync.search",
    "SearchResult": "bm_sync.search",
    "SearchUnavailable": "bm_sync.search",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bm_sync' has no attribute {name!r}")


__all__ = [
    "Backlink",
    "BmSyncError",
    "Change",
    "ChangeKind",
    "DatabaseUnusable",
    "DatabaseUrlInvalid",
    "DetectionRun",
    "Detector",
    "Failure",
    "HashKind",
    "HashPolicy",
    "HistoryError",
    "IndexCorrupt",
    "NotAFolder",
    "NoteNotFound",
    "NoteView",
    "ObservationView",
    "PathOutsideRoot",
    "RelationView",
    "RunRecord",
    "SearchHit",
    "SearchQueryError",
    "SearchResult",
    "SearchUnavailable",
    "StatusReport",
    "SyncEngine",
    "SyncFailed",
    "SyncLocked",
    "SyncProgress",
    "SyncReport",
    "VersionPolicy",
    "VersionRecord",
    "__version__",
    "find_root",
]
