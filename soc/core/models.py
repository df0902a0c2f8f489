"""Domain models shared by collectors, checks, the store and the CLI.

Everything here is plain typed data (pydantic); nothing touches the network or the disk.
Times are timezone-aware and stored in UTC.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """How bad a finding is; ordered from worst to mildest."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical … 4 for info, for sorting worst first."""
        return list(Severity).index(self)


class FindingStatus(StrEnum):
    """Where a finding is in its triage lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    RISK_ACCEPTED = "risk_accepted"


class RunStatus(StrEnum):
    """State of a scan run. A run left `running` by a killed process is turned `incomplete` when the next
    command opens the store (`soc.services.context.mark_abandoned_runs`)."""

    RUNNING = "running"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"


class Finding(BaseModel):
    """What a check concluded about one portal: one check id, one discriminating detail."""

    model_config = ConfigDict(frozen=True)

    portal_url: str
    check_id: str
    severity: Severity
    title_vi: str
    title_en: str
    evidence: str
    remediation_vi: str = ""
    remediation_en: str = ""
    detail: str = ""
    """Distinguishes two findings of the same check on one portal (e.g. a certificate fingerprint)."""

    @property
    def fingerprint(self) -> str:
        """Stable identity across scans: portal + check id + discriminating detail."""
        raw = f"{self.portal_url}\x1f{self.check_id}\x1f{self.detail}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]


class Observation(BaseModel):
    """Raw output of one collector for one portal, kept for audit."""

    collector: str
    portal_url: str
    observed_at: datetime
    complete: bool
    """True when every probe of the collector gave an answer; only complete observations resolve findings."""
    unjudged: list[str] = Field(default_factory=list)
    """Check ids (or prefixes ending in '.') this observation could not judge even though complete
    (a revocation responder down, say): their unseen findings are left as they are."""
    data: dict[str, Any] = Field(default_factory=dict)


class StoredFinding(BaseModel):
    """A finding as the store keeps it, with its lifecycle."""

    fingerprint: str
    portal_url: str
    check_id: str
    severity: Severity
    title_vi: str
    title_en: str
    evidence: str
    remediation_vi: str
    remediation_en: str
    detail: str
    status: FindingStatus
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    last_run_id: str
    status_note: str | None = None
    opened_at: datetime | None = None
    """Start of the current open period (first seen, or reopened): the SLA clock starts here."""
    due_at: datetime | None = None
    """SLA deadline, fixed when the finding opens (None: no SLA for its severity, or not yet set)."""
    warn_at: datetime | None = None
    """From here until `due_at` the finding is about to breach its SLA (pre-breach)."""
    assignee: str | None = None
    """Agency the finding is assigned to (None: the owning agency of its portal)."""
    risk_expires: datetime | None = None
    """A risk acceptance ends here: the finding reopens by itself."""
    risk_approver: str | None = None
    """Who approved the risk acceptance."""


class ScanRun(BaseModel):
    """One execution of `soc scan`."""

    id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus
    inventory: str
    portal_count: int
    portals_done: int = 0


class RunOwner(BaseModel):
    """The process that runs a scan, kept with the run so that a run left by a killed process is known at once."""

    model_config = ConfigDict(frozen=True)

    host: str
    pid: int
    started: str | None = None
    """Opaque token of the process's start (on Linux its boot and start tick): a reused pid has another."""


class RunningRun(BaseModel):
    """A run still marked `running`, with what tells whether its process lives: owner and last heartbeat."""

    run: ScanRun
    owner: RunOwner | None = None
    """None for runs begun before owners were recorded (store revision 0007)."""
    heartbeat_at: datetime | None = None
    """When the owner last said it was alive (updated every few seconds while the scan runs)."""


class PortalChanges(BaseModel):
    """What one portal's scan changed in the store."""

    new: list[str] = Field(default_factory=list)
    """Fingerprints opened for the first time."""
    reopened: list[str] = Field(default_factory=list)
    still_open: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)


class PortalScan(BaseModel):
    """One portal's assessment in one run: which collectors answered, its TLS grade and overall score."""

    run_id: str
    portal_url: str
    recorded_at: datetime
    collectors: dict[str, bool]
    """Collector → its observation was complete."""
    tls_grade: str | None = None
    grade_without_trust: str | None = None
    score: int | None = None
    category_scores: dict[str, int] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    label_valid: bool | None = None
    """The trust label was verified valid (None: not assessed in this run)."""

    @property
    def complete(self) -> bool:
        """Every collector that ran answered completely."""
        return bool(self.collectors) and all(self.collectors.values())


class FindingEvent(BaseModel):
    """One entry of a finding's status history."""

    fingerprint: str
    at: datetime
    run_id: str | None
    actor: str
    old_status: FindingStatus | None
    new_status: FindingStatus
    note: str | None


class AuditEntry(BaseModel):
    """One state change made through the services: who, when, what, before → after."""

    id: int | None = None
    """Set by the store."""
    at: datetime
    actor: str
    action: str
    """Dotted verb, e.g. 'finding.triage', 'register.systems.import', 'scan.run.finish'."""
    subject: str
    """What changed: a fingerprint, a run id, a file name."""
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    note: str | None = None


class Role(StrEnum):
    """What a user (or one of their API tokens) may do."""

    ADMIN = "admin"
    """Everything, including users, tokens, settings and the audit log."""
    OPERATOR = "operator"
    """Read, triage findings, run scans and jobs, import the register."""
    INCIDENT = "incident"
    """Read, run incident-response drills."""
    VIEWER = "viewer"
    """Read only (leadership)."""


class User(BaseModel):
    """A local account (its password hash never leaves the store)."""

    name: str
    role: Role
    disabled: bool = False
    created_at: datetime
    last_login: datetime | None = None
    failed_logins: int = 0
    locked_until: datetime | None = None


class ApiToken(BaseModel):
    """A per-user API token as listed (the secret is shown once, at creation, and stored hashed)."""

    id: str
    user: str
    role: Role
    """At most the owner's permissions."""
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used: datetime | None = None
    note: str | None = None


class JobOutcome(StrEnum):
    """How one run of a scheduled job ended."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Ran but had nothing to do (e.g. the monthly report before its generator exists)."""


class JobRun(BaseModel):
    """One run of a scheduled (or run-now) job, kept by us, not by APScheduler."""

    id: int | None = None
    job: str
    slot: datetime
    """The scheduled time it ran for (for 'run now': the moment it was asked)."""
    started_at: datetime
    finished_at: datetime | None = None
    outcome: JobOutcome = JobOutcome.RUNNING
    error: str | None = None
    scan_run_id: str | None = None
    trigger: str = "schedule"
    """'schedule' or 'manual' (run now) or 'startup'."""
    host: str | None = None
    pid: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
