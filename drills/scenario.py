"""The scenario format of a tabletop drill: pydantic models, the source of the JSON Schema (`playbooks/schema.json`).

A scenario is data: phases of the national incident-handling process, injects released on the exercise clock
or by a decision, decision points whose options branch the scenario, and expectations (an action by a role
before a deadline, with a weight). Roles are the ids of the rule set in force on the drill date, and a
reporting deadline names a duty of that rule set (`report: initial_report`), never a number of hours: when
the rules change, the scenario stays right. Cross-references are checked by `drills.validate`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from soc.core.text import Text

MAX_TEXT = 20_000
"""Bound on one artefact's content (a log excerpt, an e-mail)."""

_PART = re.compile(r"(\d+)\s*(d|h|m|s)")


def parse_offset(value: Any) -> timedelta:
    """'+1d2h30m', '90m', '45s', '0' → a timedelta on the exercise clock; a number is seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '+1h30m'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '+1h30m'")
    text = value.strip().removeprefix("+").replace(" ", "")
    if text == "0":
        return timedelta()
    position, total = 0, timedelta()
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += timedelta(**{units[match.group(2)]: int(match.group(1))})
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration: write e.g. '+45m', '+2h', '+1d4h' (d, h, m, s)")
    return total


def format_offset(value: timedelta) -> str:
    """A timedelta as '+1d2h30m' ('+0m' for zero); the inverse of `parse_offset`."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return sign + ("".join(parts) or "0m")


Offset = Annotated[
    timedelta, BeforeValidator(parse_offset), PlainSerializer(format_offset, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\+?(\d+[dhms])+$|^0$",
                    "description": "exercise-clock duration, e.g. '+45m', '+2h', '+1d4h'"}),
]
"""A duration on the exercise clock, written '+1h30m'."""

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
Content = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phase(StrEnum):
    """The phases of the national incident-handling process (Thông tư 20/2017/TT-BTTTT), in order."""

    DETECTION = "detection"
    INITIAL_REPORT = "initial_report"
    ASSESSMENT = "assessment"
    CONTAINMENT = "containment"
    ERADICATION = "eradication"
    RECOVERY = "recovery"
    CLOSING_REPORT = "closing_report"
    LESSONS_LEARNED = "lessons_learned"


PHASE_TITLES: dict[Phase, Text] = {
    Phase.DETECTION: Text(vi="Phát hiện và tiếp nhận", en="Detection and receipt"),
    Phase.INITIAL_REPORT: Text(vi="Báo cáo ban đầu", en="Initial report"),
    Phase.ASSESSMENT: Text(vi="Đánh giá, phân loại", en="Assessment and classification"),
    Phase.CONTAINMENT: Text(vi="Ngăn chặn", en="Containment"),
    Phase.ERADICATION: Text(vi="Loại bỏ nguyên nhân", en="Eradication"),
    Phase.RECOVERY: Text(vi="Khôi phục", en="Recovery"),
    Phase.CLOSING_REPORT: Text(vi="Báo cáo kết thúc", en="Closing report"),
    Phase.LESSONS_LEARNED: Text(vi="Rút kinh nghiệm", en="Lessons learned"),
}


class Milestone(StrEnum):
    """The response times measured on the exercise clock (from the incident's start)."""

    DETECT = "detect"
    REPORT = "report"
    CONTAIN = "contain"
    RECOVER = "recover"


class Target(_Model):
    """The information system the scenario is about."""

    system: Text
    """Its name, e.g. 'Hệ thống Quản lý văn bản'."""
    level: Annotated[int, Field(ge=1, le=5)]
    system_id: str | None = None
    """Its id in the register, when the scenario is about one registered system."""
    agency: str | None = None
    """The owner agency's id in the inventory (corrective actions go to it by default)."""
    portal: str | None = None
    personal_data: bool = False
    """The system holds citizens' personal data (the personal-data notice duty applies)."""


class Objective(_Model):
    """What the drill sets out to test."""

    id: Identifier
    title: Text


class Artefact(_Model):
    """A document handed to the team with an inject: a log excerpt, an alert, a ransom note, an e-mail."""

    kind: Literal["log", "alert", "ransom_note", "email", "message", "document", "screenshot"]
    title: Text
    content: Content
    """Shown verbatim (escaped), in a monospace block for logs."""


class Trigger(_Model):
    """What releases an inject other than the clock: an option chosen at a decision point."""

    decision: Identifier
    option: Identifier
    delay: Offset = timedelta()
    """Exercise time between the decision and the release."""


