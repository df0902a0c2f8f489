"""Storage faults of an SQLite store said in the operator's words: read-only, damaged, full, unreadable.

SQLite reports these as error codes deep inside a statement; the store turns them into a StoreError that
names the file and what to do, so no command ever ends on a traceback because of the disk.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from soc.store.errors import StoreError

SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 8, 10, 11, 13, 14, 26
"""Primary result codes (the low byte of an extended code), https://sqlite.org/rescode.html."""

MAX_INTEGRITY_ERRORS = 5
"""`PRAGMA quick_check(N)` stops after N problems: enough to say the file is damaged, bounded to print."""


def sidecars(path: Path) -> tuple[Path, Path]:
    """The write-ahead log and shared-memory files SQLite keeps next to a WAL database."""
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def write_problem(path: Path) -> str | None:
    """Why this process cannot write the store at `path` (an existing file), or None when it can.

    SQLite in WAL mode writes the file itself and creates `-wal` and `-shm` next to it, so a writable file
    in a directory this process cannot write is read-only too (unless both side files exist and are writable).
    """
    if _read_only_filesystem(path):
        return "it is on a read-only file system"
    if not os.access(path, os.W_OK):
        mode = stat.filemode(path.stat().st_mode)
        return f"the file is not writable by this user (mode {mode}, owner uid {path.stat().st_uid})"
    directory = path.parent
    if not os.access(directory, os.W_OK | os.X_OK) and not all(
            side.exists() and os.access(side, os.W_OK) for side in sidecars(path)):
        return (f"its directory {directory} is not writable by this user (SQLite creates {path.name}-wal and "
                f"{path.name}-shm there)")
    return None


def _read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def damaged(path: Path, detail: str) -> StoreError:
    """The file's pages do not check out: refuse it and say how to get the data back."""
    return StoreError(
        f"the store {path} is damaged ({detail}). Restore it from a backup, or move it aside (a new, empty "
        f"store is then created) and save what can still be read with "
        f"`sqlite3 {path} .recover | sqlite3 recovered.db`")


def integrity_detail(problems: list[str]) -> str:
    """The first few lines `PRAGMA quick_check` reported, on one line."""
    lines = [line.strip() for row in problems for line in row.splitlines()]
    lines = [line for line in lines if line and not line.startswith("*** in database")]
    more = f"; … {len(lines) - 3} more" if len(lines) > 3 else ""
    return "PRAGMA quick_check: " + "; ".join(lines[:3]) + more + "; nothing was done"


def read_only(path: Path, why: str | None) -> StoreError:
    """A command that changes the store was given one it cannot write."""
    return StoreError(
        f"the store {path} is read-only: {why or 'SQLite could not write to it'}. This command changes the "
        f"store: make it writable (chmod u+w, or run as its owner) or give another one with --db / SOC_DB "
        f"(commands that only read work on it as it is)")


def fault_of(path: Path, error: BaseException) -> StoreError | None:
    """The StoreError for an SQLite error caused by the file or the disk (None for other errors)."""
    if not isinstance(error, sqlite3.DatabaseError):
        return None
    code = getattr(error, "sqlite_errorcode", None)  # set on every error SQLite itself raised
    if not isinstance(code, int):
        return None
    name, primary = getattr(error, "sqlite_errorname", "SQLITE_ERROR"), code & 0xFF
    if primary in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return damaged(path, f"SQLite: {error}")
    if primary == SQLITE_READONLY:
        return read_only(path, write_problem(path) if path.exists() else None)
    if primary == SQLITE_FULL:
        return StoreError(f"the disk holding the store {path} is full (SQLite: {error}): free some space and run "
                          f"the command again (what was committed before is kept)")
    if primary == SQLITE_IOERR:
        return StoreError(f"the store {path} could not be read or written ({name}: {error}): check the disk "
                          f"and the file, then run the command again")
    if primary == SQLITE_CANTOPEN:
        why = write_problem(path) if path.exists() else f"{path.parent} does not exist or cannot be read"
        return StoreError(f"cannot open the store {path} (SQLite: {error}): {why or 'check its permissions'}")
    return None

