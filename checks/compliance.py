"""Compliance checks on the register: records + the rule set in force + a date in, findings out. Pure.

Findings are about a subject — `system:<id>` or `agency:<id>` — kept in the same store and lifecycle
as portal findings (the subject goes where a portal's URL goes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from checks.catalogue import make_finding
from soc.compliance.models import CoverageRecord, RequirementStatus, SystemRecord, approved_on
from soc.compliance.rules import RuleSet
from soc.core.models import Finding, Severity

CRITICAL_FROM_LEVEL = 3
"""In operation without approval is critical from this level (approved, or else proposed) upward."""


def system_subject(system_id: str) -> str:
    """Subject key of a system's findings."""
    return f"system:{system_id}"


def agency_subject(agency_id: str) -> str:
    """Subject key of an agency's findings."""
    return f"agency:{agency_id}"


def _level(record: SystemRecord) -> int | None:
    return record.approved_level or record.proposed_level


def _operation(record: SystemRecord, today: date) -> list[Finding]:
    if not record.in_operation or approved_on(record, today):
        return []
    level = _level(record)
    severity = Severity.CRITICAL if level is not None and level >= CRITICAL_FROM_LEVEL else None
    where = "test system holding real data" if record.environment.value == "test_real_data" else "in operation"
    evidence = f"{record.name}: {where}, approval status {record.status.value}, level {level or '?'}"
    return [make_finding(system_subject(record.id), "approval.missing_in_operation", evidence, severity=severity)]


def _reassessment(record: SystemRecord, rules: RuleSet, today: date) -> list[Finding]:
    if not approved_on(record, today):
        return []
    due = rules.reassessment_due(record, today)
    if due is None or due > today:
        return []
    evidence = f"{record.name}: level {record.approved_level} re-assessment due {due:%d/%m/%Y}"
    return [make_finding(system_subject(record.id), "approval.reassessment_due", evidence, detail=due.isoformat())]


def _requirements(record: SystemRecord, today: date) -> list[Finding]:
    if not approved_on(record, today) or record.requirements is RequirementStatus.MET:
        return []
    state = record.requirements.value if record.requirements else "never assessed"
    evidence = f"{record.name}: level {record.approved_level} requirements {state}"
    return [make_finding(system_subject(record.id), "approval.requirements_unmet", evidence)]


def _level_mismatch(record: SystemRecord, rules: RuleSet, today: date) -> list[Finding]:
    if not approved_on(record, today) or record.approved_level is None:
        return []
    problems = []
    if record.proposed_level is not None and record.approved_level < record.proposed_level:
        problems.append(f"approved {record.approved_level} < proposed {record.proposed_level}")
    minimum = rules.required_minimum_level(record)
    if minimum is not None and record.approved_level < minimum:
        problems.append(f"approved {record.approved_level} < minimum {minimum} required by {rules.id}")
    if not problems:
        return []
    return [make_finding(system_subject(record.id), "approval.level_mismatch", f"{record.name}: {'; '.join(problems)}")]


def _deadlines(record: SystemRecord, rules: RuleSet, today: date) -> list[Finding]:
    findings = []
    for deadline in rules.deadlines_passed(today):
        if deadline.applies_to == "not_in_operation":
            missed = not record.in_operation and not approved_on(record, today)
        else:
            missed = record.requirements is not RequirementStatus.MET
        if missed:
            evidence = f"{record.name}: {deadline.title.en} — deadline {deadline.date:%d/%m/%Y} ({rules.id})"
            findings.append(make_finding(system_subject(record.id), "approval.deadline_missed", evidence,
                                         detail=deadline.id))
    return findings


def evaluate_system(record: SystemRecord, rules: RuleSet, today: date) -> list[Finding]:
    """Every compliance finding of one system on `today` under the rule set in force."""
    return (_operation(record, today) + _reassessment(record, rules, today) + _requirements(record, today)
            + _level_mismatch(record, rules, today) + _deadlines(record, rules, today))


def evaluate_coverage(record: CoverageRecord) -> list[Finding]:
    """A gap finding when not every computer of the agency has anti-malware reporting to NCSC."""
    if record.total_computers == 0 or record.reporting_to_ncsc >= record.total_computers:
        return []
    missing = record.total_computers - record.reporting_to_ncsc
    evidence = (f"{missing} of {record.total_computers} computers not reporting to NCSC "
                f"({record.protected} protected, {record.reporting_to_ncsc} reporting)")
    return [make_finding(agency_subject(record.agency), "malware.coverage_gap", evidence)]


def evaluate_register(
    systems: Sequence[SystemRecord], coverage: Sequence[CoverageRecord], rules: RuleSet, today: date
) -> dict[str, list[Finding]]:
    """Findings of every subject (systems and agencies with coverage data), empty lists included."""
    results = {system_subject(r.id): evaluate_system(r, rules, today) for r in systems}
    results |= {agency_subject(r.agency): evaluate_coverage(r) for r in coverage}
    return results
