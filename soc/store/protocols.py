"""What the services ask of storage, one protocol per concern, shaped by the questions (not by SQL).

The embedded SQLite backend implements every one; the search backend (Elasticsearch / OpenSearch) implements
those holding SOC data and keeps users, tokens, the audit trail and jobs in SQLite (`soc.store.search`).
Lifecycle rules are not here: backends carry out what `soc.findings.lifecycle` decides.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from soc.compliance.history import Finish, HistoryEntry, RegisterChanges, keep_record
from soc.compliance.kpi import KpiSnapshot, PortalVerdicts
from soc.compliance.models import CoverageRecord, SystemRecord
from soc.core.drill_records import ActionStatus, CorrectiveAction, DrillEvent, DrillSession, SessionStatus
from soc.core.models import (
    ApiToken,
    AuditEntry,
    Finding,
    FindingEvent,
    FindingStatus,
    JobOutcome,
    JobRun,
    Observation,
    PortalChanges,
    PortalScan,
    RunningRun,
    RunOwner,
    ScanRun,
    Severity,
    StoredFinding,
    User,
)
from soc.core.report_records import ArchivedReport, ReportKind, ReportSummary
from soc.store.query import FindingQuery, Page, SlaTally


class FindingStore(Protocol):
    """Scan runs, raw observations and findings with their lifecycle."""

    def begin_run(self, inventory: str, portal_count: int, owner: RunOwner | None = None) -> ScanRun:
        """Create a run in state `running` and return it (committed immediately).

        `owner` is the process that runs it; with it the run gets its first heartbeat.
        """
        ...

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's process is alive, now (a short write; the pipeline calls it every few seconds)."""
        ...

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
        observation resolves the portal's earlier findings of its own collector's checks that were not
        seen; an incomplete one resolves nothing (`soc.findings.lifecycle`). The portal's assessment
        (grade, score), when given, is kept for the run.
        """
        ...

    def finish_run(self, run_id: str, complete: bool) -> ScanRun:
        """Mark a run complete, or incomplete when it was interrupted."""
        ...

    def mark_abandoned_runs(self, started_before: datetime) -> list[ScanRun]:
        """Turn runs still `running` that started before the cutoff into `incomplete`; return them."""
        ...

    def running_runs(self) -> list[RunningRun]:
        """Every run still marked `running`, with its owner and last heartbeat (oldest first)."""
        ...

    def abandon_runs(self, run_ids: Collection[str]) -> list[ScanRun]:
        """Turn those of the runs that are still `running` into `incomplete`; return them as they are now."""
        ...

    def get_run(self, run_id: str) -> ScanRun | None:
        """One run, or None."""
        ...

    def list_runs(self, limit: int = 20, exclude: Collection[str] = ()) -> list[ScanRun]:
        """Most recent runs first, leaving out runs whose `inventory` is one of `exclude` (e.g. 'ops')."""
        ...

    def runs_by_prefix(self, prefix: str, limit: int = 2) -> list[ScanRun]:
        """Runs whose id starts with `prefix` (at most `limit`; two are enough to tell 'ambiguous')."""
        ...

    def query_findings(self, query: FindingQuery) -> Page[StoredFinding]:
        """One page of the findings matching the query, in its order."""
        ...

    def list_findings(
        self,
        statuses: Sequence[FindingStatus] = (),
        severities: Sequence[Severity] = (),
        check_ids: Sequence[str] = (),
        portal_url: str | None = None,
    ) -> list[StoredFinding]:
        """Every finding matching every given filter (an empty filter matches all), worst first."""
        ...

    def run_findings(self, run_id: str) -> list[StoredFinding]:
        """The findings seen in one run (their current state), worst first."""
        ...

    def observations(self, run_id: str, portal_url: str | None = None) -> list[Observation]:
        """Raw observations kept for one run."""
        ...

    def portal_scans(self, run_id: str) -> list[PortalScan]:
        """Every portal's assessment in one run."""
        ...

    def portal_verdicts(self, start: datetime, end: datetime) -> PortalVerdicts:
        """What the assessments recorded in [start, end] say for the portal KPIs: the subjects with one whose
        TLS and HTTP were both complete, and those whose newest one that assessed the trust label (label_valid
        not None; of the same instant, the one stored last) found it valid."""
        ...

    def set_status(
        self, fingerprint: str, status: FindingStatus, actor: str, note: str | None = None, *,
        risk_expires: datetime | None = None, risk_approver: str | None = None,
    ) -> StoredFinding:
        """Triage: change a finding's status by hand, with who and why in its history (KeyError: unknown).

        A risk acceptance keeps its expiry and approver; opening a resolved or false-positive finding again
        starts a new open period without a deadline (the service sets it from the SLA matrix)."""
        ...

    def add_comment(self, fingerprint: str, actor: str, comment: str) -> FindingEvent:
        """Keep a comment in a finding's history without changing its status (KeyError: unknown)."""
        ...

    def assign(self, fingerprint: str, assignee: str | None, actor: str) -> StoredFinding:
        """Assign a finding to an agency (None: its portal's owner), kept in its history (KeyError: unknown)."""
        ...

    def without_deadline(self, severities: Sequence[Severity], limit: int = 10_000) -> list[StoredFinding]:
        """Open or acknowledged findings of these severities that have no SLA deadline yet."""
        ...

    def set_deadlines(self, deadlines: Mapping[str, tuple[datetime, datetime]]) -> int:
        """Set (warn_at, due_at) of findings that have none yet; return how many were set."""
        ...

    def expire_risk_acceptances(self, now: datetime, actor: str) -> list[StoredFinding]:
        """Reopen every risk acceptance whose expiry is at or before `now`; return them as they are now."""
        ...

    def latest_portal_scans(self, since: datetime) -> list[PortalScan]:
        """Each portal's newest assessment since `since`, and its newest complete one when that is older."""
        ...

    def portal_history(self, portal_url: str, since: datetime) -> list[PortalScan]:
        """One portal's assessments recorded since `since`, oldest first (its grade history)."""
        ...

    def open_counts_by_subject(self) -> dict[str, dict[Severity, int]]:
        """Subject (portal URL, `system:<id>` …) → its open or acknowledged findings counted by severity."""
        ...

    def finding(self, fingerprint: str) -> StoredFinding | None:
        """One finding by its full fingerprint."""
        ...

    def run_change_counts(self, run_id: str) -> dict[str, int]:
        """How many findings one run opened ('new'), reopened and resolved."""
        ...

    def sla_tally(self, resolved_after: datetime, resolved_before: datetime, now: datetime) -> list[SlaTally]:
        """Per subject and assignee: findings resolved in (resolved_after, resolved_before] within / after their
        deadline, and open ones past it at `now` (the rules of `soc.findings.sla.sla_state`)."""
        ...

    def events(self, fingerprint: str) -> list[FindingEvent]:
        """The status history of one finding, oldest first."""
        ...

    def claim(self, key: str, owner: str) -> bool:
        """Take the claim `key` if nobody has (True), once for good: workers sharing one store split a scan
        slot's portals by claiming its batches (`slot:batch` keys)."""
        ...


