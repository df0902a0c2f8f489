"""The compliance workflows: apply a register or coverage file, evaluate findings, compute KPIs.

Files are validated whole before anything is written (a broken file changes nothing); a good file
is applied in one transaction and the compliance findings are re-evaluated for the day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from checks.compliance import evaluate_register
from soc.compliance.kpi import ASSESSMENT_WINDOW, LOCAL_ZONE, ComplianceReport, Sources, compliance_report, end_of_day
from soc.compliance.models import ApprovalStatus, CoverageRecord, SystemRecord
from soc.compliance.rules import RulesError, ruleset_for
from soc.compliance.sheets import SheetResult, read_coverage, read_systems
from soc.inventory import Inventory
from soc.models import Observation, ScanRun, utcnow
from soc.store.register import RegisterChanges, SqliteRegister
from soc.store.sqlite import SqliteStore

COMPLIANCE_RUN = "compliance"
"""Name recorded as the 'inventory' of compliance evaluation runs."""


def agencies_of(inventory: Inventory) -> dict[str, str]:
    """Agency id → name, for matching the spreadsheets' agency column."""
    return {a.id: a.name for a in inventory.agencies}


def local_today() -> date:
    """Today in Asia/Ho_Chi_Minh."""
    return utcnow().astimezone(LOCAL_ZONE).date()


def import_systems(
    path: Path, inventory: Inventory, store: SqliteStore, actor: str, at: datetime | None = None
) -> tuple[SheetResult[SystemRecord], RegisterChanges, ScanRun]:
    """Validate a register file whole (SheetError lists every problem), apply it, re-evaluate findings."""
    sheet = read_systems(path, agencies_of(inventory))
    register = SqliteRegister(store)
    records = [with_legal_basis(r) for r in sheet.records]
    changes = register.apply_systems(records, actor=actor, source=path.name, at=at)
    return sheet, changes, evaluate(store, register, local_today())


def with_legal_basis(record: SystemRecord) -> SystemRecord:
    """An approved record keeps the rule set its level was approved under: the file's, or the one in
    force on the decision date — recorded now, so a later change of law never rewrites it."""
    if record.legal_basis or record.status is not ApprovalStatus.APPROVED or record.decision_date is None:
        return record
    try:
        basis = ruleset_for(record.decision_date).id
    except RulesError:  # a decision older than every rule set: leave it for a person to fill in
        return record
    return record.model_copy(update={"legal_basis": basis})


def import_coverage(
    path: Path, inventory: Inventory, store: SqliteStore, actor: str, at: datetime | None = None
) -> tuple[SheetResult[CoverageRecord], RegisterChanges, ScanRun]:
    """Validate an anti-malware coverage file whole, apply it, re-evaluate findings."""
    sheet = read_coverage(path, agencies_of(inventory))
    register = SqliteRegister(store)
    changes = register.apply_coverage(sheet.records, actor=actor, source=path.name, at=at)
    return sheet, changes, evaluate(store, register, local_today())


def evaluate(store: SqliteStore, register: SqliteRegister, day: date) -> ScanRun:
    """Record today's compliance findings of every system and agency (one run, one subject at a time).

    Each subject's observation is complete, so a finding no longer true (approval granted, coverage
    reached) is resolved, and one true again is reopened — the same lifecycle as portal findings.
    """
    moment = end_of_day(day)
    systems, coverage = register.systems_as_of(moment), register.coverage_as_of(moment)
    rules = ruleset_for(day)
    results = evaluate_register(systems, coverage, rules, day)
    run = store.begin_run(COMPLIANCE_RUN, len(results))
    observed, complete = utcnow(), False
    try:
        for subject, findings in results.items():
            observation = Observation(collector="compliance", portal_url=subject, observed_at=observed,
                                      complete=True, data={"as_of": day.isoformat(), "ruleset": rules.id})
            store.record_portal(run.id, subject, [observation], findings)
        complete = True
    finally:
        run = store.finish_run(run.id, complete=complete)
    return run


def sources_loader(store: SqliteStore) -> SourceLoaderImpl:
    """KPI sources read from the store: the register at the end of the day and the 30-day scan window."""
    return SourceLoaderImpl(store)


class SourceLoaderImpl:
    """Loads KPI sources for a day from the embedded store."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._register = SqliteRegister(store)

    def __call__(self, day: date) -> Sources:
        """The register, coverage and portal scans as they stood at the end of `day`."""
        moment = end_of_day(day)
        return Sources(
            systems=self._register.systems_as_of(moment),
            coverage=self._register.coverage_as_of(moment),
            scans=self._store.portal_scans_between(moment - ASSESSMENT_WINDOW + timedelta(microseconds=1), moment),
            drills=[],  # the drill engine (its own issue) will supply the drills held in the year
        )


def report(store: SqliteStore, inventory: Inventory, day: date, agency: str | None = None) -> ComplianceReport:
    """The KPIs of `day` for the province and each agency."""
    return compliance_report(day, inventory, sources_loader(store), agency)
