"""The plan's KPIs for a date, for the province and each agency — exact counts you can drill into.

Every KPI is numerator / denominator with the members of each side listed; comparisons with the
target use integer arithmetic (no rounding before the end: "> 80%" means 100·n > 80·d). Figures for a
past date use the register as it stood at the end of that day (Asia/Ho_Chi_Minh), the portal scans
of the 30 days before it, and the rule set in force on it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from soc.compliance.models import CoverageRecord, RequirementStatus, SystemRecord, approved_on
from soc.compliance.rules import ruleset_for
from soc.core.text import Text
from soc.inventory import Inventory

ASSESSMENT_WINDOW = timedelta(days=30)
TARGETS_PATH = Path(__file__).with_name("targets.yaml")
PROVINCE = "province"


class TargetSpec(BaseModel):
    """One target of the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    kind: Literal["rate", "count"]
    op: Literal[">", ">="]
    percent: int | None = None
    count: int | None = None
    title: Text

    def met(self, numerator: int, denominator: int) -> bool | None:
        """Exact comparison; None when there is nothing to measure."""
        if self.kind == "count":
            return numerator >= (self.count or 0) if self.op == ">=" else numerator > (self.count or 0)
        if denominator == 0:
            return None
        left, right = 100 * numerator, (self.percent or 0) * denominator
        return left > right if self.op == ">" else left >= right

    @property
    def label(self) -> str:
        """'> 80%' or '≥ 1'."""
        op = ">" if self.op == ">" else "≥"
        return f"{op} {self.percent}%" if self.kind == "rate" else f"{op} {self.count}"


class Plan(BaseModel):
    """A plan's targets with its validity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plan: Text
    valid_from: date
    valid_to: date | None = None
    targets: list[TargetSpec]


class Kpi(BaseModel):
    """One target measured for one scope (the province or an agency) on one date."""

    id: str
    title_vi: str
    title_en: str
    kind: str
    target: str
    numerator: int
    denominator: int
    percent: float | None
    """numerator/denominator as a percentage, rounded to 2 decimals only here, at the end."""
    status: Literal["met", "not_met", "no_data"]
    previous_percent: float | None = None
    change: float | None = None
    """Percentage points (or count) since the same day of the previous month."""
    included: list[str] = Field(default_factory=list)
    """Members counted in the numerator (system ids, portal URLs, agency ids)."""
    excluded: list[str] = Field(default_factory=list)
    """Members of the denominator not in the numerator."""


class SlaFigures(BaseModel):
    """The "findings closed within SLA" figure: findings resolved in the 30 days up to the date, within or
    after their deadline, and (for today only) the open findings past it."""

    closed_within: int
    closed_after: int
    percent: float | None
    """closed_within / (closed_within + closed_after) × 100, one decimal (None: nothing closed)."""
    breached_open: int | None = None
    """Open now and past their deadline (None for a past date: what was open then is not kept)."""


class Scope(BaseModel):
    """The KPIs of the province or of one agency."""

    id: str
    name: str
    kpis: list[Kpi]
    data_from: date | None = None
    """The first day the register (systems or coverage) has data for this scope (None: none at all)."""
    note: str | None = None
    """Said in words when the date is before any register data of the scope (vi / en)."""
    sla: SlaFigures | None = None
    """Findings of the scope's portals and systems against their SLA (set by the services from the store)."""


class RulesetSummary(BaseModel):
    """The rule set in force on the date, as a report names it."""

    id: str
    title: str
    title_en: str
    to_be_confirmed: bool
    legal_basis: list[str]
    report_to: list[str]


class ComplianceReport(BaseModel):
    """Everything `soc compliance` shows for one date."""

    as_of: date
    known_at: datetime | None = None
    """Set when the figures are what the toolkit knew at that moment (an audit rebuild), not what it knows now."""
    ruleset: RulesetSummary
    plan: str
    province: Scope
    agencies: list[Scope]


@cache
def plans() -> tuple[Plan, ...]:
    """The plans' targets (targets.yaml)."""
    return tuple(Plan.model_validate(item) for item in yaml.safe_load(TARGETS_PATH.read_text(encoding="utf-8")))


def plan_for(day: date) -> Plan:
    """The plan in force on `day`."""
    for plan in plans():
        if plan.valid_from <= day and (plan.valid_to is None or day < plan.valid_to):
            return plan
    raise ValueError(f"no plan with targets in force on {day.isoformat()} ({TARGETS_PATH.name})")


