"""Which process is this, is another one still alive, and temporary files that outlive no process.

A process is named by host, pid and a start token (Linux: the boot id and the start tick from
/proc), so that a pid reused by an unrelated process is not taken for the one that died. A
temporary file made by `owned_temp_file` carries its owner's pid and token in its name; a kill -9
leaves it behind, and the next `sweep_orphan_files` (at the next start) removes it; one still there
when the interpreter exits (a scan cut short by Ctrl-C) is removed then.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import re
import socket
import stat
import tempfile
import threading
from pathlib import Path

from soc.core.models import RunOwner

_PROC = Path("/proc")
_STARTTIME_FIELD = 19
"""Index of `starttime` (field 22 of /proc/PID/stat) among the fields after the command name."""
_ORPHAN = re.compile(r"soc-[a-z]+-(?P<pid>\d{1,10})-(?P<tag>[0-9a-f]{12}|none)-[A-Za-z0-9_]{1,32}\.[a-z]{1,8}")
"""Names `owned_temp_file` gives: soc-KIND-PID-TAG-RANDOM.SUFFIX."""
_LIVE: set[Path] = set()
"""This process's owned temporary files not yet removed (removed at exit)."""
_LIVE_LOCK = threading.Lock()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")[:4096]
    except OSError:
        return None


@functools.cache
def _boot_id() -> str | None:
    text = _read(_PROC / "sys" / "kernel" / "random" / "boot_id")
    return (text.strip() or None) if text else None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    text = _read(_PROC / str(pid) / "stat")
    if text is None or ")" not in text:
        return None
    return text.rsplit(")", 1)[1].split()


def start_token(pid: int) -> str | None:
    """The start token of process `pid` on this host, or None where it cannot be read (not Linux, gone)."""
    fields, boot = _stat_fields(pid), _boot_id()
    if fields is None or boot is None or len(fields) <= _STARTTIME_FIELD:
        return None
    return f"{boot}:{fields[_STARTTIME_FIELD]}"


def current_process() -> RunOwner:
    """This process: host name, pid and start token."""
    return RunOwner(host=socket.gethostname(), pid=os.getpid(), started=start_token(os.getpid()))


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` of this host lives and, when `started` is known, is the one that started then.

    A zombie (killed, not yet reaped) counts as gone. Where nothing can be learnt (not POSIX) it is
    presumed alive: a run is then recognised as dead by its heartbeat only.
    """
    if pid <= 0:
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _stat_fields(pid)
    if fields is not None and fields[:1] == ["Z"]:
        return False
    if started is None:
        return True
    now = start_token(pid)
    return now is None or now == started


def is_running(owner: RunOwner) -> bool | None:
    """False: the owner's process is gone; True: it is provably the same process, alive; None: cannot tell
    (it ran on another host, or its start cannot be compared here) — then only its heartbeat can tell."""
    if owner.host != socket.gethostname():
        return None
    if not process_alive(owner.pid, owner.started):
        return False
    return True if owner.started is not None and start_token(owner.pid) == owner.started else None


def _tag(started: str | None) -> str:
    return hashlib.sha256(started.encode()).hexdigest()[:12] if started else "none"


def owned_temp_file(kind: str, data: bytes, suffix: str, directory: Path | None = None) -> Path:
    """Write `data` to a new private (0600) temporary file named after this process and return its path.

    The caller removes it with `remove_owned_temp_file`; else it goes at interpreter exit, or, after a
    kill, at the next `sweep_orphan_files`. Orphans of dead processes are swept here too.
    """
    if not re.fullmatch(r"[a-z]+", kind) or not re.fullmatch(r"\.[a-z]{1,8}", suffix):
        raise ValueError(f"bad temporary file kind {kind!r} or suffix {suffix!r}")
    sweep_orphan_files(directory)
    me = current_process()
    fd, name = tempfile.mkstemp(prefix=f"soc-{kind}-{me.pid}-{_tag(me.started)}-", suffix=suffix, dir=directory)
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    with _LIVE_LOCK:
        _LIVE.add(Path(name))
    return Path(name)


def remove_owned_temp_file(path: Path) -> None:
    """Remove a file made by `owned_temp_file` (already gone is fine)."""
    with _LIVE_LOCK:
        _LIVE.discard(path)
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@atexit.register
def remove_owned_temp_files() -> None:
    """Remove every file of this process made by `owned_temp_file` (at exit; by hand before `os._exit`)."""
    with _LIVE_LOCK:
        paths = list(_LIVE)
    for path in paths:
        remove_owned_temp_file(path)


def sweep_orphan_files(directory: Path | None = None) -> list[Path]:
    """Remove the temporary files `owned_temp_file` made for processes of this user that are gone."""
    folder = Path(directory or tempfile.gettempdir())
    removed: list[Path] = []
    tags: dict[int, str | None] = {}
    try:
        with os.scandir(folder) as listing:
            entries = [entry for entry in listing if entry.name.startswith("soc-")]
    except OSError:
        return removed
    for entry in entries:
        match = _ORPHAN.fullmatch(entry.name)
        if match is None:
            continue
        with contextlib.suppress(OSError):
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
                continue
            pid = int(match["pid"])
            if pid not in tags:
                tags[pid] = _tag(start_token(pid)) if process_alive(pid, None) else None
            if tags[pid] is None or (match["tag"] != "none" and tags[pid] not in ("none", match["tag"])):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
