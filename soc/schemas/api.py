"""The REST API's request and response bodies (`/api/v1`): versioned with the API path, fields only added.

Requests forbid unknown fields (a typo is an error, never silently ignored); responses carry the stored
models of `soc.core.models` with what the API adds (SLA state, owning agency).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from soc.compliance.models import CoverageRecord, SystemRecord
from soc.core.models import (
    ApiToken,
    AuditEntry,
    FindingEvent,
    FindingStatus,
    JobRun,
    Role,
    ScanRun,
    StoredFinding,
    User,
)
from soc.findings.sla import SlaState
from soc.schemas.jobs import JobInfo


class Request(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class FindingItem(StoredFinding):
    """A finding as the API lists it."""

    sla_state: SlaState
    agency: str | None = None
    """The owning agency: the assignee, else the portal's or system's agency."""


class FindingPage(BaseModel):
    """One page of findings; `next` is the cursor of the following page (null: this was the last)."""

    items: list[FindingItem]
    next: str | None = None


class FindingDetail(BaseModel):
    """One finding with its history (status changes, comments, assignments)."""

    finding: FindingItem
    history: list[FindingEvent]


class TransitionRequest(Request):
    """Move a finding: acknowledge, false positive, accept a risk, resolve, open again."""

    status: FindingStatus
    comment: str | None = Field(default=None, max_length=4000)
    """Required except to acknowledge: the reason, kept in the finding's history."""
    expires: date | None = None
    """Risk acceptance only: the day it ends (the finding reopens by itself then)."""
    approver: str | None = Field(default=None, max_length=200)
    """Risk acceptance only: who accepts the risk."""


class CommentRequest(Request):
    """A comment in a finding's history."""

    comment: str = Field(min_length=1, max_length=4000)


class AssignRequest(Request):
    """Assign a finding to an agency (null: back to its portal's owner)."""

    agency: str | None = Field(default=None, max_length=64)


class LoginRequest(Request):
    """Sign in with a local account."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    """Who is signed in; `csrf_token` goes in the X-CSRF-Token header (or a form's csrf_token field) of every
    state-changing request made with the session cookie."""

    user: str
    role: Role
    via: str
    csrf_token: str | None = None


class UserCreateRequest(Request):
    """A new local account."""

    name: str = Field(min_length=2, max_length=64)
    role: Role
    password: str = Field(min_length=12, max_length=1024)


class PasswordRequest(Request):
    """A new password."""

    password: str = Field(min_length=12, max_length=1024)


class UserList(BaseModel):
    """Every local account."""

    items: list[User]


class TokenCreateRequest(Request):
    """A new API token."""

    user: str = Field(min_length=2, max_length=64)
    role: Role | None = None
    """Default: the user's role; never more than it."""
    expires: date | None = None
    """Last day it works (default: `auth.token_days` from today)."""
    note: str | None = Field(default=None, max_length=200)


class TokenCreated(BaseModel):
    """A new token: `secret` is shown this once and never again."""

    token: ApiToken
    secret: str


class TokenList(BaseModel):
    """API tokens, newest first (never their secrets)."""

    items: list[ApiToken]


class AuditList(BaseModel):
    """Audit entries, newest first."""

    items: list[AuditEntry]


class RunList(BaseModel):
    """Scan runs, newest first."""

    items: list[ScanRun]


class SeverityCounts(BaseModel):
    """Open findings by severity."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    info: int = 0


class PortalItem(BaseModel):
    """A portal of the inventory with its latest assessment and open findings."""

    id: str
    """Stable short id of the URL (path parameter of /portals/{id})."""
    url: str
    agency: str
    name: str | None = None
    system: str | None = None
    grade: str | None = None
    grade_without_trust: str | None = None
    score: int | None = None
    grade_reasons: list[str] = Field(default_factory=list)
    label_valid: bool | None = None
    last_scan: datetime | None = None
    last_complete_scan: datetime | None = None
    last_run_id: str | None = None
    open_findings: SeverityCounts = Field(default_factory=SeverityCounts)


class PortalList(BaseModel):
    """Every portal of the inventory."""

    items: list[PortalItem]


class PortalDetail(BaseModel):
    """One portal, its findings and its recent observations."""

    portal: PortalItem
    findings: list[FindingItem]
    observations: list[dict[str, Any]] = Field(default_factory=list)
    """The raw collector output of its latest run (untrusted text from the portal)."""


class JobList(BaseModel):
    """Every scheduled job."""

    items: list[JobInfo]
    scheduler_running: bool


class JobRunList(BaseModel):
    """Job runs, newest first."""

    items: list[JobRun]


class JobStarted(BaseModel):
    """A job started by hand ("run now"): follow it in `runs` (its id there is `id`)."""

    id: int
    """The job run's id."""
    job: str
    runs: str
    """Where the job's runs are listed."""
    run: JobRun | None = None


class SystemList(BaseModel):
    """The register of information systems as it stood on `as_of`, as known now."""

    as_of: date
    items: list[SystemRecord]


class CoverageList(BaseModel):
    """Anti-malware coverage of each agency as it stood on `as_of`, as known now."""

    as_of: date
    items: list[CoverageRecord]


class Health(BaseModel):
    """`GET /healthz`: 200 when the store and the scheduler are up, 503 otherwise."""

    status: Literal["ok", "degraded"]
    store: dict[str, Any]
    scheduler: dict[str, Any]


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    """Each invalid field: `loc` (where), `msg` (what is wrong)."""