class KpiHistory(Protocol):
    """The plan's KPIs per day and scope, as the daily compliance job computed them."""

    def record(self, snapshots: Sequence[KpiSnapshot]) -> int:
        """Keep a day's figures, replacing those of the same day, scope and KPI; return how many were kept."""
        ...

    def history(self, kpi_id: str | None = None, scope: str | None = None, since: date | None = None,
                until: date | None = None) -> list[KpiSnapshot]:
        """Figures by day (then scope, KPI), optionally of one KPI, one scope, since <= day <= until."""
        ...


class RegisterStore(Protocol):
    """The register of information systems and anti-malware coverage, bitemporal: every version has the
    time it was true in the world (valid) and the time the toolkit believed it (recorded)."""

    def apply_systems(self, records: Sequence[SystemRecord], actor: str, source: str,
                      at: datetime | None = None, present: Collection[str] | None = None,
                      finish: Finish = keep_record) -> RegisterChanges:
        """Apply a file's systems atomically, effective `at` (default now); systems not in the file stay.

        `present` names the file's columns: a column it lacks keeps the stored values. `finish` completes
        each merged record; a problem it reports refuses the whole file (ProblemsError, nothing written).
        A file dated before a version already known is placed before it (history is kept, not rewritten).
        """
        ...

    def apply_coverage(self, records: Sequence[CoverageRecord], actor: str, source: str,
                       at: datetime | None = None, present: Collection[str] | None = None) -> RegisterChanges:
        """Apply an anti-malware coverage file atomically (one record per agency), effective `at`."""
        ...

    def systems_as_of(self, moment: datetime, known_at: datetime | None = None) -> list[SystemRecord]:
        """The register as it stood at `moment`, as known at `known_at` (default: as known now)."""
        ...

    def coverage_as_of(self, moment: datetime, known_at: datetime | None = None) -> list[CoverageRecord]:
        """Anti-malware coverage as it stood at `moment`, as known at `known_at` (default: now)."""
        ...

    def data_since(self, known_at: datetime | None = None) -> dict[str, datetime]:
        """Agency → the earliest moment the register (systems or coverage) has data for it."""
        ...

    def system_history(self, system_id: str) -> list[HistoryEntry]:
        """Every version of one system as believed now, in valid-time order, with what each changed."""
        ...


