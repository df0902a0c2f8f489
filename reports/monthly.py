"""The monthly / quarterly compliance report to the province's leaders: what it shows, and its HTML.

`ReportData` is everything the report shows for one period, gathered by `soc.services.reports` from the same
services as `soc compliance --as-of <last day> --json` (the KPI figures are that ComplianceReport, unchanged).
The builders here are pure (no store, no clock): recommendations, movers, approval progress, the grade
distribution. `render_html` writes the report with an autoescaping Jinja2 template (reports/templates/
monthly.html), Vietnamese first; `soc.documents.html_to_pdf` prints it. Names from the register, the
inventory and the portals are hostile text: they reach the template as plain strings and are escaped there.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

from markupsafe import Markup

from soc.charts import GRADES, Bar, bar_chart
from soc.compliance.kpi import ComplianceReport, Kpi, Scope, SlaFigures, TargetSpec, plan_for
from soc.compliance.models import ApprovalStatus, SystemRecord
from soc.core.text import Text
from soc.core.untrusted import visible
from soc.printing import long_date, print_css, templates

Kind = Literal["monthly", "quarterly"]
Language = Literal["vi", "en"]
TEMPLATES = Path(__file__).resolve().parent / "templates"
"""The report's template and stylesheet (the only files its PDF may load)."""
TOP_RISKS = 10
MOVERS = 12
CANDIDATES = 8
"""Systems or portals named per recommendation (the rest are counted)."""
CHART_BARS = 25
"""Agencies drawn in the approvals chart (the lowest rates, when there are more)."""
FINDINGS_SHOWN = 40
"""Open critical / high findings listed (the rest are counted); the figures keep the totals."""
PROGRESS = (ApprovalStatus.APPRAISED, ApprovalStatus.UNDER_APPRAISAL, ApprovalStatus.SUBMITTED,
            ApprovalStatus.DOSSIER_DRAFTED, ApprovalStatus.RETURNED, ApprovalStatus.NOT_STARTED,
            ApprovalStatus.REJECTED)
"""Unapproved systems nearest to approval first: the ones a recommendation names."""
STATUS_TITLES: dict[str, Text] = {
    "not_started": Text(vi="Chưa lập hồ sơ", en="Not started"),
    "dossier_drafted": Text(vi="Đang lập hồ sơ", en="Dossier drafted"),
    "submitted": Text(vi="Đã trình", en="Submitted"),
    "under_appraisal": Text(vi="Đang thẩm định", en="Under appraisal"),
    "appraised": Text(vi="Đã thẩm định", en="Appraised"),
    "approved": Text(vi="Đã phê duyệt", en="Approved"),
    "returned": Text(vi="Trả lại hồ sơ", en="Returned"),
    "rejected": Text(vi="Không phê duyệt", en="Rejected"),
}


SHORT_TITLES: dict[str, Text] = {
    "systems_approved": Text(vi="HTTT được phê duyệt cấp độ", en="Systems with an approved level"),
    "systems_requirements_met": Text(vi="HTTT đáp ứng yêu cầu", en="Systems meeting requirements"),
    "portals_assessed": Text(vi="Cổng/trang được đánh giá", en="Portals assessed"),
    "portals_labelled": Text(vi="Cổng/trang gắn nhãn TNM", en="Portals with a trust label"),
    "computers_antimalware": Text(vi="Máy tính PCMĐ kết nối NCSC", en="Computers reporting to NCSC"),
    "drills_held": Text(vi="Diễn tập", en="Drills"),
    "drills_level3": Text(vi="HT cấp độ 3+ được diễn tập", en="Level-3+ systems drilled"),
}
"""Short names of the targets for charts and narrow columns."""


@dataclass(frozen=True)
class FindingGroup:
    """Findings of one subject with the same severity and title, shown as one row of the report."""

    first: FindingRow
    count: int
    breached: int
    oldest: int


@dataclass(frozen=True)
class AgencyRow:
    """One agency's KPIs for the period (from the ComplianceReport) and how many targets it meets."""

    id: str
    name: str
    kpis: tuple[Kpi, ...]
    met: int
    measured: int
    note: str | None = None


@dataclass(frozen=True)
class PortalRow:
    """One portal as the period's last assessment saw it (within the 30-day window)."""

    url: str
    name: str
    agency: str
    grade: str | None
    score: int | None
    label_valid: bool | None
    critical: int = 0
    high: int = 0


