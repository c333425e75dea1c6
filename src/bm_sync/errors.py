"""The exceptions bm-sync raises.

Per-file problems (unreadable file, broken YAML, a file that vanished) are *data*: they travel as
`Failure` records in a report and never unwind a run. Exceptions are for the run as a whole: the
caller catches `BmSyncError` or one of its subclasses, at whatever level it cares about. None of
them carries a process exit code: that mapping belongs to the CLI.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


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


class SyncFailed(BmSyncError):
    """A sync could not complete: the folder's state (`.basic-memory/`) or the database could
    not be written (permissions, a full disk, a read-only file system, a locked database).
    Nothing is lost: the database commits come first and the index last, so the next sync,
    once the cause is gone, converges. The message is one line: the cause, then a hint."""


class DatabaseConnectionLost(SyncFailed):
    """The connection to the database server broke during a sync (the server restarted or
    was stopped, an administrator ended the session, the network went away). Fatal for the
    whole run, never a per-file failure: the rest of the run could not be written either, and
    a reconnect half-way would apply part of it. What was committed stays; the index is not
    written, so the next sync converges (a rebuild: the token was cleared)."""


class LockUnavailable(SyncFailed):
    """The folder's lock file cannot be opened (a folder in its place, no permission, a
    read-only file system): for a sync, and for every other command that takes the lock
    (`bm prune`, `bm restore`). One line: the cause, then a hint."""


_HINTS = {
    errno.EACCES: "check the permissions and the owner of the notes folder and .basic-memory",
    errno.EPERM: "check the permissions and the owner of the notes folder and .basic-memory",
    errno.ENOSPC: "free some space, then sync again",
    errno.EDQUOT: "free some space (the disk quota is reached), then sync again",
    errno.EFBIG: "a file grew past the allowed size; free some space or raise the limit",
    errno.EROFS: "the file system is read-only; bm status still works there",
    errno.ENOTDIR: "something in .basic-memory is a file where bm expects a folder; "
                   "move it away and sync again",
    errno.EISDIR: "something in .basic-memory is a folder where bm expects a file; "
                  "move it away and sync again",
}


def os_error_line(error: OSError) -> str:
    """`cannot write PATH: REASON; HINT`: one line for an OSError that stops a whole run."""
    where = f" {error.filename}" if error.filename else ""
    hint = _HINTS.get(error.errno or 0, "sync again once the cause is gone")
    return f"cannot write{where}: {describe_os_error(error)}; {hint}"


def database_error_line(message: str, database: Path | None = None) -> str:
    """One line, cause then hint, for a database error that stops a whole run."""
    return f"database error: {message}; {database_hint(message, database)}"


def database_hint(message: str, database: Path | None = None) -> str:
    """What to do about a database error, from the driver's message (SQLite's wording, which
    the other drivers resemble) and, for a SQLite file, who owns it: a file or folder of
    another user is a matter of ownership, which chmod does not fix."""
    lowered = message.lower()
    pooled_statement = "prepared statement" in lowered and (
        "does not exist" in lowered or "already exists" in lowered)
    if "unsupported startup parameter" in lowered or pooled_statement:
        return ("behind PgBouncer in transaction mode? add ?prepared_statement_cache_size=0 "
                "to the URL (docs/deploy.md)")
    if "locked" in lowered or "busy" in lowered or "lock timeout" in lowered:
        return "another process holds the database; sync again when it is done"
    permission = "permission" in lowered or "unable to open" in lowered
    if "readonly" in lowered or "read-only" in lowered or permission:
        owner = _other_owner(database) if database is not None else None
        if owner is not None:
            return (f"{owner} belongs to another user; run bm as that user, or give it to "
                    f"yours (chown -R {os.geteuid()} {owner})")
    if "readonly" in lowered or "read-only" in lowered:
        return "the database file or its folder is read-only; make it writable (chmod 644)"
    if "database" in lowered and "does not exist" in lowered:
        return "create the database first (createdb NAME), or fix the name in the URL"
    if "password authentication failed" in lowered or (
            "role" in lowered and "does not exist" in lowered):
        return "check the user name and password in the database URL"
    if "connect call failed" in lowered or "no such file or directory" in lowered or (
            "connection refused" in lowered):
        return "is the database server running, and are the host and port right?"
    if "full" in lowered or "disk" in lowered or "i/o" in lowered:
        return "free some space (or check the disk), then sync again"
    if permission:
        return "check the permissions and the owner of the database and its folder"
    return "sync again once the cause is gone"


def _other_owner(database: Path) -> Path | None:
    """The database's folder, or else the file itself, when another user owns it (None when
    both are this user's, or cannot be looked at)."""
    for path in (database.parent, database):
        try:
            if os.stat(path).st_uid != os.geteuid():
                return path
        except OSError:
            continue
    return None