class UserStore(Protocol):
    """Local accounts, their API tokens (hashed) and the service's own secrets."""

    def add_user(self, user: User, password_hash: str) -> User:
        """Create a user (ValueError: the name is taken)."""
        ...

    def user(self, name: str) -> User | None:
        """One user, or None."""
        ...

    def password_hash(self, name: str) -> str | None:
        """The stored hash of a user's password."""
        ...

    def users(self) -> list[User]:
        """Every user, by name."""
        ...

    def update_user(self, name: str, **values: Any) -> User:
        """Change columns of a user (disabled, role, password_hash, failed_logins, locked_until); KeyError."""
        ...

    def record_login(self, name: str, success: bool, now: datetime, max_failed: int, lockout: timedelta) -> User:
        """Count a login attempt; the `max_failed`-th failure in a row locks the account for `lockout`."""
        ...

    def add_token(self, token: ApiToken, secret_hash: str) -> ApiToken:
        """Keep a new token (its secret only as a hash)."""
        ...

    def token(self, token_id: str) -> tuple[ApiToken, str] | None:
        """A token and its secret's hash, or None."""
        ...

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Every token (of one user), newest first."""
        ...

    def revoke_token(self, token_id: str, now: datetime) -> ApiToken:
        """Revoke a token (KeyError: unknown)."""
        ...

    def touch_token(self, token_id: str, now: datetime) -> None:
        """Record a use of the token (at most one write a minute per token)."""
        ...

    def secret(self, name: str, make: str, now: datetime) -> str:
        """The service secret `name`, created with the value `make` when there is none."""
        ...


class JobHistory(Protocol):
    """Our own record of every scheduled or run-now job run: what the missed/stuck detection reads."""

    def start(self, run: JobRun) -> JobRun:
        """Record a run that starts; return it with its id."""
        ...

    def update(self, run_id: int, **values: Any) -> JobRun:
        """Change a run's columns while it runs."""
        ...

    def finish(self, run_id: int, outcome: JobOutcome, finished_at: datetime, error: str | None = None,
               **values: Any) -> JobRun:
        """Record how a run ended."""
        ...

    def runs(self, job: str | None = None, since: datetime | None = None, outcome: JobOutcome | None = None,
             limit: int = 100) -> list[JobRun]:
        """Runs newest first (by slot), optionally of one job, since a slot, with one outcome."""
        ...

    def get(self, run_id: int) -> JobRun | None:
        """One run, or None."""
        ...

    def acquire_lease(self, name: str, owner: RunOwner, now: datetime,
                      is_dead: Callable[[RunOwner, datetime], bool]) -> tuple[RunOwner, datetime] | None:
        """Take the lease `name` (one scheduler per store); None when taken, else the live holder and its
        last heartbeat."""
        ...

    def renew_lease(self, name: str, owner: RunOwner, now: datetime) -> bool:
        """Renew the holder's heartbeat; False when `owner` no longer holds it."""
        ...

    def release_lease(self, name: str, owner: RunOwner) -> None:
        """Give the lease up."""
        ...


