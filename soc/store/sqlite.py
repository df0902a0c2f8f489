"""The embedded `Store`: SQLAlchemy Core on one SQLite file, schema managed by Alembic.

Every public method runs in its own short transaction (one connection per call); writes take
SQLite's write lock up front (`BEGIN IMMEDIATE`) so a concurrent writer waits on the busy timeout
instead of failing half-way. Datetimes are kept as ISO-8601 UTC text and come back timezone-aware.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    URL,
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    case,
    create_engine,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from soc.models import (
    Finding,
    FindingStatus,
    Observation,
    PortalChanges,
    PortalScan,
    RunStatus,
    ScanRun,
    Severity,
    StoredFinding,
    check_prefixes,
    utcnow,
)
from soc.store.base import Store

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD_REVISION = max(path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
"""Newest migration: revisions are numbered '0001', '0002', … in their file names (a test checks the chain)."""
BUSY_TIMEOUT_MS = 5000
SCAN_ACTOR = "scan"
"""Actor recorded on lifecycle events made by a scan (opened, reopened, auto-resolved)."""

_BEGIN_OPTION = "soc_sqlite_begin"
_AUTO_RESOLVABLE = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.RISK_ACCEPTED)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as fixed-width ISO-8601 UTC text (sorts chronologically)."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        """Convert an aware datetime to UTC text; naive datetimes are rejected."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: store times must be tz-aware")
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        """Parse stored text back into an aware UTC datetime."""
        if value is None:
            return None
        return datetime.fromisoformat(value).astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""The schema as the code expects it; migrations must produce exactly this (a test checks)."""

scan_runs = Table(
    "scan_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("inventory", Text(), nullable=False),
    Column("portal_count", Integer(), nullable=False),
    Column("portals_done", Integer(), nullable=False),
)

observations = Table(
    "observations",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("scan_runs.id"), nullable=False),
    Column("portal_url", Text(), nullable=False),
    Column("collector", Text(), nullable=False),
    Column("observed_at", UTCDateTime(), nullable=False),
    Column("complete", Boolean(), nullable=False),
    Column("data", JSON(), nullable=False),
    Index("ix_observations_run_id_portal_url", "run_id", "portal_url"),
)

findings = Table(
    "findings",
    metadata,
    Column("fingerprint", String(32), primary_key=True),
    Column("portal_url", Text(), nullable=False),
    Column("check_id", Text(), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title_vi", Text(), nullable=False),
    Column("title_en", Text(), nullable=False),
    Column("evidence", Text(), nullable=False),
    Column("remediation_vi", Text(), nullable=False),
    Column("remediation_en", Text(), nullable=False),
    Column("detail", Text(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("last_run_id", String(32), ForeignKey("scan_runs.id"), nullable=False),
    Column("status_note", Text(), nullable=True),
    Index("ix_findings_portal_url", "portal_url"),
    Index("ix_findings_status", "status"),
    Index("ix_findings_check_id", "check_id"),
)

run_findings = Table(
    "run_findings",
    metadata,
    Column("run_id", String(32), ForeignKey("scan_runs.id"), primary_key=True),
    Column("fingerprint", String(32), ForeignKey("findings.fingerprint"), primary_key=True),
)

finding_events = Table(
    "finding_events",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("fingerprint", String(32), ForeignKey("findings.fingerprint"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("run_id", String(32), ForeignKey("scan_runs.id"), nullable=True),
    Column("actor", Text(), nullable=False),
    Column("old_status", String(16), nullable=True),
    Column("new_status", String(16), nullable=False),
    Column("note", Text(), nullable=True),
    Index("ix_finding_events_fingerprint", "fingerprint"),
)

portal_scans = Table(
    "portal_scans",
    metadata,
    Column("run_id", String(32), ForeignKey("scan_runs.id"), primary_key=True),
    Column("portal_url", Text(), primary_key=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("collectors", JSON(), nullable=False),
    Column("tls_grade", String(4), nullable=True),
    Column("grade_without_trust", String(4), nullable=True),
    Column("score", Integer(), nullable=True),
    Column("category_scores", JSON(), nullable=False),
    Column("reasons", JSON(), nullable=False),
    Column("label_valid", Boolean(), nullable=True),
    Index("ix_portal_scans_portal_url", "portal_url"),
    Index("ix_portal_scans_recorded_at", "recorded_at"),
)

_SEVERITY_RANK = case(
    {severity.value: severity.rank for severity in Severity},
    value=findings.c.severity,
    else_=len(Severity),
)
_WORST_FIRST = (_SEVERITY_RANK, findings.c.portal_url, findings.c.check_id, findings.c.fingerprint)


class FindingEvent(BaseModel):
    """One entry of a finding's status history."""

    fingerprint: str
    at: datetime
    run_id: str | None
    actor: str
    old_status: FindingStatus | None
    new_status: FindingStatus
    note: str | None


