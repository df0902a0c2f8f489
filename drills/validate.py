"""Read and check scenario files: the schema, then the cross-references, every problem as `FILE:LINE: path: message`.

The YAML is composed once to keep each node's line, so a pydantic error location or a cross-reference is
reported on the line that holds it (a missing field: the line of the mapping that lacks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from drills.scenario import Deadline, Scenario, format_offset
from soc.compliance.rules import RulesError, RuleSet, ruleset_for

MAX_FILE = 2_000_000
"""Bound on a scenario file's size (bytes)."""

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path or '(top)'}: {self.message}"


@dataclass
class Checked:
    """A scenario file read: the scenario when it is valid, else every problem."""

    source: str
    scenario: Scenario | None
    problems: list[Problem] = field(default_factory=list)
    text: str = ""

    @property
    def ok(self) -> bool:
        """Valid: no problem."""
        return self.scenario is not None and not self.problems


class ScenarioError(ValueError):
    """A scenario that cannot be used; every problem listed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in problems))


def dotted(location: Location) -> str:
    """('injects', 3, 'trigger') → 'injects[3].trigger'."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Lines:
    """Line numbers of the nodes of one YAML document."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def line(self, location: Location) -> int:
        node = self.root
        if node is None:
            return 1
        for part in location:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return int(node.start_mark.line) + 1


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None


def read_text(text: str, source: str, on: date | None = None) -> Checked:
    """Check one scenario's YAML text; `on`: the drill date whose rule set gives roles and deadlines."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return Checked(source, None, [Problem(source, line, "", f"not valid YAML ({getattr(exc, 'problem', exc)})")])
    lines = _Lines(root)
    if not isinstance(data, dict):
        return Checked(source, None, [Problem(source, lines.line(()), "", "expected a mapping of scenario fields")])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(source, lines.line(tuple(error["loc"])), dotted(tuple(error["loc"])), error["msg"])
                    for error in exc.errors()]
        return Checked(source, None, problems, text)
    try:
        rules = ruleset_for(on or date.today())
    except RulesError as exc:
        return Checked(source, None, [Problem(source, 1, "", str(exc))], text)
    found = [Problem(source, lines.line(location), dotted(location), message)
             for location, message in cross_reference(scenario, rules, on or date.today())]
    return Checked(source, scenario if not found else None, found, text)


def read_file(path: Path, on: date | None = None) -> Checked:
    """Check one scenario file (size bounded, UTF-8)."""
    source = str(path)
    try:
        if path.stat().st_size > MAX_FILE:
            return Checked(source, None, [Problem(source, 1, "", f"larger than {MAX_FILE // 1_000_000} MB")])
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Checked(source, None, [Problem(source, 1, "", "not UTF-8 text")])
    except OSError as exc:
        return Checked(source, None, [Problem(source, 1, "", f"cannot be read ({exc.strerror or exc})")])
    return read_text(text, source, on)


def load(path: Path, on: date | None = None) -> Scenario:
    """A valid scenario from its file, or ScenarioError with every problem."""
    checked = read_file(path, on)
    if checked.scenario is None or checked.problems:
        raise ScenarioError(checked.problems)
    return checked.scenario


def release_times(scenario: Scenario) -> dict[str, timedelta]:
    """Each reachable inject's earliest release on the exercise clock (a decision is taken the moment it opens)."""
    earliest: dict[str, timedelta] = {i.id: i.at for i in scenario.injects if i.at is not None}
    opens = {d.id: d.after for d in scenario.decisions}
    changed = True
    while changed:
        changed = False
        for inject in scenario.injects:
            if inject.trigger is None or inject.id in earliest:
                continue
            opener = opens.get(inject.trigger.decision)
            if opener is not None and opener in earliest:
                earliest[inject.id] = earliest[opener] + inject.trigger.delay
                changed = True
    return earliest


def deadline_offset(deadline: Deadline, scenario: Scenario, released: dict[str, timedelta], rules: RuleSet,
                    day: date) -> timedelta | None:
    """When a deadline falls on the exercise clock, given the injects released so far (None: not yet known,
    its anchor inject has not been released)."""
    if deadline.at is not None:
        return deadline.at
    if deadline.after is not None and deadline.within is not None:
        anchor = released.get(deadline.after)
        return None if anchor is None else anchor + deadline.within
    if deadline.report is not None:
        duty = rules.incident_response.duty(deadline.report, day)
        detected = released.get(scenario.detection)
        if duty is None or detected is None:
            return None
        return detected + timedelta(hours=duty.within_hours)
    return None