@dataclass(frozen=True)
class CertificateRow:
    """A portal certificate that expires by the end of the month after the period (or has already)."""

    url: str
    agency: str
    subject: str
    not_after: date
    expired: bool


@dataclass(frozen=True)
class PortalSecurity:
    """Grades, trust labels, top risks and expiring certificates at the period's end."""

    total: int
    graded: int
    grades: tuple[tuple[str, int], ...]
    """Every grade of GRADES with its count, best first."""
    labelled: int
    top_risks: tuple[PortalRow, ...]
    expiring: tuple[CertificateRow, ...]


@dataclass(frozen=True)
class MissingSystem:
    """A system whose security level is not approved yet."""

    id: str
    name: str
    status: str
    level: int | None


@dataclass(frozen=True)
class ApprovalRow:
    """Approval progress of one agency: approved / registered, and the systems still missing."""

    agency: str
    name: str
    approved: int
    total: int
    missing: tuple[MissingSystem, ...]


@dataclass(frozen=True)
class CoverageRow:
    """Anti-malware coverage of one agency (the register's latest figures by the period's end)."""

    agency: str
    name: str
    total: int
    protected: int
    reporting: int


@dataclass(frozen=True)
class DrillRow:
    """An incident-response drill held in the period, with its score."""

    session: str
    title_vi: str
    title_en: str
    day: date
    agency: str | None
    system: str | None
    level: int
    score: float | None


@dataclass(frozen=True)
class FindingRow:
    """A finding open at the period's end (critical / high), or accepted as a risk."""

    subject: str
    agency: str | None
    severity: str
    title_vi: str
    title_en: str
    opened: date
    age_days: int
    due: date | None
    breached: bool
    status: str


@dataclass(frozen=True)
class Mover:
    """An agency's KPI or a portal's grade that moved since the previous period."""

    kind: Literal["agency", "portal"]
    name: str
    measure: Text
    before: str
    after: str
    improved: bool
    size: float
    """How far it moved (percentage points, or grade steps), to order the movers."""


@dataclass(frozen=True)
class Recommendation:
    """A scope below a target and what would bring it over: `needed` more members, of `candidates`."""

    agency: str
    name: str
    kpi: str
    title: Text
    short: Text
    numerator: int
    denominator: int
    target: str
    needed: int
    unit: Literal["systems", "portals", "computers", "drills"]
    candidates: tuple[str, ...]
    more: int
    """Candidates not named (beyond CANDIDATES)."""


@dataclass(frozen=True)
class ReportData:
    """Everything one period's report shows; the KPI figures are `current` (the last day) and `previous`."""

    kind: Kind
    start: date
    end: date
    """The last day of the period: the KPIs are `soc compliance --as-of <end>`."""
    issued: date
    to_date: bool
    """The period has not ended yet: the figures are up to `end` (today)."""
    current: ComplianceReport
    previous: ComplianceReport
    """The KPIs on the previous period's last day (the 'change' column compares with these)."""
    agencies: tuple[AgencyRow, ...]
    portals: PortalSecurity
    approvals: tuple[ApprovalRow, ...]
    coverage: tuple[CoverageRow, ...]
    drills: tuple[DrillRow, ...]
    drills_in_year: int
    findings: tuple[FindingRow, ...]
    breached: int
    sla: SlaFigures | None
    accepted: tuple[FindingRow, ...]
    movers: tuple[Mover, ...]
    recommendations: tuple[Recommendation, ...]


# --- periods -----------------------------------------------------------------------------------------------------


def month_period(month: date) -> tuple[date, date]:
    """The first and last day of `month`'s month."""
    return month.replace(day=1), month.replace(day=calendar.monthrange(month.year, month.month)[1])


def quarter_period(year: int, quarter: int) -> tuple[date, date]:
    """The first and last day of quarter 1–4 of `year` (ValueError for another quarter)."""
    if quarter not in (1, 2, 3, 4):
        raise ValueError(f"quarter {quarter}: a quarter is 1 to 4")
    first = date(year, 3 * quarter - 2, 1)
    return first, month_period(date(year, 3 * quarter, 1))[1]