class DrillStore(Protocol):
    """Tabletop drill sessions, their append-only event logs and the corrective actions they produced."""

    def create_session(self, session: DrillSession) -> DrillSession:
        """Keep a new session (ValueError: the id is taken)."""
        ...

    def session(self, session_id: str) -> DrillSession | None:
        """One session, or None."""
        ...

    def sessions(self, status: SessionStatus | None = None, since: date | None = None, until: date | None = None,
                 limit: int = 200) -> list[DrillSession]:
        """Sessions, newest drill date first, optionally of one status and with since <= drill date <= until."""
        ...

    def append_event(self, event: DrillEvent, status: SessionStatus | None = None) -> DrillEvent:
        """Append one event with the next seq (and the session's new status) atomically; KeyError: no session."""
        ...

    def events(self, session_id: str) -> list[DrillEvent]:
        """A session's events in order."""
        ...

    def finish_session(self, session_id: str, score: float, scorecard: dict[str, Any], now: datetime,
                       actions: Sequence[CorrectiveAction]) -> DrillSession:
        """Keep an ended session's scoring and its new corrective actions (ids already kept are left as they are)."""
        ...

    def actions(self, session_id: str | None = None, status: ActionStatus | None = None) -> list[CorrectiveAction]:
        """Corrective actions, by due date."""
        ...

    def action(self, action_id: str) -> CorrectiveAction | None:
        """One corrective action, or None."""
        ...

    def update_action(self, action_id: str, **values: Any) -> CorrectiveAction:
        """Change an action's columns (status, done_*, confirmed_*); KeyError when unknown."""
        ...


class ReportStore(Protocol):
    """The archive of generated reports to leadership (monthly, quarterly): never changed once kept."""

    def add(self, report: ArchivedReport) -> ArchivedReport:
        """Keep a generated report (ValueError: the id is taken)."""
        ...

    def get(self, report_id: str) -> ArchivedReport | None:
        """One report with its PDF, HTML and figures, or None."""
        ...

    def list(self, kind: ReportKind | None = None, period: str | None = None,
             limit: int = 200) -> builtins.list[ReportSummary]:
        """Reports newest first (by period, then by creation), optionally of one kind and one period."""
        ...

    def latest(self, kind: ReportKind, period: str, lang: str) -> ArchivedReport | None:
        """The newest report of one kind, period and language, or None."""
        ...


class AuditLog(Protocol):
    """The trail of every state change made through the services (append-only)."""

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Keep one entry; return it with its id."""
        ...

    def entries(self, action_prefix: str | None = None, subject: str | None = None,
                limit: int = 100) -> list[AuditEntry]:
        """The newest entries first, optionally only of actions starting with a prefix or of one subject."""
        ...


class Backend(Protocol):
    """One storage backend: its stores, opened together on one database."""

    @property
    def findings(self) -> FindingStore:
        """Runs, observations, findings."""
        ...

    @property
    def register(self) -> RegisterStore:
        """The register and coverage."""
        ...

    @property
    def audit(self) -> AuditLog:
        """The audit trail."""
        ...

    @property
    def users(self) -> UserStore:
        """Users, tokens, service secrets."""
        ...

    @property
    def jobs(self) -> JobHistory:
        """The job-run history."""
        ...

    @property
    def drills(self) -> DrillStore:
        """Drill sessions and corrective actions."""
        ...

    @property
    def reports(self) -> ReportStore:
        """The archive of generated reports."""
        ...

    @property
    def kpis(self) -> KpiHistory:
        """The KPIs computed day by day."""
        ...

    def job_store(self) -> Any:
        """An APScheduler 3 job store on the same database (the scheduler's jobs survive a restart)."""
        ...

    @property
    def location(self) -> str:
        """Where the data lives, for messages (a file path, a URL without credentials)."""
        ...

    @property
    def read_only(self) -> bool:
        """Opened read-only (the store cannot be written): reads work, a write raises StoreError."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