def month_before(day: date) -> date:
    """The same day one month earlier (clamped to the month's end: 31/03 → 28 or 29/02)."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class PortalVerdicts:
    """What the portal assessments of one window say for the portal KPIs, by portal URL: every subject assessed
    in the window (portals outside the inventory too: each scope picks its own portals from these sets)."""

    assessed: frozenset[str] = frozenset()
    """Portals with an assessment in the window whose TLS and HTTP were both complete (ports or the registry
    may have failed)."""
    labelled: frozenset[str] = frozenset()
    """Portals whose newest assessment in the window that assessed the trust label found it valid (a TLS-only
    scan, label_valid None, says nothing about the label; False is a verdict)."""


@dataclass(frozen=True)
class DrillHeld:
    """An incident-response drill held (an ended session), as the drill KPIs count it."""

    session: str
    system: str | None
    """The register id of the system drilled (None: a drill not about one registered system)."""
    level: int
    agency: str | None


@dataclass(frozen=True)
class Sources:
    """What the KPIs are computed from, for one moment."""

    systems: list[SystemRecord]
    coverage: list[CoverageRecord]
    portals: PortalVerdicts
    """Read once per moment and shared by the province and every agency."""
    drills: list[DrillHeld]
    """Drills held in the calendar year up to the moment."""

    def for_agency(self, agency: str) -> Sources:
        """The part of the sources that belongs to one agency (portals are matched later)."""
        return Sources([r for r in self.systems if r.agency == agency],
                       [c for c in self.coverage if c.agency == agency], self.portals,
                       [d for d in self.drills if d.agency == agency])

    def by_agency(self) -> dict[str, Sources]:
        """Sources split per agency in one pass (the province view has every agency)."""
        systems: dict[str, list[SystemRecord]] = {}
        coverage: dict[str, list[CoverageRecord]] = {}
        drills: dict[str, list[DrillHeld]] = {}
        for record in self.systems:
            systems.setdefault(record.agency, []).append(record)
        for row in self.coverage:
            coverage.setdefault(row.agency, []).append(row)
        for drill in self.drills:
            if drill.agency is not None:
                drills.setdefault(drill.agency, []).append(drill)
        return {a: Sources(systems.get(a, []), coverage.get(a, []), self.portals, drills.get(a, []))
                for a in set(systems) | set(coverage) | set(drills)}

    def empty(self) -> Sources:
        """No register data, no drill: an agency that has none (the shared portal verdicts kept)."""
        return Sources([], [], self.portals, [])


SourceLoader = Callable[[date], Sources]
"""Loads the register, coverage, portal verdicts (30-day window) and drills as they stood at the end of a day."""


def _met(record: SystemRecord, day: date) -> bool:
    return record.requirements is RequirementStatus.MET and (
        record.requirements_assessed is None or record.requirements_assessed <= day)


@dataclass(frozen=True)
class _Count:
    included: list[str]
    excluded: list[str]
    numerator: int | None = None
    """Set when the counted units are not the members (computers, counted per agency)."""
    denominator: int | None = None


def _members(target: TargetSpec, day: date, portals: Sequence[str], sources: Sources) -> _Count:
    """Who counts for a target in one scope: `portals` are the scope's inventory portals (sorted), `sources`
    already the scope's."""
    systems = sorted(sources.systems, key=lambda r: r.id)
    if target.id == "systems_approved":
        return _split([r.id for r in systems], {r.id for r in systems if approved_on(r, day)})
    if target.id == "systems_requirements_met":
        return _split([r.id for r in systems], {r.id for r in systems if _met(r, day)})
    if target.id == "portals_assessed":
        return _split(portals, sources.portals.assessed)
    if target.id == "portals_labelled":
        return _split(portals, sources.portals.labelled)
    if target.id == "computers_antimalware":
        rows = sources.coverage
        full = {c.agency for c in rows if c.reporting_to_ncsc >= c.total_computers}
        split = _split(sorted(c.agency for c in rows), full)
        return _Count(split.included, split.excluded, sum(c.reporting_to_ncsc for c in rows),
                      sum(c.total_computers for c in rows))
    if target.id == "drills_held":
        return _Count(sorted(d.session for d in sources.drills), [])
    if target.id == "drills_level3":
        return _Count(sorted({d.system or f"session:{d.session}" for d in sources.drills if d.level >= 3}), [])
    raise ValueError(f"{TARGETS_PATH.name}: no measure for target {target.id!r}")


def _split(members: Sequence[str], counted: AbstractSet[str]) -> _Count:
    return _Count([m for m in members if m in counted], [m for m in members if m not in counted])


def measure(target: TargetSpec, day: date, portals: Sequence[str], sources: Sources) -> Kpi:
    """One KPI, exactly, for one scope: its inventory portals (sorted) and its part of the sources."""
    count = _members(target, day, portals, sources)
    included, excluded = count.included, count.excluded
    numerator = count.numerator if count.numerator is not None else len(included)
    if count.denominator is not None:
        denominator = count.denominator
    else:
        denominator = len(included) + len(excluded) if target.kind == "rate" else target.count or 1
    met = target.met(numerator, denominator)
    percent = round(100 * numerator / denominator, 2) if target.kind == "rate" and denominator else None
    return Kpi(id=target.id, title_vi=target.title.vi, title_en=target.title.en, kind=target.kind,
               target=target.label, numerator=numerator, denominator=denominator,
               percent=percent if target.kind == "rate" else float(numerator),
               status="no_data" if met is None else ("met" if met else "not_met"), included=included,
               excluded=excluded)


