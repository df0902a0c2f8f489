"""Scanning portals: select, scan, store, audit; the run's public document; the --fail-on rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from soc.core.models import FindingStatus, ScanRun, Severity
from soc.inventory import Inventory, Portal
from soc.scan.collectors import parse_only
from soc.scan.pipeline import PortalResult, ScanObserver, ScanReport, errors_of, run_scan, select_portals
from soc.schemas.scan import PortalChangeCounts, PortalOutput, ScanChanges, ScanFinding, ScanOutput
from soc.services.context import ServiceContext, ServiceError
from soc.services.sla import apply_deadlines

ACTIVE = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)
"""Statuses that still count against a portal: triaged findings (false positive, risk accepted) do not."""


def plan_scan(inventory: Inventory, source: str, portal_urls: Sequence[str], only: str | None
              ) -> tuple[list[Portal], tuple[str, ...]]:
    """The portals and collectors a scan request names; ServiceError when it names nothing to scan."""
    portals = select_portals(inventory, portal_urls)
    collectors = parse_only(only)
    if not portals:
        raise ServiceError(f"{source}: no portals to scan")
    return portals, collectors


def scan_portals(context: ServiceContext, inventory: Inventory, source: str, portals: Sequence[Portal],
                 collectors: tuple[str, ...], observer: ScanObserver | None = None, *,
                 on_begin: Callable[[ScanRun], None] | None = None,
                 start_after: Mapping[str, float] | None = None) -> ScanReport:
    """Scan and store the portals; the run's start and end are in the audit log (also when interrupted).

    `on_begin` hears of the run as soon as it exists (the scheduler keeps its id); `start_after` spreads
    the portals' starts (URL → seconds after the start)."""
    started: list[ScanRun] = []

    def begun(run: ScanRun) -> None:
        started.append(run)
        context.audit("scan.run.start", run.id, after={"status": run.status.value, "inventory": source,
                                                       "portals": len(portals), "collectors": list(collectors)})
        if on_begin is not None:
            on_begin(run)

    try:
        report = run_scan(inventory, context.backend.findings, context.settings, context.clock, portals, collectors,
                          inventory_name=source, observer=observer, on_begin=begun, start_after=start_after)
    except BaseException:
        if started:
            _audit_finish(context, context.backend.findings.get_run(started[0].id) or started[0])
        raise
    _audit_finish(context, report.run, report.totals())
    apply_deadlines(context, inventory)  # every new or reopened finding gets its SLA deadline at once
    return report


def _audit_finish(context: ServiceContext, run: ScanRun, totals: dict[str, int] | None = None) -> None:
    context.audit("scan.run.finish", run.id, before={"status": "running"},
                  after={"status": run.status.value, "portals_done": run.portals_done, **(totals or {})})


def fails_on(context: ServiceContext, run_id: str, threshold: Severity) -> bool:
    """--fail-on: some finding of the run at `threshold` or worse is still active (not triaged away)."""
    return any(f.status in ACTIVE and f.severity.rank <= threshold.rank
               for f in context.backend.findings.run_findings(run_id))


def scan_output(report: ScanReport) -> ScanOutput:
    """The documented `soc scan --json` document of a report."""
    totals = report.totals()
    return ScanOutput(run=report.run, collectors=list(report.collectors),
                      changes=ScanChanges(**totals), portals=[_portal_output(r) for r in report.portals])


def _portal_output(result: PortalResult) -> PortalOutput:
    change = {fp: "new" for fp in result.changes.new} | {fp: "reopened" for fp in result.changes.reopened}
    tls, assessment, portal = result.tls, result.assessment, result.portal
    return PortalOutput(
        url=portal.url, host=portal.host, port=portal.port,
        address=tls.address if tls else (str(portal.address) if portal.address else None),
        agency=portal.agency, name=portal.name, reachable=tls.unreachable is None if tls else None,
        complete=assessment.complete, collectors=assessment.collectors, grade=assessment.tls_grade,
        grade_without_trust=assessment.grade_without_trust, grade_reasons=assessment.reasons, score=assessment.score,
        category_scores=assessment.category_scores, protocols=tls.protocols if tls else {},
        errors=errors_of(result),
        findings=[
            ScanFinding(check_id=f.check_id, severity=f.severity, title=f.title_vi, title_en=f.title_en,
                        evidence=f.evidence, remediation=f.remediation_vi, remediation_en=f.remediation_en,
                        fingerprint=f.fingerprint, change=change.get(f.fingerprint, "still_open"))  # type: ignore[arg-type]
            for f in sorted(result.findings, key=lambda f: (f.severity.rank, f.check_id))
        ],
        changes=PortalChangeCounts(new=len(result.changes.new) + len(result.changes.reopened),
                                   still_open=len(result.changes.still_open), resolved=len(result.changes.resolved)),
        resolved=result.changes.resolved,
    )