def alembic_config() -> Config:
    """An Alembic configuration for the store's migrations, built without an ini file."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    """Hand transaction control to SQLAlchemy and set the per-connection pragmas."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    """Emit BEGIN ourselves (the sqlite3 module's implicit one skips SELECTs and DDL)."""
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _create_engine(path: Path) -> Engine:
    """An engine on one SQLite file with WAL, foreign keys and a busy timeout."""
    engine = create_engine(URL.create("sqlite", database=str(path)))
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _check_portal(portal_url: str, observations: Sequence[Observation], findings: Sequence[Finding]) -> None:
    """Refuse input that belongs to another portal or carries naive datetimes."""
    foreign = {item.portal_url for item in observations} | {item.portal_url for item in findings}
    foreign.discard(portal_url)
    if foreign:
        raise ValueError(f"observations or findings of {sorted(foreign)} passed for portal {portal_url!r}")
    for observation in observations:
        if observation.observed_at.utcoffset() is None:
            raise ValueError(f"observation {observation.collector!r} has a naive observed_at")


def _content(finding: Finding, run_id: str, now: datetime) -> dict[str, Any]:
    """The columns a new sighting refreshes: latest wording, evidence, and when/which run saw it."""
    return {
        "severity": finding.severity.value,
        "title_vi": finding.title_vi,
        "title_en": finding.title_en,
        "evidence": finding.evidence,
        "remediation_vi": finding.remediation_vi,
        "remediation_en": finding.remediation_en,
        "detail": finding.detail,
        "last_seen": now,
        "last_run_id": run_id,
    }


def _event(
    fingerprint: str,
    at: datetime,
    actor: str,
    new_status: FindingStatus,
    *,
    old_status: FindingStatus | None = None,
    run_id: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A row for `finding_events`."""
    return {
        "fingerprint": fingerprint,
        "at": at,
        "run_id": run_id,
        "actor": actor,
        "old_status": old_status.value if old_status else None,
        "new_status": new_status.value,
        "note": note,
    }


class SqliteStore(Store):
    """The `Store` protocol on an SQLite file; opening it migrates the schema to the latest version."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = utcnow) -> None:
        """Open (creating if needed) the database at `path` and upgrade it to the head revision."""
        self.path = path
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = _create_engine(path)
        self._writer = self._engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._migrate()

    @property
    def engine(self) -> Engine:
        """The engine for reads (shared with the register on the same file)."""
        return self._engine

    @property
    def writer(self) -> Engine:
        """The engine for writes: transactions begin IMMEDIATE, so concurrent writers wait instead of failing."""
        return self._writer

    def __enter__(self) -> SqliteStore:
        """Use the store as a context manager that closes it on exit."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the store."""
        self.close()

    def _now(self) -> datetime:
        """The clock's current time in UTC (a naive clock is a programming error)."""
        now = self._clock()
        if now.utcoffset() is None:
            raise ValueError("the store clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _migrate(self) -> None:
        """Run `alembic upgrade head` on one of our connections, in one transaction.

        A file already at the newest revision skips Alembic entirely (importing it costs more than
        the rest of a short command such as `soc compliance`).
        """
        if self._revision() == HEAD_REVISION:
            return
        from alembic import command

        config = alembic_config()
        with self._writer.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _revision(self) -> str | None:
        with self._engine.connect() as conn:
            try:
                return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except OperationalError:  # a new file: no alembic_version table yet
                return None

    def begin_run(self, inventory: str, portal_count: int) -> ScanRun:
        """Create a run in state `running` and return it (committed immediately)."""
        run = ScanRun(
            id=uuid4().hex,
            started_at=self._now(),
            status=RunStatus.RUNNING,
            inventory=inventory,
            portal_count=portal_count,
        )
        with self._writer.begin() as conn:
            conn.execute(insert(scan_runs).values(run.model_dump(mode="python")))
        return run

    def record_portal(
        self,
        run_id: str,
        portal_url: str,
        observations: Sequence[Observation],
        findings: Sequence[Finding],
        assessment: PortalScan | None = None,
    ) -> PortalChanges:
        """Store one portal's observations and findings atomically and apply the lifecycle.

        Findings seen are opened (new), kept (still open) or reopened (were resolved). Each complete
        observation resolves the portal's open, acknowledged or risk-accepted findings of its own
        collector's checks that were not seen now (`COLLECTOR_CHECK_PREFIXES`); an incomplete one
        resolves nothing; false positives are never auto-resolved.
        """
        _check_portal(portal_url, observations, findings)
        seen = {finding.fingerprint: finding for finding in findings}
        changes = PortalChanges()
        now = self._now()
        with self._writer.begin() as conn:
            _require_run(conn, run_id)
            self._insert_observations(conn, run_id, observations)
            self._apply_sightings(conn, run_id, seen, now, changes)
            prefixes = sorted({p for o in observations if o.complete for p in check_prefixes(o.collector)})
            if prefixes:
                changes.resolved = self._resolve_unseen(conn, run_id, portal_url, set(seen), now, prefixes)
            if assessment is not None:
                row = assessment.model_dump(mode="python") | {"run_id": run_id, "portal_url": portal_url}
                conn.execute(sqlite_insert(portal_scans).values(row).on_conflict_do_update(
                    index_elements=["run_id", "portal_url"], set_=row))
            conn.execute(
                update(scan_runs)
                .where(scan_runs.c.id == run_id)
                .values(portals_done=scan_runs.c.portals_done + 1)
            )
        return changes

    def _insert_observations(self, conn: Connection, run_id: str, items: Sequence[Observation]) -> None:
        """Keep the raw collector output of this portal."""
        if items:
            rows = [{"run_id": run_id, **item.model_dump(mode="python")} for item in items]
            conn.execute(insert(observations), rows)

    def _apply_sightings(
        self, conn: Connection, run_id: str, seen: dict[str, Finding], now: datetime, changes: PortalChanges
    ) -> None:
        """Open, keep or reopen every finding seen, refresh its content and link it to the run."""
        known = _statuses(conn, seen)
        for fingerprint, finding in seen.items():
            status = known.get(fingerprint)
            if status is None:
                _open_new(conn, finding, run_id, now)
                changes.new.append(fingerprint)
            elif status is FindingStatus.RESOLVED:
                _reopen(conn, finding, run_id, now)
                changes.reopened.append(fingerprint)
            else:
                _refresh(conn, finding, run_id, now)
                changes.still_open.append(fingerprint)
        if seen:
            rows = [{"run_id": run_id, "fingerprint": fingerprint} for fingerprint in seen]
            conn.execute(sqlite_insert(run_findings).on_conflict_do_nothing(), rows)

    def _resolve_unseen(
        self, conn: Connection, run_id: str, portal_url: str, seen: set[str], now: datetime, prefixes: list[str]
    ) -> list[str]:
        """Resolve the portal's auto-resolvable findings, of the given check-id prefixes, not seen now."""
        rows = conn.execute(
            select(findings.c.fingerprint, findings.c.status)
            .where(findings.c.portal_url == portal_url)
            .where(or_(*(findings.c.check_id.startswith(prefix, autoescape=True) for prefix in prefixes)))
            .where(findings.c.status.in_([status.value for status in _AUTO_RESOLVABLE]))
            .where(findings.c.fingerprint.not_in(seen))
            .order_by(findings.c.check_id, findings.c.fingerprint)
        ).all()
        stale = {fingerprint: FindingStatus(status) for fingerprint, status in rows}
        note = "not seen by a complete scan"
        for fingerprint, old in stale.items():
            _set_status_row(conn, fingerprint, FindingStatus.RESOLVED, now, note)
            event_row = _event(
                fingerprint, now, SCAN_ACTOR, FindingStatus.RESOLVED, old_status=old, run_id=run_id, note=note
            )
            conn.execute(insert(finding_events).values(event_row))
        return list(stale)

    def finish_run(self, run_id: str, complete: bool) -> ScanRun:
        """Mark a run complete, or incomplete when it was interrupted."""
        status = RunStatus.COMPLETE if complete else RunStatus.INCOMPLETE
        with self._writer.begin() as conn:
            _require_run(conn, run_id)
            conn.execute(
                update(scan_runs)
                .where(scan_runs.c.id == run_id)
                .values(finished_at=self._now(), status=status.value)
            )
            return _fetch_run(conn, run_id)

    def mark_abandoned_runs(self, older_than: timedelta) -> int:
        """Turn `running` runs started more than `older_than` ago into `incomplete`; return how many."""
        cutoff = self._now() - older_than
        with self._writer.begin() as conn:
            result = conn.execute(
                update(scan_runs)
                .where(scan_runs.c.status == RunStatus.RUNNING.value)
                .where(scan_runs.c.started_at < cutoff)
                .values(status=RunStatus.INCOMPLETE.value)
            )
            return result.rowcount

    def get_run(self, run_id: str) -> ScanRun | None:
        """One run as stored (a `running` run is reported as such), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(scan_runs).where(scan_runs.c.id == run_id)).mappings().first()
        return None if row is None else ScanRun.model_validate(dict(row))

    def list_runs(self, limit: int = 20) -> list[ScanRun]:
        """Most recent runs first."""
        stmt = select(scan_runs).order_by(scan_runs.c.started_at.desc(), scan_runs.c.id).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [ScanRun.model_validate(dict(row)) for row in rows]

    def list_findings(
        self,
        statuses: Sequence[FindingStatus] = (),
        severities: Sequence[Severity] = (),
        check_ids: Sequence[str] = (),
        portal_url: str | None = None,
    ) -> list[StoredFinding]:
        """Findings matching every given filter (an empty filter matches all), worst first."""
        stmt = select(findings)
        if statuses:
            stmt = stmt.where(findings.c.status.in_([status.value for status in statuses]))
        if severities:
            stmt = stmt.where(findings.c.severity.in_([severity.value for severity in severities]))
        if check_ids:
            stmt = stmt.where(findings.c.check_id.in_(list(check_ids)))
        if portal_url is not None:
            stmt = stmt.where(findings.c.portal_url == portal_url)
        return self._stored_findings(stmt)

    def run_findings(self, run_id: str) -> list[StoredFinding]:
        """The findings seen in one run (their current state), worst first."""
        stmt = (
            select(findings)
            .join(run_findings, run_findings.c.fingerprint == findings.c.fingerprint)
            .where(run_findings.c.run_id == run_id)
        )
        return self._stored_findings(stmt)

    def _stored_findings(self, stmt: Select[Any]) -> list[StoredFinding]:
        """Run a select over `findings`, worst first, as models."""
        with self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(*_WORST_FIRST)).mappings().all()
        return [StoredFinding.model_validate(dict(row)) for row in rows]

    def observations(self, run_id: str, portal_url: str | None = None) -> list[Observation]:
        """Raw observations kept for one run, in the order they were recorded."""
        stmt = select(
            observations.c.collector,
            observations.c.portal_url,
            observations.c.observed_at,
            observations.c.complete,
            observations.c.data,
        ).where(observations.c.run_id == run_id)
        if portal_url is not None:
            stmt = stmt.where(observations.c.portal_url == portal_url)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(observations.c.id)).mappings().all()
        return [Observation.model_validate(dict(row)) for row in rows]

    def set_status(
        self, fingerprint: str, status: FindingStatus, actor: str, note: str | None = None
    ) -> StoredFinding:
        """Triage: change a finding's status by hand, with who and why kept in its history.

        `resolved_at` becomes now when the new status is `resolved` and None otherwise; the note
        becomes the finding's `status_note`. Raises KeyError for an unknown fingerprint.
        """
        now = self._now()
        with self._writer.begin() as conn:
            old = _statuses(conn, [fingerprint]).get(fingerprint)
            if old is None:
                raise KeyError(f"no finding with fingerprint {fingerprint!r}")
            _set_status_row(conn, fingerprint, status, now, note)
            event_row = _event(fingerprint, now, actor, status, old_status=old, note=note)
            conn.execute(insert(finding_events).values(event_row))
            row = conn.execute(select(findings).where(findings.c.fingerprint == fingerprint)).mappings().one()
        return StoredFinding.model_validate(dict(row))

    def events(self, fingerprint: str) -> list[FindingEvent]:
        """The status history of one finding, oldest first (empty for an unknown fingerprint)."""
        stmt = (
            select(finding_events)
            .where(finding_events.c.fingerprint == fingerprint)
            .order_by(finding_events.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [FindingEvent.model_validate(dict(row)) for row in rows]

    def portal_scans(self, run_id: str) -> list[PortalScan]:
        """Every portal's assessment in one run, by portal URL."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(portal_scans).where(portal_scans.c.run_id == run_id).order_by(portal_scans.c.portal_url)
            ).mappings()
            return [PortalScan.model_validate(dict(row)) for row in rows]

    def portal_scans_between(self, start: datetime, end: datetime) -> list[PortalScan]:
        """Every portal assessment recorded in [start, end], oldest first (for KPIs over a window)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(portal_scans)
                .where(portal_scans.c.recorded_at >= start, portal_scans.c.recorded_at <= end)
                .order_by(portal_scans.c.recorded_at)
            ).mappings()
            return [PortalScan.model_validate(dict(row)) for row in rows]

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()


def _require_run(conn: Connection, run_id: str) -> None:
    """Raise KeyError when no run has this id."""
    if conn.execute(select(scan_runs.c.id).where(scan_runs.c.id == run_id)).first() is None:
        raise KeyError(f"no scan run with id {run_id!r}")


def _fetch_run(conn: Connection, run_id: str) -> ScanRun:
    """One existing run as a model."""
    row = conn.execute(select(scan_runs).where(scan_runs.c.id == run_id)).mappings().one()
    return ScanRun.model_validate(dict(row))


def _statuses(conn: Connection, fingerprints: Iterable[str]) -> dict[str, FindingStatus]:
    """Current status of those of `fingerprints` the store knows."""
    stmt = select(findings.c.fingerprint, findings.c.status).where(
        findings.c.fingerprint.in_(list(fingerprints))
    )
    rows = conn.execute(stmt).all()
    return {fingerprint: FindingStatus(status) for fingerprint, status in rows}


def _open_new(conn: Connection, finding: Finding, run_id: str, now: datetime) -> None:
    """Insert a finding never seen before, status open, with its `opened` event."""
    row = {
        **_content(finding, run_id, now),
        "fingerprint": finding.fingerprint,
        "portal_url": finding.portal_url,
        "check_id": finding.check_id,
        "status": FindingStatus.OPEN.value,
        "first_seen": now,
        "resolved_at": None,
        "status_note": None,
    }
    conn.execute(insert(findings).values(row))
    event_row = _event(finding.fingerprint, now, SCAN_ACTOR, FindingStatus.OPEN, run_id=run_id, note="opened")
    conn.execute(insert(finding_events).values(event_row))


def _reopen(conn: Connection, finding: Finding, run_id: str, now: datetime) -> None:
    """Open again a resolved finding that a scan sees again, with its `reopened` event."""
    note = "reopened"
    _refresh(conn, finding, run_id, now)
    _set_status_row(conn, finding.fingerprint, FindingStatus.OPEN, now, note)
    event_row = _event(
        finding.fingerprint,
        now,
        SCAN_ACTOR,
        FindingStatus.OPEN,
        old_status=FindingStatus.RESOLVED,
        run_id=run_id,
        note=note,
    )
    conn.execute(insert(finding_events).values(event_row))


def _refresh(conn: Connection, finding: Finding, run_id: str, now: datetime) -> None:
    """Update a known finding's content and last sighting, keeping its status."""
    conn.execute(
        update(findings)
        .where(findings.c.fingerprint == finding.fingerprint)
        .values(_content(finding, run_id, now))
    )


def _set_status_row(
    conn: Connection, fingerprint: str, status: FindingStatus, now: datetime, note: str | None
) -> None:
    """Write a status change on the finding row; `resolved_at` follows the new status."""
    resolved_at = now if status is FindingStatus.RESOLVED else None
    conn.execute(
        update(findings)
        .where(findings.c.fingerprint == fingerprint)
        .values(status=status.value, resolved_at=resolved_at, status_note=note)
    )