def _with_change(current: Kpi, previous: Kpi) -> Kpi:
    if current.percent is None or previous.percent is None:
        return current.model_copy(update={"previous_percent": previous.percent})
    return current.model_copy(update={"previous_percent": previous.percent,
                                      "change": round(current.percent - previous.percent, 2)})


def _scope_kpis(day: date, portals: Sequence[str], now: Sources, before: Sources, previous_day: date) -> list[Kpi]:
    kpis = []
    for target in plan_for(day).targets:
        current = measure(target, day, portals, now)
        previous = measure(target, previous_day, portals, before)
        kpis.append(_with_change(current, previous))
    return kpis


def data_note(day: date, data_from: date | None) -> str | None:
    """The words for a date before any register data of a scope (None when there is data by then)."""
    if data_from is None:
        return "Chưa có dữ liệu sổ đăng ký / No register data yet"
    if day < data_from:
        return (f"Chưa có dữ liệu sổ đăng ký trước ngày {data_from:%d/%m/%Y} / "
                f"No register data before {data_from:%d/%m/%Y}")
    return None


def compliance_report(
    day: date, inventory: Inventory, load: SourceLoader, agency: str | None = None,
    data_from: Mapping[str, date] | None = None, known_at: datetime | None = None,
) -> ComplianceReport:
    """KPIs for the province and each agency (or one agency) on `day`, with the change since a month before.

    `data_from`: agency → the first day the register has data for it, so a date before it is said in words.
    """
    previous_day = month_before(day)
    now, before = load(day), load(previous_day)
    rules = ruleset_for(day)
    agencies = [a for a in inventory.agencies if agency is None or a.id == agency]
    if agency is not None and not agencies:
        raise ValueError(f"--agency {agency}: not an agency of the inventory")
    starts = dict(data_from or {})
    first = min(starts.values(), default=None)
    portals_of: dict[str, list[str]] = {}
    for portal in inventory.portals:
        portals_of.setdefault(portal.agency, []).append(portal.url)
    province = Scope(id=PROVINCE, name="Tỉnh Đồng Nai / Đồng Nai province",
                     kpis=_scope_kpis(day, sorted(p.url for p in inventory.portals), now, before, previous_day),
                     data_from=first, note=data_note(day, first))
    now_empty, before_empty = now.empty(), before.empty()
    now_by, before_by = now.by_agency(), before.by_agency()
    scopes = [Scope(id=a.id, name=a.name, kpis=_scope_kpis(day, sorted(portals_of.get(a.id, [])),
                                                           now_by.get(a.id, now_empty),
                                                           before_by.get(a.id, before_empty), previous_day),
                    data_from=starts.get(a.id), note=data_note(day, starts.get(a.id)))
              for a in agencies]
    ruleset = RulesetSummary(
        id=rules.id, title=rules.title.vi, title_en=rules.title.en, to_be_confirmed=rules.to_be_confirmed,
        legal_basis=[b.ref for b in rules.legal_basis], report_to=[r.name.vi for r in rules.recipients_on(day)],
    )
    return ComplianceReport(as_of=day, known_at=known_at, ruleset=ruleset, plan=plan_for(day).plan.vi,
                            province=province, agencies=scopes)


class KpiSnapshot(BaseModel):
    """One KPI of one scope on one day, as the daily compliance job computed it (kept for dashboards over time)."""

    as_of: date
    scope: str
    """'province' or an agency id."""
    kpi_id: str
    title_vi: str
    title_en: str
    kind: str
    target: str
    target_percent: float | None
    numerator: int
    denominator: int
    percent: float | None
    status: Literal["met", "not_met", "no_data"]
    ruleset: str
    recorded_at: datetime


def kpi_snapshots(report: ComplianceReport, recorded_at: datetime) -> list[KpiSnapshot]:
    """The rows of a report's KPIs, the province first (scope 'province'), then each agency."""
    rows = []
    for scope_id, scope in [("province", report.province), *((agency.id, agency) for agency in report.agencies)]:
        for kpi in scope.kpis:
            found = re.search(r"(\d+(?:[.,]\d+)?)\s*%", kpi.target)
            rows.append(KpiSnapshot(
                as_of=report.as_of, scope=scope_id, kpi_id=kpi.id, title_vi=kpi.title_vi, title_en=kpi.title_en,
                kind=kpi.kind, target=kpi.target,
                target_percent=float(found.group(1).replace(",", ".")) if found else None,
                numerator=kpi.numerator, denominator=kpi.denominator, percent=kpi.percent, status=kpi.status,
                ruleset=report.ruleset.id, recorded_at=recorded_at))
    return rows
