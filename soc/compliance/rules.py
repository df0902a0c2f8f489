"""Legal rules as versioned data: one YAML rule set per legal framework, each valid over a span of dates.

Every rule the toolkit applies (security levels, approving authorities, re-assessment periods, minimum levels,
report recipients, requirement groups, transition deadlines) comes from a rule-set file in ``rulesets/`` with its
legal basis, never from a constant in code. A change of law is a data change: add a file, close the previous one.

Date convention, used everywhere (rule sets, recipients, deadlines):

- ``valid_from`` is the first day in force (inclusive);
- ``valid_to`` is the first day no longer in force (exclusive); ``None`` means open-ended. A rule in force
  through 30 June 2026 has ``valid_to: 2026-07-01``. Consecutive rule sets therefore meet exactly: the
  ``valid_to`` of one is the ``valid_from`` of the next;
- a deadline's ``date`` is the first day on which the obligation is overdue (the grace period is the
  half-open span before it), so ``deadlines_passed(day)`` holds the deadlines with ``date <= day``.

Facts that come only from public reports carry ``confirmed: false``; a whole rule set that still has to be
checked against the official gazette (Công báo) has ``to_be_confirmed: true``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from soc.compliance.models import Environment, SystemRecord
from soc.core.errors import ProblemsError
from soc.core.errors import problems as validation_problems
from soc.core.text import NonEmpty, Text

RULESETS_DIR = Path(__file__).parent / "rulesets"
"""Where the shipped rule sets live (package data)."""

Level = Annotated[int, Field(ge=1, le=5)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class RulesError(ProblemsError):
    """The rule sets cannot be used."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _in_span(day: dt.date, valid_from: dt.date, valid_to: dt.date | None) -> bool:
    return valid_from <= day and (valid_to is None or day < valid_to)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's end (2025-08-31 + 6 months is 2026-02-28)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


class LegalInstrument(_Frozen):
    """A law, decree, circular, decision, directive or standard a rule set rests on."""

    ref: NonEmpty
    """Number and kind as cited, e.g. 'Nghị định 85/2016/NĐ-CP'."""
    title: Text
    effective: dt.date | None = None
    confirmed: bool
    notes: Text | None = None


class LevelRule(_Frozen):
    """One security level (cấp độ): its criteria, who approves it and how often it is re-assessed."""

    level: Level
    criteria: Text
    approving_authority: Text
    reassessment_months: Annotated[int, Field(ge=1, le=120)] | None
    """Months between periodic assessments; None when no period is mandated."""
    legal_basis: NonEmpty
    confirmed: bool
    notes: Text | None = None


class OperationRule(_Frozen):
    """Whether a system may be in operation before its level is approved."""

    requires_approved_level: bool
    includes_test_with_real_data: bool
    """Test systems holding real data follow the same rule as production."""
    title: Text
    legal_basis: NonEmpty
    confirmed: bool


class ReportRecipient(_Frozen):
    """A body that receives reports and exercises oversight, over a span of dates within the rule set."""

    name: Text
    valid_from: dt.date
    valid_to: dt.date | None = None
    """Exclusive; None: until the rule set ends."""
    legal_basis: NonEmpty
    confirmed: bool

    def in_force(self, day: dt.date) -> bool:
        """Whether this body is the one to deal with on `day`."""
        return _in_span(day, self.valid_from, self.valid_to)


class RequirementGroup(_Frozen):
    """A group of security requirements (management or technical) of the applicable standard."""

    id: Identifier
    kind: Literal["management", "technical"]
    title: Text
    legal_basis: NonEmpty
    confirmed: bool


def _boolean_record_fields() -> list[str]:
    return [name for name, info in SystemRecord.model_fields.items() if info.annotation is bool]


class MinimumLevelRule(_Frozen):
    """A floor on the security level of systems for which a SystemRecord yes/no field is true."""

    id: Identifier
    when: str
    """Name of a boolean field of SystemRecord, e.g. 'handles_admin_procedures'."""
    minimum_level: Level
    title: Text
    legal_basis: NonEmpty
    confirmed: bool

    @field_validator("when")
    @classmethod
    def _when_is_a_record_flag(cls, value: str) -> str:
        known = _boolean_record_fields()
        if value not in known:
            raise ValueError(f"{value!r} is not a yes/no field of SystemRecord (known: {', '.join(known)})")
        return value

    def applies(self, record: SystemRecord) -> bool:
        """Whether the record's flag named by `when` is set."""
        return bool(getattr(record, self.when))


