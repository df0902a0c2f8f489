"""Administration of the search backend: load its templates, copy an embedded store into it.

Callers name settings, never a backend class (the factory rule of `soc.store`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from soc.core.settings import StoreSettings
from soc.store.errors import StoreError
from soc.store.migrate import Checkpoint, TableResult, migrate


def _search(settings: StoreSettings) -> StoreSettings:
    if not settings.url:
        raise StoreError("no search cluster: set SOC_STORE__URL (and SOC_STORE__FLAVOUR, credentials)")
    return settings


def setup_search(settings: StoreSettings) -> list[str]:
    """Load the index templates and create the indices (idempotent); return the index and alias names."""
    from soc.store.search import open_indices

    indices = open_indices(_search(settings))
    try:
        return indices.setup()
    finally:
        indices.client.close()


def checkpoint_path(db: Path, settings: StoreSettings) -> Path:
    """Where the migration of `db` into the cluster keeps its checkpoint."""
    return db.with_name(f"{db.name}.migrate-{settings.index_prefix}.json")


def migrate_to_search(db: Path, settings: StoreSettings, *, restart: bool = False, batch: int = 1000,
                      progress: Callable[[str, int, int], None] | None = None) -> list[TableResult]:
    """Copy the SOC data of the embedded store `db` into the cluster, resuming an interrupted copy."""
    from soc.store.search import open_indices
    from soc.store.search.client import location
    from soc.store.sqlite.schema import HEAD_REVISION, create_engine_for, revision

    if not db.is_file():
        raise StoreError(f"--db {db}: no such store file")
    engine = create_engine_for(db, read_only=True)
    try:
        found = revision(engine)
        if found != HEAD_REVISION:
            raise StoreError(f"{db}: schema {found}, not this version's {HEAD_REVISION}: open it once with any soc "
                             f"command (e.g. `soc runs --db {db}`) to migrate it, then copy it")
        path = checkpoint_path(db, _search(settings))
        if restart:
            path.unlink(missing_ok=True)
        indices = open_indices(settings)
        try:
            return migrate(engine, indices, Checkpoint.load(path, location(settings)), batch=batch,
                           progress=progress)
        finally:
            indices.client.close()
    finally:
        engine.dispose()
