"""The monthly and quarterly report to the province's leaders: its data gathered from the store, its HTML and PDF.

The KPI figures are `soc.services.compliance.kpis(context, inventory, <last day of the period>)` — exactly what
`soc compliance --as-of <last day> --json` prints. The rest is read through the same store protocols and
services as the dashboard (portal assessments, findings and their SLA, drill sessions, the register).
Findings keep only their current state: "open at the period's end" is what is open now or was resolved after
it, opened by then.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from reports import monthly
from reports.monthly import (
    CertificateRow,
    CoverageRow,
    DrillRow,
    FindingRow,
    Kind,
    PortalRow,
    PortalSecurity,
    ReportData,
)
from soc.compliance.kpi import ASSESSMENT_WINDOW
from soc.core.clock import end_of_day, local_date, today
from soc.core.drill_records import SessionStatus
from soc.core.models import FindingStatus, PortalScan, Severity, StoredFinding
from soc.core.observations import TlsObservation
from soc.inventory import Inventory
from soc.services.compliance import kpis
from soc.services.context import ServiceContext, ServiceError
from soc.services.drills import drills_held
from soc.services.findings import agency_of, owners, query_findings
from soc.store import FindingQuery

SERIOUS = (Severity.CRITICAL, Severity.HIGH)


def monthly_data(context: ServiceContext, inventory: Inventory, month: date) -> ReportData:
    """The report of `month` (its first day); ServiceError for a month not begun or before any plan."""
    if month.day != 1:
        raise ServiceError(f"month {month.isoformat()}: give the first day of the month")
    start, end = monthly.month_period(month)
    return _gather(context, inventory, "monthly", start, end)


def quarterly_data(context: ServiceContext, inventory: Inventory, year: int, quarter: int) -> ReportData:
    """The report of quarter 1–4 of `year`."""
    try:
        start, end = monthly.quarter_period(year, quarter)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    return _gather(context, inventory, "quarterly", start, end)


def render_html(data: ReportData, lang: str = "vi") -> str:
    """The report as one self-contained HTML page, Vietnamese unless lang='en'."""
    return monthly.render_html(data, lang)


def render_pdf(data: ReportData, lang: str = "vi") -> bytes:
    """The report as an A4 PDF (fonts embedded; nothing loaded but the templates directory)."""
    from soc.documents import html_to_pdf  # WeasyPrint costs ~0.5 s to import: only when a PDF is made

    return html_to_pdf(monthly.render_html(data, lang), base_url=str(monthly.TEMPLATES))


def figures(data: ReportData) -> dict[str, Any]:
    """Every number the report shows, JSON-able (kept with the archived document)."""
    return monthly.figures(data)


def _gather(context: ServiceContext, inventory: Inventory, kind: Kind, start: date, end: date) -> ReportData:
    now_day = today(context.clock)
    if start > now_day:
        raise ServiceError(f"{start:%m/%Y}: the period has not begun (today is {now_day:%d/%m/%Y})")
    to_date = end > now_day
    end = min(end, now_day)
    before_end = monthly.previous_period(kind, start)[1]
    current = kpis(context, inventory, end)
    previous = kpis(context, inventory, before_end)
    moment = end_of_day(end)
    register = context.backend.register
    systems = register.systems_as_of(moment)
    names = {a.id: a.name for a in inventory.agencies}
    portal_names = {p.url: p.name or p.url for p in inventory.portals}
    owned = owners(context, inventory)
    findings, accepted = _findings(context, moment, owned)
    open_counts: dict[str, Counter[str]] = {}
    for finding in findings:
        open_counts.setdefault(finding.subject, Counter())[finding.severity] += 1
    now_scans, before_scans = _assessments(context, inventory, moment, end_of_day(before_end))
    rows = [PortalRow(p.url, portal_names[p.url], p.agency, scan.tls_grade if scan else None,
                      scan.score if scan else None, scan.label_valid if scan else None,
                      open_counts.get(p.url, Counter())["critical"], open_counts.get(p.url, Counter())["high"])
            for p in inventory.portals for scan in [now_scans.get(p.url)]]
    labelled = next((k.numerator for k in current.province.kpis if k.id == "portals_labelled"), 0)
    portals = PortalSecurity(
        total=len(rows), graded=sum(r.grade is not None for r in rows), grades=monthly.grade_counts(rows),
        labelled=labelled, top_risks=monthly.top_risks(rows),
        expiring=_expiring(context, inventory, now_scans, end))
    coverage = tuple(sorted((CoverageRow(c.agency, names.get(c.agency, c.agency), c.total_computers, c.protected,
                                         c.reporting_to_ncsc) for c in register.coverage_as_of(moment)),
                            key=lambda c: c.name))
    sessions = context.backend.drills.sessions(status=SessionStatus.ENDED, since=start, until=end, limit=1000)
    drills = tuple(DrillRow(s.id, s.title_vi, s.title_en, s.drill_date, s.target_agency, s.target_system,
                            s.target_level, s.score) for s in sorted(sessions, key=lambda s: (s.drill_date, s.id)))
    grades_now = {url: scan.tls_grade for url, scan in now_scans.items()}
    grades_before = {url: scan.tls_grade for url, scan in before_scans.items()}
    return ReportData(
        kind=kind, start=start, end=end, issued=now_day, to_date=to_date, current=current, previous=previous,
        agencies=monthly.agency_rows(current), portals=portals, approvals=monthly.approval_rows(current, systems),
        coverage=coverage, drills=drills, drills_in_year=len(drills_held(context, end)),
        findings=tuple(findings), breached=sum(f.breached for f in findings), sla=current.province.sla,
        accepted=tuple(accepted),
        movers=monthly.movers(current, previous, grades_now, grades_before, portal_names),
        recommendations=monthly.recommendations(current, systems, portal_names),
    )


def _finding_row(finding: StoredFinding, moment: datetime, owned: dict[str, str]) -> FindingRow:
    opened = finding.opened_at or finding.first_seen
    return FindingRow(
        subject=finding.portal_url, agency=agency_of(finding, owned), severity=finding.severity.value,
        title_vi=finding.title_vi, title_en=finding.title_en, opened=local_date(opened),
        age_days=max(0, (moment - opened).days), due=None if finding.due_at is None else local_date(finding.due_at),
        breached=finding.due_at is not None and finding.due_at < moment, status=finding.status.value)


def _findings(context: ServiceContext, moment: datetime, owned: dict[str, str]
              ) -> tuple[list[FindingRow], list[FindingRow]]:
    """Critical / high findings open at `moment` (worst and oldest first), and findings accepted as a risk."""
    still = query_findings(context, FindingQuery(statuses=(FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED),
                                                 severities=SERIOUS, first_seen_before=moment)).items
    closed_later = query_findings(context, FindingQuery(statuses=(FindingStatus.RESOLVED,), severities=SERIOUS,
                                                        first_seen_before=moment, resolved_after=moment)).items
    serious = [f for f in [*still, *closed_later] if (f.opened_at or f.first_seen) <= moment]
    rows = sorted((_finding_row(f, moment, owned) for f in serious),
                  key=lambda r: (r.severity != "critical", -r.age_days, r.subject))
    accepted = query_findings(context, FindingQuery(statuses=(FindingStatus.RISK_ACCEPTED,),
                                                    first_seen_before=moment)).items
    return rows, sorted((_finding_row(f, moment, owned) for f in accepted),
                        key=lambda r: (Severity(r.severity).rank, r.subject))


def _shown(scans: list[PortalScan]) -> PortalScan | None:
    """The assessment a portal is shown with: its newest, or its newest complete one when the newest could not
    assess everything (the portal list's rule)."""
    if not scans:
        return None
    newest = scans[-1]
    complete = next((s for s in reversed(scans) if s.complete), None)
    return newest if newest.complete or complete is None else complete


def _assessments(context: ServiceContext, inventory: Inventory, moment: datetime, before: datetime
                 ) -> tuple[dict[str, PortalScan], dict[str, PortalScan]]:
    """Each portal's assessment in the 30-day window up to `moment`, and up to `before` (the previous period)."""
    store = context.backend.findings
    now: dict[str, PortalScan] = {}
    earlier: dict[str, PortalScan] = {}
    for portal in inventory.portals:
        history = store.portal_history(portal.url, before - ASSESSMENT_WINDOW)
        for kept, end in ((now, moment), (earlier, before)):
            shown = _shown([s for s in history if end - ASSESSMENT_WINDOW < s.recorded_at <= end])
            if shown is not None:
                kept[portal.url] = shown
    return now, earlier


def _expiring(context: ServiceContext, inventory: Inventory, scans: dict[str, PortalScan], end: date
              ) -> tuple[CertificateRow, ...]:
    """Leaf certificates seen by the period's assessments that expire by the end of the next month."""
    next_start = date.fromordinal(monthly.month_period(end)[1].toordinal() + 1)
    limit = end_of_day(monthly.month_period(next_start)[1])
    agency = {p.url: p.agency for p in inventory.portals}
    rows = []
    for url, scan in scans.items():
        tls = next((o for o in context.backend.findings.observations(scan.run_id, url) if o.collector == "tls"), None)
        if tls is None:
            continue
        try:
            chain = TlsObservation.model_validate(tls.data).chain
        except ValidationError:  # a collector that died stores its error instead
            continue
        if chain and chain[0].not_after <= limit:
            leaf = chain[0]
            rows.append(CertificateRow(url, agency[url], leaf.subject[:200], local_date(leaf.not_after),
                                       leaf.not_after <= end_of_day(end)))
    return tuple(sorted(rows, key=lambda r: (r.not_after, r.url)))
