"""bm-sync: change detection and sync for a local-first markdown knowledge base.

The public API is exactly what `__all__` lists; modules and names starting with `_`, and the
pipeline modules themselves, may change between releases.
"""

from bm_sync.changes import Change, ChangeKind, Failure, HashKind
from bm_sync.detector import DetectionRun, Detector, StatusReport
from bm_sync.errors import BmSyncError, DatabaseMismatch, IndexCorrupt, NotAFolder, SyncLocked
from bm_sync.hashing import HashPolicy

__version__ = "0.1.0"

__all__ = [
    "BmSyncError",
    "Change",
    "ChangeKind",
    "DatabaseMismatch",
    "DetectionRun",
    "Detector",
    "Failure",
    "HashKind",
    "HashPolicy",
    "IndexCorrupt",
    "NotAFolder",
    "StatusReport",
    "SyncLocked",
    "__version__",
]