def cross_reference(scenario: Scenario, rules: RuleSet, day: date) -> list[tuple[Location, str]]:
    """What the schema cannot see: ids that must exist, roles that must be declared, reachability, deadlines."""
    problems: list[tuple[Location, str]] = []
    problems += _unique("objectives", [o.id for o in scenario.objectives])
    problems += _unique("injects", [i.id for i in scenario.injects])
    problems += _unique("decisions", [d.id for d in scenario.decisions])
    problems += _unique("expectations", [e.id for e in scenario.expectations])
    known_roles = {role.id for role in rules.incident_response.roles}
    for index, role in enumerate(scenario.roles):
        if role not in known_roles:
            problems.append((("roles", index), f"{role!r} is not a role of rule set {rules.id} "
                                               f"(known: {', '.join(sorted(known_roles))})"))
    declared = set(scenario.roles)
    injects = {i.id for i in scenario.injects}
    decisions = {d.id: d for d in scenario.decisions}
    if scenario.detection not in injects:
        problems.append((("detection",), f"no inject {scenario.detection!r}"))
    for index, inject in enumerate(scenario.injects):
        where: Location = ("injects", index)
        if (inject.at is None) == (inject.trigger is None):
            problems.append((where, "give exactly one of 'at' (the clock) and 'trigger' (a decision)"))
        if inject.at is not None and inject.at > scenario.duration:
            problems.append(((*where, "at"), f"{format_offset(inject.at)} is after the end of the exercise "
                                             f"({format_offset(scenario.duration)})"))
        problems += _roles((*where, "to"), inject.to, declared)
        if inject.trigger is not None:
            decision = decisions.get(inject.trigger.decision)
            if decision is None:
                problems.append(((*where, "trigger", "decision"), f"no decision {inject.trigger.decision!r}"))
            elif inject.trigger.option not in {o.id for o in decision.options}:
                problems.append(((*where, "trigger", "option"),
                                 f"decision {decision.id!r} has no option {inject.trigger.option!r}"))
    for index, decision in enumerate(scenario.decisions):
        where = ("decisions", index)
        problems += _roles((*where, "role"), (decision.role,), declared)
        if decision.after not in injects:
            problems.append(((*where, "after"), f"no inject {decision.after!r}"))
        problems += _unique(f"decisions[{index}].options", [o.id for o in decision.options], (*where, "options"))
        if decision.default is not None and decision.default not in {o.id for o in decision.options}:
            problems.append(((*where, "default"), f"no option {decision.default!r}"))
    times = release_times(scenario)
    for index, inject in enumerate(scenario.injects):
        if inject.id not in times and inject.trigger is not None and inject.trigger.decision in decisions:
            problems.append((("injects", index), "unreachable: the decision that releases it never opens"))
        elif inject.id in times and times[inject.id] > scenario.duration:
            problems.append((("injects", index), f"released at {format_offset(times[inject.id])} at the earliest, "
                                                 f"after the end of the exercise"))
    objectives = {o.id for o in scenario.objectives}
    for index, expectation in enumerate(scenario.expectations):
        where = ("expectations", index)
        problems += _roles((*where, "role"), (expectation.role,), declared)
        if expectation.objective not in objectives:
            problems.append(((*where, "objective"), f"no objective {expectation.objective!r}"))
        if expectation.requires is not None and expectation.requires not in injects:
            problems.append(((*where, "requires"), f"no inject {expectation.requires!r}"))
        problems += _deadline((*where, "deadline"), expectation.deadline, scenario, rules, day, times, injects)
    used = {e.objective for e in scenario.expectations}
    for index, objective in enumerate(scenario.objectives):
        if objective.id not in used:
            problems.append((("objectives", index), f"objective {objective.id!r} has no expectation: it cannot "
                                                    f"be scored"))
    return problems


def _deadline(where: Location, deadline: Deadline, scenario: Scenario, rules: RuleSet, day: date,
              times: dict[str, timedelta], injects: set[str]) -> list[tuple[Location, str]]:
    forms = [deadline.at is not None, deadline.after is not None or deadline.within is not None,
             deadline.report is not None]
    if sum(forms) != 1:
        return [(where, "give exactly one of 'at', 'after' with 'within', and 'report'")]
    if forms[1] and (deadline.after is None or deadline.within is None):
        return [(where, "'after' and 'within' go together")]
    if deadline.after is not None and deadline.after not in injects:
        return [((*where, "after"), f"no inject {deadline.after!r}")]
    if deadline.report is not None:
        duty = rules.incident_response.duty(deadline.report, day)
        if duty is None:
            known = ", ".join(d.id for d in rules.incident_response.reports if d.in_force(day))
            return [((*where, "report"), f"rule set {rules.id} has no reporting duty {deadline.report!r} in force "
                                         f"on {day:%d/%m/%Y} (known: {known})")]
        if duty.applies == "personal_data" and not scenario.target.personal_data:
            return [((*where, "report"), f"{duty.id} applies only to personal data: set target.personal_data")]
    offset = deadline_offset(deadline, scenario, times, rules, day)
    if offset is not None and offset > scenario.duration:
        return [(where, f"falls at {format_offset(offset)}, after the end of the exercise "
                        f"({format_offset(scenario.duration)}) under rule set {rules.id}")]
    return []


def _roles(where: Location, roles: Iterable[str], declared: set[str]) -> list[tuple[Location, str]]:
    return [(where, f"role {role!r} is not declared in the scenario's roles") for role in roles if role not in declared]


def _unique(name: str, ids: Sequence[str], where: Location | None = None) -> list[tuple[Location, str]]:
    seen: dict[str, int] = {}
    problems: list[tuple[Location, str]] = []
    base: Location = where if where is not None else (name,)
    for index, value in enumerate(ids):
        if value in seen:
            problems.append(((*base, index, "id"), f"duplicate id {value!r} (first at [{seen[value]}])"))
        seen.setdefault(value, index)
    return problems
