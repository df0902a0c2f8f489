"""The embedded backend: every store on one SQLite file, schema managed by Alembic."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.store.errors import StoreError
from soc.store.sqlite.audit import SqliteAuditLog
from soc.store.sqlite.drills import SqliteDrillStore
from soc.store.sqlite.faults import damaged, integrity_detail, read_only, sidecars, write_problem
from soc.store.sqlite.findings import SqliteFindingStore
from soc.store.sqlite.jobs import SqliteJobHistory
from soc.store.sqlite.kpis import SqliteKpiHistory
from soc.store.sqlite.register import SqliteRegister
from soc.store.sqlite.reports import SqliteReportStore
from soc.store.sqlite.schema import HEAD_REVISION, create_engine_for, migrate, quick_check, revision
from soc.store.sqlite.users import SqliteUserStore

__all__ = ["SqliteAuditLog", "SqliteBackend", "SqliteDrillStore", "SqliteFindingStore", "SqliteJobHistory",
           "SqliteKpiHistory", "SqliteRegister", "SqliteReportStore", "SqliteUserStore"]


class SqliteBackend:
    """The `Backend` protocol on one SQLite file; opening it creates the file and migrates it to the head.

    `writes`: the caller will change the store. Then the file must be writable and its pages sound
    (`PRAGMA quick_check`, before any work). A caller that only reads gets the file read-only when it
    cannot be written (reads work, nothing is migrated or written). A new file is announced to
    `on_create` before it is made, and refused (StoreError) when it cannot be made.
    """

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK, *, writes: bool = True,
                 on_create: Callable[[Path], None] | None = None) -> None:
        self.path = path
        if path.is_dir():
            raise StoreError(f"the store {path} is a directory: give the path of a store file (e.g. {path}/soc.db)")
        problem = None
        if path.exists():
            problem = write_problem(path)
        else:
            _prepare_new(path, on_create)
        if problem is not None and writes:
            raise read_only(path, problem)
        self._read_only = problem is not None
        self._engine = _open_read_only(path, problem) if problem is not None else create_engine_for(path)
        try:
            if problem is not None:
                _check_revision(path, revision(self._engine), problem)
            elif writes and (problems := quick_check(self._engine)):
                raise damaged(path, integrity_detail(problems))
            else:
                migrate(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._findings = SqliteFindingStore(self._engine, clock)
        self._register = SqliteRegister(self._engine, clock)
        self._audit = SqliteAuditLog(self._engine)
        self._users = SqliteUserStore(self._engine)
        self._jobs = SqliteJobHistory(self._engine)
        self._drills = SqliteDrillStore(self._engine)
        self._reports = SqliteReportStore(self._engine)
        self._kpis = SqliteKpiHistory(self._engine)

    @property
    def read_only(self) -> bool:
        """Opened read-only because the file cannot be written: reads work, a write raises StoreError."""
        return self._read_only

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
    def users(self) -> SqliteUserStore:
        """Users, API tokens, service secrets."""
        return self._users

    @property
    def jobs(self) -> SqliteJobHistory:
        """Our history of scheduled job runs."""
        return self._jobs

    @property
    def drills(self) -> SqliteDrillStore:
        """Drill sessions, their event logs, corrective actions."""
        return self._drills

    @property
    def reports(self) -> SqliteReportStore:
        """The archive of generated reports."""
        return self._reports

    @property
    def kpis(self) -> SqliteKpiHistory:
        """The KPIs computed day by day."""
        return self._kpis

    def job_store(self) -> Any:
        """APScheduler's job store on this database (the table `apscheduler_jobs`, made by our migrations)."""
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        return SQLAlchemyJobStore(engine=self._engine, tablename="apscheduler_jobs")

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


def _prepare_new(path: Path, on_create: Callable[[Path], None] | None) -> None:
    """Make sure a new store can be made at `path` (its directory created if missing), then announce it."""
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir():
        raise StoreError(f"cannot create the store {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create the store {path}: the directory {existing} is not writable by this user")
    if on_create is not None:
        on_create(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {path.parent}: {exc.strerror or exc}") from None


def _open_read_only(path: Path, problem: str) -> Engine:
    """A read-only engine on a store this process cannot write.

    SQLite reads a WAL file read-only only if it can use (or create) the `-shm` file next to it; in a
    directory it cannot write, with no `-shm` left, the file is opened as immutable — safe, since nobody
    with our rights can be writing it. A journal (`-wal`) still holding changes cannot be read that way.
    """
    wal, shm = sidecars(path)
    directory_writable = os.access(path.parent, os.W_OK | os.X_OK)
    if not directory_writable and not shm.exists() and wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"the store {path} cannot be read as it is: {problem}, and its journal {wal.name} holds "
                         f"changes not yet written into it; open it once where it is writable (or copy "
                         f"{path.name}, {wal.name} together to a writable place)")
    return create_engine_for(path, read_only=True, immutable=not directory_writable and not shm.exists())


def _check_revision(path: Path, found: str | None, problem: str) -> None:
    """A read-only store must already be at this version's schema: nothing can migrate it."""
    if found == HEAD_REVISION:
        return
    if found is None:
        raise StoreError(f"the store {path} is read-only ({problem}) and holds no SOC store (an empty file or "
                         f"another program's database)")
    if found > HEAD_REVISION:
        raise StoreError(f"the store {path} was written by a newer version of the toolkit (schema {found}, this "
                         f"version knows up to {HEAD_REVISION}): upgrade the toolkit")
    raise StoreError(f"the store {path} is read-only ({problem}) and at schema {found}, older than this version's "
                     f"{HEAD_REVISION}: it needs a migration only a writer can make — run any soc command on it "
                     f"once with write access (e.g. `soc runs --db {path}` as its owner), then read it again")
