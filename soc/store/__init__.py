"""Storage: the protocols every backend implements, and the one factory that chooses a backend.

Nothing outside this package names a backend: entry points and services ask `open_backend` for
one and talk to it through `soc.store.protocols`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.core.settings import StoreSettings
from soc.store.errors import StoreError
from soc.store.protocols import AuditLog, Backend, FindingStore, JobHistory, RegisterStore, UserStore
from soc.store.query import CursorError, FindingQuery, FindingSort, Page, SlaTally

__all__ = [
    "AuditLog", "Backend", "CursorError", "FindingQuery", "FindingSort", "FindingStore", "JobHistory", "Page",
    "RegisterStore", "SlaTally", "StoreError", "UserStore", "open_backend",
]


def open_backend(location: str | Path, clock: Clock = SYSTEM_CLOCK, *, writes: bool = True,
                 on_create: Callable[[Path], None] | None = None, store: StoreSettings | None = None) -> Backend:
    """The backend for a store location (a file path or an `sqlite:///…` URL), created and migrated as needed.

    `writes`: the caller will change the store, so it must be writable and sound (its pages are checked
    first); a caller that only reads also gets a store it cannot write, opened read-only. `on_create` is
    told the path before a new store is made. `store` with `backend="search"`: the SOC data is on the
    search cluster, and `location` keeps the service's own records (users, audit, jobs). StoreError names
    the location, what is wrong and what to do.
    """
    from soc.store.sqlite import SqliteBackend

    path = _sqlite_path(location)
    try:
        local = SqliteBackend(path, clock, writes=writes, on_create=on_create)
    except StoreError:
        raise
    except Exception as exc:  # a broken or foreign file: say which file, not a traceback
        raise StoreError(f"{path}: cannot open the store ({type(exc).__name__}: {exc})") from exc
    if store is None or store.backend == "sqlite":
        return local
    from soc.store.search import SearchBackend

    try:
        return SearchBackend(store, local, clock)
    except BaseException:
        local.close()
        raise


def _sqlite_path(location: str | Path) -> Path:
    """The database file named by a path or an SQLite URL; other backends are not implemented yet."""
    if isinstance(location, Path) or "://" not in location:
        return Path(location).expanduser()
    url = make_url(location)
    if url.get_backend_name() != "sqlite":
        raise StoreError(f"unsupported store backend {url.get_backend_name()!r}: only sqlite:/// is implemented")
    if url.database in (None, "", ":memory:"):
        raise StoreError("an in-memory SQLite store is not supported: give a file path")
    return Path(url.database).expanduser()
