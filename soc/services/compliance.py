"""Compliance: evaluate the register's findings for a day, and the plan's KPIs as of a date.

The evaluation is one run of the same lifecycle as portal findings: every system and agency is one
subject with one complete observation, so a finding no longer true is resolved, one true again reopened.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from checks.compliance import evaluate_register
from soc.compliance.kpi import (
    ASSESSMENT_WINDOW,
    ComplianceReport,
    DrillHeld,
    SlaFigures,
    Sources,
    compliance_report,
    kpi_snapshots,
)
from soc.compliance.rules import ruleset_for
from soc.core.clock import LOCAL_ZONE, end_of_day, local_date, local_time, today
from soc.core.models import Observation, ScanRun
from soc.core.observations import ComplianceObservation
from soc.inventory import Inventory
from soc.services.context import ServiceContext, ServiceError
from soc.services.drills import drills_held
from soc.services.findings import owners
from soc.services.sla import apply_deadlines, sla_figures

COMPLIANCE_RUN = "compliance"
"""Name recorded as the 'inventory' of compliance evaluation runs."""


def evaluate(context: ServiceContext, day: date | None = None) -> ScanRun:
    """Record the compliance findings of every system and agency on `day` (default: today), audited.

    RulesError when no rule set is in force on the day.
    """
    day = day or today(context.clock)
    register, store = context.backend.register, context.backend.findings
    moment = end_of_day(day)
    systems, coverage = register.systems_as_of(moment), register.coverage_as_of(moment)
    rules = ruleset_for(day)
    results = evaluate_register(systems, coverage, rules, day)
    run = store.begin_run(COMPLIANCE_RUN, len(results))
    observed, complete = context.clock.now(), False
    opened = resolved = 0
    try:
        for subject, findings in results.items():
            typed = ComplianceObservation(portal_url=subject, observed_at=observed, as_of=day, ruleset=rules.id)
            observation = Observation(collector="compliance", portal_url=subject, observed_at=observed,
                                      complete=typed.complete, data=typed.model_dump(mode="json",
                                                                                     include={"as_of", "ruleset"}))
            changes = store.record_portal(run.id, subject, [observation], findings)
            opened += len(changes.new) + len(changes.reopened)
            resolved += len(changes.resolved)
        complete = True
    finally:
        run = store.finish_run(run.id, complete=complete)
        context.audit("compliance.evaluate", run.id, after={"status": run.status.value, "as_of": day.isoformat(),
                                                            "ruleset": rules.id, "subjects": len(results),
                                                            "opened": opened, "resolved": resolved})
    if complete:
        apply_deadlines(context, None)
    return run


def record_kpis(context: ServiceContext, inventory: Inventory, day: date | None = None) -> int:
    """Keep the day's KPIs (province and agencies) in the store's KPI history — what dashboards over time
    (Kibana, the search backend's users) read; the same figures as `kpis` gives. Returns the rows kept."""
    report = kpis(context, inventory, day)
    return context.backend.kpis.record(kpi_snapshots(report, context.clock.now()))


def sources_for(context: ServiceContext, day: date, known_at: datetime | None = None) -> Sources:
    """The register, coverage, what the portal scans of the 30-day window say and the drills held in the year, as
    they stood at the end of `day`, as known now or, with `known_at`, as the toolkit knew them then (scans and
    drills recorded after `known_at` left out)."""
    moment = end_of_day(day)
    register = context.backend.register
    last_scan = moment if known_at is None else min(moment, known_at)
    return Sources(
        systems=register.systems_as_of(moment, known_at),
        coverage=register.coverage_as_of(moment, known_at),
        portals=context.backend.findings.portal_verdicts(moment - ASSESSMENT_WINDOW + timedelta(microseconds=1),
                                                         last_scan),
        drills=[DrillHeld(session=d.id, system=d.target_system, level=d.target_level, agency=d.target_agency)
                for d in drills_held(context, day) if known_at is None or d.updated_at <= known_at],
    )


def kpis(context: ServiceContext, inventory: Inventory, day: date | None = None,
         agency: str | None = None, known_at: datetime | None = None) -> ComplianceReport:
    """The plan's KPIs on `day` (default: today) for the province and each agency (or one).

    By default what is known now about the state on `day` (a decision recorded today but dated months ago
    counts); `known_at` gives what the toolkit would have said at that moment (a sent report, rebuilt).
    """
    day = day or today(context.clock)
    if agency is not None and agency not in {a.id for a in inventory.agencies}:
        raise ServiceError(f"--agency {agency}: not an agency of the inventory")
    if known_at is not None:
        known_at = known_at.replace(tzinfo=LOCAL_ZONE) if known_at.tzinfo is None else known_at
        if known_at > context.clock.now():
            raise ServiceError(f"--as-known-at {local_time(known_at)}: in the future")
    data_from = {agency_id: local_date(moment)
                 for agency_id, moment in context.backend.register.data_since(known_at).items()}
    try:
        report = compliance_report(day, inventory, lambda d: sources_for(context, d, known_at), agency, data_from,
                                   known_at)
    except ValueError as exc:  # no plan or rule set in force on the day
        raise ServiceError(str(exc)) from None
    if known_at is None:  # findings keep only their current state: no SLA figure "as known then"
        province, agencies = sla_figures(context, inventory, day, owners(context, inventory))
        empty = SlaFigures(closed_within=0, closed_after=0, percent=None,
                           breached_open=0 if province.breached_open is not None else None)
        report.province.sla = province
        for scope in report.agencies:
            scope.sla = agencies.get(scope.id, empty)
    return report
