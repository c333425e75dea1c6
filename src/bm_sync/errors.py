"""The exceptions bm-sync raises.

Per-file problems (unreadable file, broken YAML, a file that vanished) are *data*: they travel as
`Failure` records in a report and never unwind a run. Exceptions are for the run as a whole: the
caller catches `BmSyncError` or one of its subclasses, at whatever level it cares about. None of
them carries a process exit code: that mapping belongs to the CLI.
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


class NotAFolder(BmSyncError):
    """The root given to the detector is not an existing directory."""


class DatabaseUnusable(BmSyncError):
    """The database cannot be opened or migrated (not a database, no driver, unreachable)."""


class DatabaseUrlInvalid(DatabaseUnusable):
    """The database URL itself is wrong: malformed, an unknown dialect, or a synchronous driver
    (`sqlite://` where `sqlite+aiosqlite://` is needed). The user's input, not the database."""


class PathOutsideRoot(BmSyncError):
    """A file argument that is not inside the notes folder."""


class HistoryError(BmSyncError):
    """Unknown file or revision in the history, or a version whose content was not stored."""


def describe_os_error(error: OSError) -> str:
    """A one-line, lowercase reason for an OSError, without the path (the record has it)."""
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, FileNotFoundError):
        return "vanished during scan"
    return (error.strerror or type(error).__name__).lower()
