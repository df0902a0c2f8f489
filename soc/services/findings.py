"""Findings: query (filters, sort, cursor pages), look one up by a fingerprint prefix, triage."""

from __future__ import annotations

from collections.abc import Sequence

from soc.core.models import FindingEvent, FindingStatus, Severity, StoredFinding
from soc.inventory import normalise_portal_url
from soc.schemas.findings import FindingsOutput
from soc.services.context import ServiceContext, ServiceError
from soc.store import FindingQuery, Page


def portal_key(portal: str) -> str:
    """A portal URL as the store keys it; ServiceError for one that is not a portal URL."""
    try:
        return normalise_portal_url(portal)
    except ValueError as exc:
        raise ServiceError(f"--portal {portal}: {exc}") from None


def query_findings(context: ServiceContext, query: FindingQuery) -> Page[StoredFinding]:
    """One page of findings (CursorError, a ValueError, for a cursor this store did not hand out)."""
    return context.backend.findings.query_findings(query)


def list_findings(context: ServiceContext, statuses: Sequence[FindingStatus] = (),
                  severities: Sequence[Severity] = (), check_ids: Sequence[str] = (),
                  portal: str | None = None) -> FindingsOutput:
    """Every finding matching the filters, worst first, as the `soc.findings` document."""
    query = FindingQuery(statuses=tuple(statuses), severities=tuple(severities), check_ids=tuple(check_ids),
                         portal_urls=(portal_key(portal),) if portal else ())
    return FindingsOutput(findings=query_findings(context, query).items)


def find_finding(context: ServiceContext, prefix: str) -> StoredFinding:
    """The one finding whose fingerprint starts with `prefix`; ServiceError when none or several do."""
    if not prefix:
        raise ServiceError("a finding id (or a unique prefix of one) is required")
    matches = context.backend.findings.query_findings(FindingQuery(fingerprint_prefix=prefix, limit=2)).items
    if len(matches) != 1:
        raise ServiceError(f"{prefix}: {'no finding' if not matches else 'several findings'} with this id")
    return matches[0]


def triage(context: ServiceContext, prefix: str, status: FindingStatus, note: str | None = None) -> StoredFinding:
    """Set a finding's status by hand (acknowledge, false positive, accept risk, resolve…), audited."""
    before = find_finding(context, prefix)
    after = context.backend.findings.set_status(before.fingerprint, status, context.actor, note)
    context.audit("finding.triage", after.fingerprint,
                  before={"status": before.status.value, "note": before.status_note},
                  after={"status": after.status.value, "note": after.status_note}, note=note)
    return after


def history(context: ServiceContext, prefix: str) -> list[FindingEvent]:
    """A finding's status history, oldest first."""
    return context.backend.findings.events(find_finding(context, prefix).fingerprint)