def previous_period(kind: Kind, start: date) -> tuple[date, date]:
    """The period before the one starting on `start`."""
    end = start - timedelta(days=1)
    if kind == "monthly":
        return month_period(end)
    return quarter_period(end.year, (end.month - 1) // 3 + 1)


# --- numbers -----------------------------------------------------------------------------------------------------


def percent_of(numerator: int, denominator: int) -> Decimal | None:
    """numerator/denominator × 100 with one decimal, rounded half up from the exact fraction (None: 0/0)."""
    if denominator == 0:
        return None
    return (Decimal(100 * numerator) / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def decimal_text(value: Decimal | float, lang: Language) -> str:
    """One decimal, a decimal comma in Vietnamese ('80,0'), a point in English ('80.0')."""
    text = f"{Decimal(str(value)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}"
    return text.replace(".", ",") if lang == "vi" else text


def kpi_percent(kpi: Kpi, lang: Language) -> str:
    """A rate KPI as '80,0%' (from its exact numerator/denominator); '—' for 0/0 or a count."""
    value = percent_of(kpi.numerator, kpi.denominator) if kpi.kind == "rate" else None
    return "—" if value is None else decimal_text(value, lang) + "%"


def kpi_value(kpi: Kpi, lang: Language) -> str:
    """What the value column shows: the percentage of a rate, the count of a count."""
    return kpi_percent(kpi, lang) if kpi.kind == "rate" else str(kpi.numerator)


def change_of(current: Kpi, previous: Kpi | None) -> Decimal | None:
    """Percentage points (or count) since the previous period (None when either side has no figure)."""
    if previous is None:
        return None
    if current.kind == "count":
        return Decimal(current.numerator - previous.numerator)
    now, before = percent_of(current.numerator, current.denominator), percent_of(previous.numerator,
                                                                                 previous.denominator)
    return None if now is None or before is None else now - before


def needed_for(spec: TargetSpec, numerator: int, denominator: int) -> int:
    """How many more members the numerator needs to meet the target (integer arithmetic, like the KPIs)."""
    if spec.kind == "count":
        goal = (spec.count or 0) + (1 if spec.op == ">" else 0)
        return max(0, goal - numerator)
    percent = spec.percent or 0
    goal = percent * denominator // 100 + 1 if spec.op == ">" else -(-percent * denominator // 100)
    return max(0, min(goal, denominator) - numerator)


# --- builders ----------------------------------------------------------------------------------------------------


def agency_rows(report: ComplianceReport) -> tuple[AgencyRow, ...]:
    """The agencies of the report with how many of their measured targets they meet."""
    return tuple(AgencyRow(s.id, s.name, tuple(s.kpis), sum(k.status == "met" for k in s.kpis),
                           sum(k.status != "no_data" for k in s.kpis), s.note) for s in report.agencies)


def _by_id(scope: Scope | None) -> dict[str, Kpi]:
    return {} if scope is None else {k.id: k for k in scope.kpis}


def approval_rows(report: ComplianceReport, systems: Sequence[SystemRecord]) -> tuple[ApprovalRow, ...]:
    """Per agency with registered systems: approved / registered (the KPI's own members) and those missing."""
    records = {r.id: r for r in systems}
    rows = []
    for scope in report.agencies:
        kpi = _by_id(scope).get("systems_approved")
        if kpi is None or kpi.denominator == 0:
            continue
        missing = tuple(MissingSystem(i, records[i].name if i in records else i,
                                      records[i].status.value if i in records else "not_started",
                                      records[i].proposed_level if i in records else None)
                        for i in _nearest_first(kpi.excluded, records))
        rows.append(ApprovalRow(scope.id, scope.name, kpi.numerator, kpi.denominator, missing))
    return tuple(rows)


def _nearest_first(ids: Iterable[str], records: Mapping[str, SystemRecord]) -> list[str]:
    rank = {status: index for index, status in enumerate(PROGRESS)}

    def key(system_id: str) -> tuple[int, str]:
        record = records.get(system_id)
        return (rank.get(record.status, len(PROGRESS)) if record else len(PROGRESS), system_id)

    return sorted(ids, key=key)


def grouped(rows: Iterable[FindingRow]) -> list[FindingGroup]:
    """Findings of the same subject, severity and title as one row (a drill's corrective actions, say), in
    the order of their first."""
    groups: dict[tuple[str, str, str], list[FindingRow]] = {}
    for row in rows:
        groups.setdefault((row.subject, row.severity, row.title_vi), []).append(row)
    return [FindingGroup(items[0], len(items), sum(r.breached for r in items), max(r.age_days for r in items))
            for items in groups.values()]


def grade_counts(rows: Iterable[PortalRow]) -> tuple[tuple[str, int], ...]:
    """Every grade (best first) with how many portals hold it."""
    counts = Counter(r.grade for r in rows if r.grade is not None)
    return tuple((grade, counts.get(grade, 0)) for grade in GRADES)


def _grade_rank(grade: str | None) -> int:
    return GRADES.index(grade) if grade in GRADES else len(GRADES)


def top_risks(rows: Iterable[PortalRow], limit: int = TOP_RISKS) -> tuple[PortalRow, ...]:
    """The portals most at risk: most open critical, then high findings, then the worst grade; only those with a
    finding or a grade below A-."""
    weak = GRADES.index("A-")
    risky = [r for r in rows if r.critical or r.high or (r.grade is not None and _grade_rank(r.grade) > weak)]
    return tuple(sorted(risky, key=lambda r: (-r.critical, -r.high, -_grade_rank(r.grade), r.url))[:limit])


def movers(current: ComplianceReport, previous: ComplianceReport, grades_now: Mapping[str, str | None],
           grades_before: Mapping[str, str | None], names: Mapping[str, str], lang: Language = "vi",
           limit: int = MOVERS) -> tuple[Mover, ...]:
    """Agencies whose rate KPIs moved and portals whose grade moved since the previous period, largest first
    (`limit` improvements and `limit` regressions at most)."""
    found: list[Mover] = []
    before_by = {s.id: _by_id(s) for s in previous.agencies}
    for scope in current.agencies:
        earlier = before_by.get(scope.id, {})
        for kpi in scope.kpis:
            change = change_of(kpi, earlier.get(kpi.id))
            if kpi.kind != "rate" or change is None or change == 0:
                continue
            found.append(Mover("agency", scope.name, Text(vi=kpi.title_vi, en=kpi.title_en),
                               kpi_percent(earlier[kpi.id], lang), kpi_percent(kpi, lang), change > 0,
                               float(abs(change))))
    for url, grade in grades_now.items():
        old = grades_before.get(url)
        if grade is None or old is None or grade == old:
            continue
        steps = _grade_rank(old) - _grade_rank(grade)
        found.append(Mover("portal", names.get(url, url), Text(vi="Xếp hạng TLS", en="TLS grade"), old, grade,
                           steps > 0, float(abs(steps))))
    up = sorted((m for m in found if m.improved), key=lambda m: (-m.size, m.name))[:limit]
    down = sorted((m for m in found if not m.improved), key=lambda m: (-m.size, m.name))[:limit]
    return tuple(up + down)


UNITS: dict[str, Literal["systems", "portals", "computers", "drills"]] = {
    "systems_approved": "systems", "systems_requirements_met": "systems", "portals_assessed": "portals",
    "portals_labelled": "portals", "computers_antimalware": "computers", "drills_held": "drills",
    "drills_level3": "systems",
}


def _short(kpi: Kpi) -> Text:
    return SHORT_TITLES.get(kpi.id, Text(vi=kpi.title_vi, en=kpi.title_en))


def by_scope(items: Iterable[Recommendation]) -> list[tuple[str, list[Recommendation]]]:
    """Recommendations grouped by agency (the province's last), in their order."""
    groups: dict[str, list[Recommendation]] = {}
    for item in items:
        groups.setdefault(item.name, []).append(item)
    return list(groups.items())


PROVINCE_WIDE = frozenset({"portals_assessed", "portals_labelled", "drills_held", "drills_level3"})
"""Targets recommended once for the province (one line naming the portals or systems), not per agency."""


def _recommend(scope: Scope, kpi: Kpi, spec: TargetSpec, pool: Sequence[str]) -> Recommendation:
    needed = needed_for(spec, kpi.numerator, kpi.denominator)
    named = list(pool[:max(needed, 1)]) if UNITS[kpi.id] == "systems" else list(pool)
    return Recommendation(scope.id, scope.name, kpi.id, Text(vi=kpi.title_vi, en=kpi.title_en), _short(kpi),
                          kpi.numerator, kpi.denominator, kpi.target, needed, UNITS[kpi.id],
                          tuple(named[:CANDIDATES]), max(0, len(named) - CANDIDATES))


def recommendations(report: ComplianceReport, systems: Sequence[SystemRecord],
                    names: Mapping[str, str]) -> tuple[Recommendation, ...]:
    """Each agency below a systems or anti-malware target, with how many more would meet it and which systems
    (the unapproved nearest to approval first); then the province's portal and drill targets once each, naming
    the portals not assessed or labelled and the level-3+ systems not drilled."""
    specs = {t.id: t for t in plan_for(report.as_of).targets}
    records = {r.id: r for r in systems}

    def system_names(ids: Iterable[str]) -> list[str]:
        return [f"{records[i].name} ({i})" if i in records else i for i in ids]

    found: list[Recommendation] = []
    for scope in report.agencies:
        for kpi in scope.kpis:
            spec = specs.get(kpi.id)
            if spec is None or kpi.kind != "rate" or kpi.status != "not_met" or kpi.id in PROVINCE_WIDE:
                continue
            pool = [] if UNITS[kpi.id] != "systems" else system_names(_nearest_first(kpi.excluded, records))
            found.append(_recommend(scope, kpi, spec, pool))
    province = report.province
    for kpi in province.kpis:
        spec = specs.get(kpi.id)
        if spec is None or kpi.status != "not_met" or kpi.id not in PROVINCE_WIDE:
            continue
        if kpi.kind == "rate":
            pool = [names.get(url, url) for url in kpi.excluded]
        else:
            drilled = set(kpi.included)
            pool = system_names(sorted(r.id for r in systems
                                       if (r.approved_level or r.proposed_level or 0) >= 3 and r.id not in drilled))
        found.append(_recommend(province, kpi, spec, pool))
    return tuple(found)


# --- figures and HTML --------------------------------------------------------------------------------------------


def _kpi_figures(kpi: Kpi, previous: Kpi | None) -> dict[str, Any]:
    change = change_of(kpi, previous)
    shown = percent_of(kpi.numerator, kpi.denominator) if kpi.kind == "rate" else None
    return {"id": kpi.id, "kind": kpi.kind, "target": kpi.target, "numerator": kpi.numerator,
            "denominator": kpi.denominator, "percent": kpi.percent,
            "shown": None if shown is None else str(shown), "status": kpi.status,
            "previous": None if previous is None else {"numerator": previous.numerator,
                                                       "denominator": previous.denominator},
            "change": None if change is None else str(change)}


def figures(data: ReportData) -> dict[str, Any]:
    """Every number the report shows, JSON-able (archived with the document); the same store gives the same
    figures whenever the report is rebuilt (nothing here depends on the day it is issued)."""
    before = {s.id: _by_id(s) for s in [data.previous.province, *data.previous.agencies]}

    def scope(item: Scope) -> dict[str, Any]:
        earlier = before.get(item.id, {})
        return {"id": item.id, "name": item.name, "kpis": [_kpi_figures(k, earlier.get(k.id)) for k in item.kpis]}

    portals = data.portals
    return {
        "kind": data.kind, "start": data.start.isoformat(), "end": data.end.isoformat(), "to_date": data.to_date,
        "ruleset": data.current.ruleset.id, "plan": data.current.plan,
        "province": scope(data.current.province), "agencies": [scope(s) for s in data.current.agencies],
        "portals": {"total": portals.total, "graded": portals.graded, "grades": dict(portals.grades),
                    "labelled": portals.labelled, "top_risks": [r.url for r in portals.top_risks],
                    "expiring": [{"url": c.url, "not_after": c.not_after.isoformat()} for c in portals.expiring]},
        "approvals": [{"agency": a.agency, "approved": a.approved, "total": a.total,
                       "missing": [m.id for m in a.missing]} for a in data.approvals],
        "coverage": [asdict(c) for c in data.coverage],
        "drills": [{"session": d.session, "day": d.day.isoformat(), "score": d.score} for d in data.drills],
        "drills_in_year": data.drills_in_year,
        "findings": {"open_critical_high": len(data.findings), "breached": data.breached,
                     "by_severity": dict(Counter(f.severity for f in data.findings)),
                     "risk_accepted": len(data.accepted)},
        "sla": None if data.sla is None else data.sla.model_dump(mode="json"),
        "movers": {"improved": sum(m.improved for m in data.movers),
                   "regressed": sum(not m.improved for m in data.movers)},
        "recommendations": [{"agency": r.agency, "kpi": r.kpi, "needed": r.needed} for r in data.recommendations],
    }


def _day(value: date) -> str:
    return f"{value:%d/%m/%Y}"


def period_title(data: ReportData, lang: Language) -> str:
    """'tháng 11 năm 2026' / 'quý IV năm 2026' (November 2026 / Q4 2026)."""
    if data.kind == "monthly":
        return (f"tháng {data.start.month:02d} năm {data.start.year}" if lang == "vi"
                else f"{calendar.month_name[data.start.month]} {data.start.year}")
    quarter = (data.start.month - 1) // 3 + 1
    return (f"quý {('I', 'II', 'III', 'IV')[quarter - 1]} năm {data.start.year}" if lang == "vi"
            else f"Q{quarter} {data.start.year}")


def _lowest_first(item: tuple[str, Kpi | None]) -> tuple[int, Decimal, str]:
    """Agencies with systems first, the lowest approval rate first (the chart shows the ones lagging)."""
    kpi = item[1]
    value = None if kpi is None else percent_of(kpi.numerator, kpi.denominator)
    return (value is None, value if value is not None else Decimal(0), item[0])


def charts(data: ReportData, lang: Language) -> dict[str, Markup]:
    """The report's SVG charts (the dashboard's chart code; every label escaped by it)."""
    def words(vi: str, en: str) -> str:
        return en if lang == "en" else vi

    rates = [k for k in data.current.province.kpis if k.kind == "rate"]
    kpi_bars = [Bar(words(SHORT_TITLES[k.id].vi, SHORT_TITLES[k.id].en) if k.id in SHORT_TITLES else k.title_vi,
                    None if (p := percent_of(k.numerator, k.denominator)) is None else float(p),
                    None if p is None else f"{kpi_percent(k, lang)} ({k.numerator}/{k.denominator})",
                    "ok" if k.status == "met" else "bad") for k in rates]
    approved = sorted(((row.name, _by_id(next((s for s in data.current.agencies if s.id == row.id), None))
                        .get("systems_approved")) for row in data.agencies), key=_lowest_first)[:CHART_BARS]
    agency_bars = [Bar(name, None if k is None or (p := percent_of(k.numerator, k.denominator)) is None
                       else float(p), None if k is None or k.denominator == 0 else
                       f"{kpi_percent(k, lang)} ({k.numerator}/{k.denominator})",
                       "ok" if k is not None and k.status == "met" else "bad")
                   for name, k in approved if k is not None and k.denominator]
    top = max((count for _, count in data.portals.grades), default=0)
    grade_bars = [Bar(grade, float(count), str(count), "ok" if grade.startswith("A") else
                      ("warn" if grade in ("B", "C") else "bad")) for grade, count in data.portals.grades]
    target = next((k for k in data.current.province.kpis if k.id == "systems_approved"), None)
    return {
        "kpis": Markup(bar_chart(kpi_bars, title=words("Chỉ tiêu của tỉnh", "The province's targets"),
                                 unit="%")),
        "approved": Markup(bar_chart(agency_bars, title=words("Tỷ lệ hệ thống được phê duyệt cấp độ theo cơ quan",
                                                             "Systems with an approved level, by agency")
                                     + (words(f" (thấp nhất {CHART_BARS} cơ quan)", f" (lowest {CHART_BARS})")
                                        if len(data.agencies) > CHART_BARS else ""),
                                     unit="%", target=80.0 if target is not None else None,
                                     target_text=target.target if target is not None else None)),
        "grades": Markup(bar_chart(grade_bars, title=words("Phân bố xếp hạng TLS", "TLS grade distribution"),
                                   maximum=float(max(2, top + top % 2)))),  # even: whole ticks
    }


def render_html(data: ReportData, lang: str = "vi") -> str:
    """The report as one self-contained HTML page (its CSS and charts inline), Vietnamese unless lang='en'."""
    language: Language = "en" if lang == "en" else "vi"

    def t(text: Text) -> str:
        return text.en if language == "en" else text.vi

    def w(vi: str, en: str) -> str:
        return en if language == "en" else vi

    previous = {s.id: _by_id(s) for s in [data.previous.province, *data.previous.agencies]}
    def change(scope: str, kpi: Kpi) -> str:
        return _change_text(change_of(kpi, previous.get(scope, {}).get(kpi.id)), kpi, language)

    return templates("reports").get_template("monthly.html").render(
        print_css=print_css(), d=data, lang=language, t=t, w=w, plan=t(plan_for(data.end).plan),
        statuses=STATUS_TITLES, day=_day,
        long_day=lambda v: long_date(v, language),
        period=period_title(data, language), pct=lambda k: kpi_percent(k, language),
        value=lambda k: kpi_value(k, language), change=change, charts=charts(data, language),
        plain=lambda s: visible(str(s)), num=lambda v: decimal_text(v, language), findings_shown=FINDINGS_SHOWN,
        groups=grouped(data.findings), recs=by_scope(data.recommendations), candidates=CANDIDATES)


def _change_text(value: Decimal | None, kpi: Kpi, lang: Language) -> str:
    if value is None:
        return "—"
    if kpi.kind == "count":
        return f"{int(value):+d}"
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return sign + decimal_text(abs(value), lang)
