"""The SQLite schema (SQLAlchemy Core), its engine settings and its migrations (Alembic).

Datetimes are kept as ISO-8601 UTC text and come back timezone-aware. Writes take SQLite's write
lock up front (`BEGIN IMMEDIATE`) so a concurrent writer waits on the busy timeout instead of failing
half-way. The metadata here is what migrations must produce exactly (a test compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import (
    JSON,
    URL,
    Boolean,
    Column,
    Connection,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Unicode,
    create_engine,
    event,
)
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from soc.store.sqlite.faults import MAX_INTEGRITY_ERRORS, fault_of

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD_REVISION = max(path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
"""Newest migration: revisions are numbered '0001', '0002', … in their file names (a test checks the chain)."""
BUSY_TIMEOUT_MS = 5000

BEGIN_OPTION = "soc_sqlite_begin"


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

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[str | None], datetime | None]:
        """`process_result_value` without TypeDecorator's wrapping: every stored time passes here (seven per
        finding row), and the wrapper cost more than the parsing. Text we wrote is already UTC ('+00:00')."""
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            moment = parse(value)
            return moment if moment.tzinfo is UTC else moment.astimezone(UTC)

        return process


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
    # who runs it (0007): a run left `running` by a dead process is recognised at the next start
    Column("owner_host", Text(), nullable=True),
    Column("owner_pid", Integer(), nullable=True),
    Column("owner_started", Text(), nullable=True),
    Column("heartbeat_at", UTCDateTime(), nullable=True),
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
    Column("unjudged", JSON(), nullable=False, server_default="[]"),
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
    # triage and SLA (0008)
    Column("opened_at", UTCDateTime(), nullable=True),
    Column("due_at", UTCDateTime(), nullable=True),
    Column("warn_at", UTCDateTime(), nullable=True),
    Column("assignee", Text(), nullable=True),
    Column("risk_expires", UTCDateTime(), nullable=True),
    Column("risk_approver", Text(), nullable=True),
    Index("ix_findings_portal_url", "portal_url"),
    Index("ix_findings_status", "status"),
    Index("ix_findings_check_id", "check_id"),
    Index("ix_findings_due_at", "due_at"),
    Index("ix_findings_severity_portal_url", "severity", "portal_url"),
    Index("ix_findings_first_seen", "first_seen"),
    Index("ix_findings_last_seen", "last_seen"),
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

def _versions_table(name: str, key: str) -> Table:
    """A bitemporal record table: one row per version.

    Valid time (when the version was true in the world): valid_from inclusive, valid_to exclusive (None:
    until further notice). Record time (when the toolkit held it): recorded_at inclusive, superseded_at
    exclusive (None: still believed). Rows are never updated except to set superseded_at.
    """
    return Table(
        name,
        metadata,
        Column("id", Integer(), primary_key=True, autoincrement=True),
        Column(key, String(64), nullable=False),
        Column("valid_from", UTCDateTime(), nullable=False),
        Column("valid_to", UTCDateTime(), nullable=True),
        Column("actor", Text(), nullable=False),
        Column("source", Text(), nullable=False),
        Column("data", JSON(), nullable=False),
        Column("recorded_at", UTCDateTime(), nullable=False),
        Column("superseded_at", UTCDateTime(), nullable=True),
    )


system_versions = _versions_table("system_versions", "system_id")
Index("ix_system_versions_system_id_valid_from", system_versions.c.system_id, system_versions.c.valid_from)
Index("ix_system_versions_valid_from_valid_to", system_versions.c.valid_from, system_versions.c.valid_to)
coverage_versions = _versions_table("coverage_versions", "agency")
Index("ix_coverage_versions_agency_valid_from", coverage_versions.c.agency, coverage_versions.c.valid_from)
Index("ix_system_versions_superseded_at", system_versions.c.superseded_at)
Index("ix_coverage_versions_superseded_at", coverage_versions.c.superseded_at)


audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", Text(), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", Text(), nullable=False),
    Column("before", JSON(), nullable=True),
    Column("after", JSON(), nullable=True),
    Column("note", Text(), nullable=True),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_action", "action"),
    Index("ix_audit_log_subject", "subject"),
)


users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text(), nullable=False),
    Column("disabled", Boolean(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_login", UTCDateTime(), nullable=True),
    Column("failed_logins", Integer(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user", String(64), ForeignKey("users.name"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("last_used", UTCDateTime(), nullable=True),
    Column("note", Text(), nullable=True),
    Index("ix_api_tokens_user", "user"),
)

service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("slot", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("error", Text(), nullable=True),
    Column("scan_run_id", String(32), nullable=True),
    Column("trigger", String(16), nullable=False),
    Column("host", Text(), nullable=True),
    Column("pid", Integer(), nullable=True),
    Column("detail", JSON(), nullable=False),
    Index("ix_job_runs_job_slot", "job", "slot"),
    Index("ix_job_runs_started_at", "started_at"),
)


leases = Table(
    # who holds a role only one process may have at a time (the scheduler), with its heartbeat
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("host", Text(), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("started", Text(), nullable=True),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
)

apscheduler_jobs = Table(
    # APScheduler 3's SQLAlchemyJobStore table, made by our migrations so the store's schema is all ours
    "apscheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary(), nullable=False),
)


drill_sessions = Table(
    # a drill held from one scenario; its state is the fold of its events over the scenario snapshot kept here
    "drill_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("scenario_id", String(64), nullable=False),
    Column("scenario_version", Integer(), nullable=False),
    Column("title_vi", Text(), nullable=False),
    Column("title_en", Text(), nullable=False),
    Column("scenario_text", Text(), nullable=False),
    Column("source", Text(), nullable=False),
    Column("drill_date", String(10), nullable=False),
    Column("ruleset", String(64), nullable=False),
    Column("facilitator", String(64), nullable=False),
    Column("participants", JSON(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("target_system", String(64), nullable=True),
    Column("target_level", Integer(), nullable=False),
    Column("target_agency", String(64), nullable=True),
    Column("score", Float(), nullable=True),
    Column("scorecard", JSON(), nullable=True),
    Index("ix_drill_sessions_drill_date", "drill_date"),
)

drill_events = Table(
    # append-only log of a session: (session, seq) is unique, so two writers never both add event n
    "drill_events",
    metadata,
    Column("session_id", String(32), ForeignKey("drill_sessions.id"), primary_key=True),
    Column("seq", Integer(), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("real_at", UTCDateTime(), nullable=False),
    Column("exercise_seconds", Float(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("data", JSON(), nullable=False),
)

drill_actions = Table(
    # corrective actions from after-action reviews; each is also a finding (drill.corrective_action)
    "drill_actions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("session_id", String(32), ForeignKey("drill_sessions.id"), nullable=False, index=True),
    Column("scenario_id", String(64), nullable=False),
    Column("expectation_id", String(64), nullable=False),
    Column("text_vi", Text(), nullable=False),
    Column("text_en", Text(), nullable=False),
    Column("owner_agency", String(64), nullable=True),
    Column("due", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("done_at", UTCDateTime(), nullable=True),
    Column("done_by", String(64), nullable=True),
    Column("done_note", Text(), nullable=True),
    Column("confirmed_at", UTCDateTime(), nullable=True),
    Column("confirmed_by", Text(), nullable=True),
    Column("confirm_findings", JSON(), nullable=False),
)

reports = Table(
    # generated reports to leadership, kept as delivered (never changed): a new generation adds a row
    "reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("period", String(8), nullable=False),
    Column("lang", String(2), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("pdf", LargeBinary(), nullable=False),
    Column("html", Text(), nullable=False),
    Column("figures", JSON(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("pdf_size", Integer(), nullable=False),
    Index("ix_reports_kind_period", "kind", "period"),
)

claims = Table(
    # a claim is taken once (workers sharing one store split a scan slot's portals by claiming its batches)
    "claims",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

kpi_snapshots = Table(
    # the plan's KPIs per day and scope as the daily compliance job computed them (a day again replaces them)
    "kpi_snapshots",
    metadata,
    Column("as_of", String(10), primary_key=True),
    Column("scope", String(64), primary_key=True),
    Column("kpi_id", String(64), primary_key=True),
    Column("title_vi", Text(), nullable=False),
    Column("title_en", Text(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target", String(32), nullable=False),
    Column("target_percent", Float(), nullable=True),
    Column("numerator", Integer(), nullable=False),
    Column("denominator", Integer(), nullable=False),
    Column("percent", Float(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("ruleset", String(64), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
)


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


def _on_connect_read_only(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    """The pragmas of a read-only connection: the journal mode is the file's (setting it would write)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    """Emit BEGIN ourselves (the sqlite3 module's implicit one skips SELECTs and DDL)."""
    mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine_for(path: Path, read_only: bool = False, immutable: bool = False) -> Engine:
    """An engine on one SQLite file with WAL, foreign keys and a busy timeout.

    `read_only` opens the file with `mode=ro` (no write can happen, the journal mode is left as it is);
    `immutable` also tells SQLite nobody else writes it, which is what lets it read a WAL file in a
    directory where it cannot create the `-shm` file. SQLite errors caused by the file or the disk
    (damaged, read-only, full, I/O) come out as StoreError naming the file (`faults.fault_of`).
    """
    if read_only:
        query = {"immutable": "1"} if immutable else {"mode": "ro"}
        url = URL.create("sqlite", database=f"file:{quote(str(path.absolute()))}", query={**query, "uri": "true"})
    else:
        url = URL.create("sqlite", database=str(path))
    engine = create_engine(url)
    event.listen(engine, "connect", _on_connect_read_only if read_only else _on_connect)
    event.listen(engine, "begin", _on_begin)

    def translate(context: ExceptionContext) -> None:
        fault = fault_of(path, context.original_exception)
        if fault is not None:
            raise fault

    event.listen(engine, "handle_error", translate)
    return engine


def quick_check(engine: Engine) -> list[str]:
    """What SQLite's `PRAGMA quick_check` finds wrong with the file's pages (empty: it is sound).

    O(size) but fast: 0.06 s for a 65 MB store in the page cache, 0.7 s read cold from disk (measured on the
    dev machine); stopped after a few problems.
    """
    with engine.connect() as conn:
        rows = [str(row[0]) for row in conn.exec_driver_sql(f"PRAGMA quick_check({MAX_INTEGRITY_ERRORS})")]
    return [] if rows == ["ok"] else rows


def revision(engine: Engine) -> str | None:
    """The file's Alembic revision (None for a new file)."""
    with engine.connect() as conn:
        try:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except OperationalError:  # a new file: no alembic_version table yet
            return None


def migrate(engine: Engine) -> None:
    """Run `alembic upgrade head` on one of our connections, in one IMMEDIATE transaction.

    A file already at the newest revision skips Alembic entirely (importing it costs more than
    the rest of a short command such as `soc compliance`).
    """
    if revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    config = alembic_config()
    with engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"}).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