class Inject(_Model):
    """A piece of the story released to the team: on the clock (`at`) or by a decision (`trigger`)."""

    id: Identifier
    phase: Phase
    title: Text
    at: Offset | None = None
    """Exercise-clock offset; exactly one of `at` and `trigger`."""
    trigger: Trigger | None = None
    to: tuple[Identifier, ...] = ()
    """The roles it is addressed to (empty: everyone)."""
    read_aloud: Text
    artefacts: tuple[Artefact, ...] = ()
    questions: tuple[Text, ...] = ()
    hint: Text | None = None
    """For the facilitator, when the team is stuck."""


class Option(_Model):
    """One answer at a decision point; it releases its `releases` injects (their triggers name it)."""

    id: Identifier
    label: Text
    consequence: Text | None = None


class Decision(_Model):
    """A decision point: a role chooses one option, which branches the scenario."""

    id: Identifier
    phase: Phase
    prompt: Text
    role: Identifier
    after: Identifier
    """The inject that opens the decision."""
    options: Annotated[tuple[Option, ...], Field(min_length=2)]
    default: Identifier | None = None
    """The option the console and the terminal propose first. Nobody deciding is not this option: the story
    then takes no branch (and the expectation to decide in time is missed)."""


class Deadline(_Model):
    """When an expectation falls due on the exercise clock: a fixed offset (`at`), a delay after an inject is
    released (`after` + `within`), or a reporting duty of the rule set in force, counted from detection."""

    at: Offset | None = None
    after: Identifier | None = None
    within: Offset | None = None
    report: Identifier | None = None
    """A duty id of the rule set's incident_response.reports (e.g. 'initial_report')."""


class Expectation(_Model):
    """An action a role should take before a deadline; scored met / partly / late / missed with its weight."""

    id: Identifier
    phase: Phase
    objective: Identifier
    role: Identifier
    action: Text
    deadline: Deadline
    weight: Annotated[float, Field(gt=0, le=100)] = 1
    milestone: Milestone | None = None
    """This action marks the time to detect / report / contain / recover."""
    requires: Identifier | None = None
    """An inject: the expectation only counts when that inject was released (a branch's expectations)."""
    every_participant: bool = False
    """Each participant must do it (an acknowledgement); credit is the share who did in time."""
    corrective_action: Text | None = None
    """The improvement to make when it is not fully met (default: do the action, and train for it)."""
    due_days: Annotated[int, Field(ge=1, le=365)] = 30
    """Days after the drill the corrective action is due."""


class Rubric(_Model):
    """How expectations turn into points."""

    partial_credit: Annotated[float, Field(ge=0, le=1)] = 0.5
    late_credit: Annotated[float, Field(ge=0, le=1)] = 0.25
    pass_mark: Annotated[float, Field(ge=0, le=100)] = 70


class Scenario(_Model):
    """One tabletop exercise."""

    id: Identifier
    version: Annotated[int, Field(ge=1)] = 1
    title: Text
    summary: Text
    kind: Literal["tabletop", "communication_check"] = "tabletop"
    target: Target
    duration: Offset
    """Length of the exercise on its clock; every deadline falls inside it."""
    detection: Identifier
    """The inject at whose release the incident counts as detected (reporting deadlines count from it)."""
    objectives: Annotated[tuple[Objective, ...], Field(min_length=1)]
    roles: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    """Ids of the rule set's incident_response.roles that take part."""
    injects: Annotated[tuple[Inject, ...], Field(min_length=1)]
    decisions: tuple[Decision, ...] = ()
    expectations: Annotated[tuple[Expectation, ...], Field(min_length=1)]
    rubric: Rubric = Rubric()
    generated_from: tuple[str, ...] = ()
    """Fingerprints of the findings a generated scenario was drafted from (their fix confirms its actions)."""

    def inject(self, inject_id: str) -> Inject:
        """The inject with this id (KeyError)."""
        for item in self.injects:
            if item.id == inject_id:
                return item
        raise KeyError(inject_id)

    def decision(self, decision_id: str) -> Decision:
        """The decision with this id (KeyError)."""
        for item in self.decisions:
            if item.id == decision_id:
                return item
        raise KeyError(decision_id)

    def expectation(self, expectation_id: str) -> Expectation:
        """The expectation with this id (KeyError)."""
        for item in self.expectations:
            if item.id == expectation_id:
                return item
        raise KeyError(expectation_id)

    def phases(self) -> list[Phase]:
        """The phases the scenario uses, in process order."""
        used = {i.phase for i in self.injects} | {e.phase for e in self.expectations}
        return [phase for phase in Phase if phase in used]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (written to playbooks/schema.json)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://soc.dongnai.gov.vn/schemas/drill-scenario.json"
    return schema
