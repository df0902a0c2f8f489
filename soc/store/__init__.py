"""Findings storage: the `Store` protocol and the embedded SQLite backend."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from soc.store import register  # noqa: F401 - registers the register's tables in the shared metadata
from soc.store.base import Store
from soc.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "open_store"]


def open_store(url_or_path: str | Path) -> SqliteStore:
    """Open the store at a file path or an `sqlite:///…` URL, creating and migrating it as needed."""
    return SqliteStore(_sqlite_path(url_or_path))


def _sqlite_path(url_or_path: str | Path) -> Path:
    """The database file named by a path or an SQLite URL; other backends are not supported yet."""
    if isinstance(url_or_path, Path) or "://" not in url_or_path:
        return Path(url_or_path).expanduser()
    url = make_url(url_or_path)
    if url.get_backend_name() != "sqlite":
        backend = url.get_backend_name()
        raise ValueError(f"unsupported store backend {backend!r}: only sqlite:/// is implemented")
    if url.database in (None, "", ":memory:"):
        raise ValueError("an in-memory SQLite store is not supported: give a file path")
    return Path(url.database).expanduser()
