"""The embedded backend: every store on one SQLite file, schema managed by Alembic."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.store.sqlite.audit import SqliteAuditLog
from soc.store.sqlite.findings import SqliteFindingStore
from soc.store.sqlite.register import SqliteRegister
from soc.store.sqlite.schema import create_engine_for, migrate

__all__ = ["SqliteAuditLog", "SqliteBackend", "SqliteFindingStore", "SqliteRegister"]


class SqliteBackend:
    """The `Backend` protocol on one SQLite file; opening it creates the file and migrates it to the head."""

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = create_engine_for(path)
        try:
            migrate(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._findings = SqliteFindingStore(self._engine, clock)
        self._register = SqliteRegister(self._engine, clock)
        self._audit = SqliteAuditLog(self._engine)

    @property
    def findings(self) -> SqliteFindingStore:
        """Runs, observations, findings."""
        return self._findings

    @property
    def register(self) -> SqliteRegister:
        """The register and coverage."""
        return self._register

    @property
    def audit(self) -> SqliteAuditLog:
        """The audit trail."""
        return self._audit

    @property
    def location(self) -> str:
        """The database file."""
        return str(self.path)

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