class Deadline(_Frozen):
    """A transition deadline: from `date` on, the obligation is overdue for the systems it applies to."""

    id: Identifier
    date: dt.date
    applies_to: Literal["not_in_operation", "all"]
    title: Text
    legal_basis: NonEmpty
    confirmed: bool

    def applies(self, record: SystemRecord) -> bool:
        """Whether the deadline concerns this system ('not_in_operation': systems not yet in operation)."""
        return self.applies_to == "all" or not record.in_operation


class IncidentRole(_Frozen):
    """A participant role of the incident-handling process (drills declare which ones they use)."""

    id: Identifier
    title: Text
    duty: Text


class IncidentAuthority(ReportRecipient):
    """A national or provincial body the authority liaison deals with in an incident, over a span of dates within
    the rule set (the same shape as a report recipient; not always the same bodies)."""


class ReportingDuty(_Frozen):
    """An incident report owed to the authorities within so many hours of detecting the incident."""

    id: Identifier
    title: Text
    within_hours: Annotated[int, Field(ge=1, le=24 * 90)]
    applies: Literal["always", "personal_data"]
    """'personal_data': only when citizens' personal data may have leaked."""
    valid_from: dt.date | None = None
    """Inclusive; None: from the start of the rule set."""
    valid_to: dt.date | None = None
    legal_basis: NonEmpty
    confirmed: bool

    def in_force(self, day: dt.date) -> bool:
        """Whether the duty applies to an incident detected on `day`."""
        return _in_span(day, self.valid_from or dt.date.min, self.valid_to)


