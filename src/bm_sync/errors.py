"""The exceptions bm-sync raises.

Per-file problems (unreadable file, broken YAML, a file that vanished) are *data*: they travel as
`Failure` records in a report and never unwind a run. Exceptions are for the run as a whole: the
caller catches `BmSyncError` or one of its subclasses, at whatever level it cares about.
"""

from __future__ import annotations


class BmSyncError(Exception):
    """Base class of every error bm-sync raises on purpose."""


class IndexCorrupt(BmSyncError):
    """The index file is unreadable: bad signature, checksum or truncated entries.

    The detector never lets this escape a scan: it reports it in one line and rebuilds the index by
    a full scan. It is raised by the low-level reader so that the caller can decide.
    """


class SyncLocked(BmSyncError):
    """Another process holds the lock of this folder (a concurrent sync or record)."""


class DatabaseMismatch(BmSyncError):
    """The database does not belong to this index (replaced, emptied, or another project's)."""


class NotAFolder(BmSyncError):
    """The root given to the detector is not an existing directory."""


class DatabaseUnusable(BmSyncError):
    """The database cannot be opened or migrated (not a database, no driver, unreachable).

    A malformed URL is the user's typo, so it carries `exit_code` 2 (a usage error) for the CLI.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