class IncidentResponseRules(_Frozen):
    """The national incident-handling process as this rule set has it: roles, authorities, report deadlines."""

    legal_basis: NonEmpty
    roles: Annotated[tuple[IncidentRole, ...], Field(min_length=1)]
    authorities: Annotated[tuple[IncidentAuthority, ...], Field(min_length=1)]
    reports: tuple[ReportingDuty, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> IncidentResponseRules:
        problems = _duplicates("roles", [r.id for r in self.roles])
        problems += _duplicates("reports", [r.id for r in self.reports])
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def role(self, role_id: str) -> IncidentRole | None:
        """The role with this id, or None."""
        return next((r for r in self.roles if r.id == role_id), None)

    def authorities_on(self, day: dt.date) -> list[IncidentAuthority]:
        """The bodies in force on `day`, in file order."""
        return [a for a in self.authorities if a.in_force(day)]

    def duty(self, duty_id: str, day: dt.date) -> ReportingDuty | None:
        """The reporting duty `duty_id` in force on `day`, or None."""
        return next((d for d in self.reports if d.id == duty_id and d.in_force(day)), None)


def _duplicates(field: str, ids: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, value in enumerate(ids):
        if value in seen:
            problems.append(f"{field}[{index}].id: duplicate of {field}[{seen[value]}] ({value})")
        seen.setdefault(value, index)
    return problems


class RuleSet(_Frozen):
    """The legal rules in force over one span of dates, with their legal basis."""

    id: Identifier
    title: Text
    valid_from: dt.date
    valid_to: dt.date | None
    """Exclusive: the first day the rule set is no longer in force; None: open-ended."""
    to_be_confirmed: bool
    notes: tuple[Text, ...] = ()
    legal_basis: Annotated[tuple[LegalInstrument, ...], Field(min_length=1)]
    levels: tuple[LevelRule, ...]
    operation_rule: OperationRule
    recipients: Annotated[tuple[ReportRecipient, ...], Field(min_length=1)]
    requirement_groups: Annotated[tuple[RequirementGroup, ...], Field(min_length=1)]
    minimum_level_rules: tuple[MinimumLevelRule, ...] = ()
    deadlines: tuple[Deadline, ...] = ()
    incident_response: IncidentResponseRules

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        problems = []
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            problems.append(f"valid_to: {self.valid_to} is not after valid_from {self.valid_from}")
        if self.to_be_confirmed and not self.notes:
            problems.append("notes: a rule set to be confirmed needs a note saying what to confirm against")
        numbers = [rule.level for rule in self.levels]
        missing = sorted(set(range(1, 6)) - set(numbers))
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        if missing or repeated:
            detail = ", ".join(part for part in (
                f"missing {missing}" if missing else "", f"repeated {repeated}" if repeated else "") if part)
            problems.append(f"levels: must define each level 1–5 exactly once ({detail})")
        problems += self._recipient_problems()
        problems += _duplicates("requirement_groups", [g.id for g in self.requirement_groups])
        problems += _duplicates("minimum_level_rules", [r.id for r in self.minimum_level_rules])
        problems += _duplicates("deadlines", [d.id for d in self.deadlines])
        problems += [f"deadlines[{i}].date: {d.date} is before the rule set's valid_from {self.valid_from}"
                     for i, d in enumerate(self.deadlines) if d.date < self.valid_from]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _recipient_problems(self) -> list[str]:
        problems = []
        for index, item in enumerate(self.recipients):
            where = f"recipients[{index}]"
            if item.valid_from < self.valid_from:
                problems.append(f"{where}.valid_from: {item.valid_from} is before the rule set's {self.valid_from}")
            if self.valid_to is not None and item.valid_from >= self.valid_to:
                problems.append(f"{where}.valid_from: {item.valid_from} is not before the rule set's valid_to "
                                f"{self.valid_to}")
            if item.valid_to is not None and item.valid_to <= item.valid_from:
                problems.append(f"{where}.valid_to: {item.valid_to} is not after valid_from {item.valid_from}")
            if item.valid_to is not None and self.valid_to is not None and item.valid_to > self.valid_to:
                problems.append(f"{where}.valid_to: {item.valid_to} is after the rule set's valid_to "
                                f"{self.valid_to} (use null for 'until the rule set ends')")
        if problems:
            return problems
        end = self.valid_to or dt.date.max
        covered = self.valid_from  # every day before `covered` has a recipient
        for item in sorted(self.recipients, key=lambda r: r.valid_from):
            if item.valid_from > covered:
                problems.append(f"recipients: no recipient from {covered} to {item.valid_from - dt.timedelta(days=1)}")
            covered = max(covered, item.valid_to or end)
        if covered < end:
            problems.append(f"recipients: no recipient from {covered} to the end of the rule set")
        return problems

    def in_force(self, day: dt.date) -> bool:
        """Whether the rule set applies on `day` (valid_from inclusive, valid_to exclusive)."""
        return _in_span(day, self.valid_from, self.valid_to)

    def level(self, n: int) -> LevelRule:
        """The rule of security level `n`; KeyError names the rule set when it has no such level."""
        for rule in self.levels:
            if rule.level == n:
                return rule
        raise KeyError(f"rule set {self.id!r} has no level {n}")

    def reassessment_due(self, record: SystemRecord, today: dt.date) -> dt.date | None:
        """When the system's next periodic assessment is due, or None when there is none to do.

        An explicit `next_reassessment` on the record wins. Otherwise the period of the approved level is added
        to the last assessment (`requirements_assessed`), or failing that to the approval `decision_date`; with
        neither date known the assessment is due `today`. None when there is no approved level or the level has
        no mandated period.
        """
        if record.next_reassessment is not None:
            return record.next_reassessment
        if record.approved_level is None:
            return None
        months = self.level(record.approved_level).reassessment_months
        if months is None:
            return None
        base = record.requirements_assessed or record.decision_date
        return today if base is None else add_months(base, months)

    def required_minimum_level(self, record: SystemRecord) -> int | None:
        """The highest minimum level that applies to the system, or None when no rule applies."""
        levels = [rule.minimum_level for rule in self.minimum_level_rules if rule.applies(record)]
        return max(levels) if levels else None

    def operating_without_approval(self, record: SystemRecord) -> bool:
        """Whether the system is in operation, without an approved level, where the operation rule forbids it."""
        rule = self.operation_rule
        if not rule.requires_approved_level or not record.in_operation:
            return False
        if record.environment is Environment.TEST_REAL_DATA and not rule.includes_test_with_real_data:
            return False
        return record.approved_level is None

    def recipients_on(self, day: dt.date) -> list[ReportRecipient]:
        """The report recipients in force on `day`, in file order."""
        return [item for item in self.recipients if item.in_force(day)]

    def deadlines_passed(self, day: dt.date) -> list[Deadline]:
        """The transition deadlines that are overdue on `day` (date <= day), in date order."""
        return sorted((d for d in self.deadlines if d.date <= day), key=lambda d: d.date)

    def requirement_group(self, group_id: str) -> RequirementGroup:
        """The requirement group with this id; KeyError names the rule set when there is none."""
        for group in self.requirement_groups:
            if group.id == group_id:
                return group
        raise KeyError(f"rule set {self.id!r} has no requirement group {group_id!r}")


def _read(path: Path) -> tuple[RuleSet | None, list[str]]:
    source = path.name
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, [f"{source}: not UTF-8 text"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return None, [f"{source}: {where}not valid YAML ({getattr(exc, 'problem', exc)})"]
    if not isinstance(data, dict):
        return None, [f"{source}: expected a mapping of rule-set fields at the top level"]
    try:
        ruleset = RuleSet.model_validate(data)
    except ValidationError as exc:
        return None, validation_problems(source, exc)
    if ruleset.id != path.stem:
        return None, [f"{source}: id: {ruleset.id!r} does not match the file name (expected {path.stem!r})"]
    return ruleset, []


def _timeline_problems(files: Sequence[tuple[str, RuleSet]]) -> list[str]:
    problems = []
    ordered = sorted(files, key=lambda item: item[1].valid_from)
    for (name, current), (next_name, following) in pairwise(ordered):
        if current.valid_to is None:
            problems.append(f"{name}: valid_to: open-ended, but {next_name} starts on {following.valid_from} "
                            f"(overlap); set valid_to: {following.valid_from}")
        elif current.valid_to > following.valid_from:
            problems.append(f"{name}: valid_to: {current.valid_to} overlaps {next_name} (valid_from "
                            f"{following.valid_from}); valid_to is exclusive, so it should be {following.valid_from}")
        elif current.valid_to < following.valid_from:
            problems.append(f"{name}: valid_to: {current.valid_to} leaves a gap before {next_name} (valid_from "
                            f"{following.valid_from}): no rule set from {current.valid_to} to "
                            f"{following.valid_from - dt.timedelta(days=1)}")
    return problems


def _load(directory: Path) -> list[RuleSet]:
    if not directory.is_dir():
        raise RulesError([f"{directory}: rule-set directory not found"])
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise RulesError([f"{directory}: no rule-set files (*.yaml)"])
    problems: list[str] = []
    loaded: list[tuple[str, RuleSet]] = []
    for path in paths:
        ruleset, found = _read(path)
        problems += found
        if ruleset is not None:
            loaded.append((path.name, ruleset))
    problems += _timeline_problems(loaded)
    if problems:
        raise RulesError(problems)
    return sorted((ruleset for _, ruleset in loaded), key=lambda r: r.valid_from)


@cache
def _default_rulesets() -> tuple[RuleSet, ...]:
    return tuple(_load(RULESETS_DIR))


def load_rulesets(directory: Path | None = None) -> list[RuleSet]:
    """Every rule set of `directory` (default: the shipped ones, cached), validated, in date order.

    RulesError lists every problem, each naming the file and the field: invalid fields, an id that differs
    from the file name, rule sets that overlap in time or leave a gap after the first valid_from.
    """
    if directory is None:
        return list(_default_rulesets())
    return _load(directory)


def ruleset_for(day: dt.date, rulesets: Sequence[RuleSet] | None = None) -> RuleSet:
    """The rule set in force on `day`; RulesError when none is (before the first, or after an end date)."""
    candidates = load_rulesets() if rulesets is None else rulesets
    for ruleset in candidates:
        if ruleset.in_force(day):
            return ruleset
    first = min((r.valid_from for r in candidates), default=None)
    if first is not None and day < first:
        raise RulesError([f"no rule set in force on {day}: the first one starts on {first}"])
    raise RulesError([f"no rule set in force on {day}"])


def ruleset_by_id(ruleset_id: str, rulesets: Sequence[RuleSet] | None = None) -> RuleSet:
    """The rule set with this id (as recorded in SystemRecord.legal_basis); RulesError when unknown."""
    candidates = load_rulesets() if rulesets is None else rulesets
    for ruleset in candidates:
        if ruleset.id == ruleset_id:
            return ruleset
    known = ", ".join(r.id for r in candidates)
    raise RulesError([f"unknown rule set {ruleset_id!r} (known: {known})"])
