"""The drills part of the REST API (`/api/v1/drills`): the scenario library, sessions as the facilitator's
console sees them, the participants' screen (what the team may see, nothing more), commands, corrective actions.

Exercise-clock times are written as offsets ('+1h30m', `drills.scenario.format_offset`), with their seconds
beside them where a program computes with them. Request bodies forbid unknown fields and bound every string.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from soc.core.drill_records import CorrectiveAction, Participant, SessionStatus
from soc.core.text import Text
from soc.schemas.api import Request

Id = Annotated[str, Field(min_length=1, max_length=64)]
OffsetText = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^\s*\+?\s*(\d+\s*[dhms]\s*)+$|^\s*0\s*$",
                                  description="Exercise-clock duration, e.g. '+45m', '+2h', '+1d4h' (d, h, m, s).")]
"""The offset format of `drills.scenario.parse_offset` (which the API applies), checked here for a clear 422."""
Command = Literal["start", "pause", "resume", "advance", "release", "decide", "act", "note", "end"]
MAX_NOTE = 4_000
MAX_PARTICIPANTS = 200

ARGUMENTS: dict[str, frozenset[str]] = {
    "start": frozenset(), "pause": frozenset(), "resume": frozenset(),
    "advance": frozenset({"to", "by", "next"}), "release": frozenset({"inject"}),
    "decide": frozenset({"decision", "option"}),
    "act": frozenset({"expectation", "role", "participant", "quality", "note"}),
    "note": frozenset({"text"}), "end": frozenset({"at"}),
}
"""The arguments each command takes (any other one given is an error)."""
REQUIRED: dict[str, tuple[str, ...]] = {"release": ("inject",), "decide": ("decision", "option"),
                                        "act": ("expectation",), "note": ("text",)}


class SessionCreate(Request):
    """A planned session from a scenario of the library."""

    scenario: Id
    """The scenario's id (or its file name without .yaml) as GET /drills/scenarios lists it."""
    drill_date: date | None = None
    """The day the drill is held (default today): the rule set in force on it gives roles and deadlines."""
    participants: Annotated[list[Participant], Field(default_factory=list, max_length=MAX_PARTICIPANTS)]


class DrillCommand(Request):
    """One command to a session, with its own arguments only.

    advance: exactly one of `to` (a clock time), `by` (a duration) or `next: true` (the next inject's time);
    release: `inject`; decide: `decision`, `option`; act: `expectation`, optional `role` (default: the
    expectation's), `participant`, `quality`, `note`; note: `text`; end: optional `at`.
    """

    command: Command
    to: OffsetText | None = None
    by: OffsetText | None = None
    next: bool | None = None
    inject: Id | None = None
    decision: Id | None = None
    option: Id | None = None
    expectation: Id | None = None
    role: Id | None = None
    participant: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    quality: Literal["full", "partial"] | None = None
    note: Annotated[str | None, Field(max_length=MAX_NOTE)] = None
    text: Annotated[str | None, Field(min_length=1, max_length=MAX_NOTE)] = None
    at: OffsetText | None = None

    @model_validator(mode="after")
    def _arguments(self) -> DrillCommand:
        given = {name for names in ARGUMENTS.values() for name in names if getattr(self, name) is not None}
        extra = sorted(given - ARGUMENTS[self.command])
        if extra:
            raise ValueError(f"{self.command} takes no {', '.join(extra)}")
        missing = [name for name in REQUIRED.get(self.command, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.command} needs {', '.join(missing)}")
        if self.command == "advance":
            ways = [self.to is not None, self.by is not None, bool(self.next)]
            if sum(ways) != 1:
                raise ValueError("advance needs exactly one of 'to' (a clock time), 'by' (a duration), 'next': true")
        return self


class ActionDone(Request):
    """The owner says a corrective action is done."""

    note: Annotated[str | None, Field(max_length=MAX_NOTE)] = None


class ScenarioItem(BaseModel):
    """One file of the scenario library, valid or with every problem."""

    id: str
    """The scenario's id, or the file name without .yaml when it cannot be read."""
    file: str
    valid: bool
    problems: list[str] = []
    """`FILE:LINE: path: message`, one per problem (empty when valid)."""
    title: Text | None = None
    kind: str | None = None
    target: Text | None = None
    """The target system's name."""
    level: int | None = None
    duration: str | None = None


class ScenarioList(BaseModel):
    """The scenario library."""

    items: list[ScenarioItem]


class SessionItem(BaseModel):
    """A session in a list."""

    id: str
    scenario_id: str
    title: Text
    drill_date: date
    status: SessionStatus
    facilitator: str
    participants: int
    score: float | None = None
    created_at: datetime
    updated_at: datetime


class SessionList(BaseModel):
    """Sessions, newest drill date first."""

    items: list[SessionItem]


class ArtefactView(BaseModel):
    """A document handed out with an inject."""

    kind: str
    title: Text
    content: str


class ScreenInject(BaseModel):
    """A released inject as the team sees it: no hint, nothing of what comes next."""

    id: str
    phase: str
    title: Text
    released_at: str
    released_seconds: float
    to: list[str]
    read_aloud: Text
    artefacts: list[ArtefactView]
    questions: list[Text]


class InjectView(ScreenInject):
    """An inject as the facilitator sees it, released or upcoming."""

    released_at: str | None = None  # type: ignore[assignment]
    released_seconds: float | None = None  # type: ignore[assignment]
    released_by: str | None = None
    """'clock' (on time) or 'facilitator' (released early)."""
    due: str | None = None
    """When the clock releases it (None: on a branch not chosen yet)."""
    due_seconds: float | None = None
    trigger: str | None = None
    """'decision=option' for an inject of a branch."""
    releasable: bool = False
    hint: Text | None = None


class OptionView(BaseModel):
    """One answer at a decision point."""

    id: str
    label: Text
    consequence: Text | None = None


class DecisionView(BaseModel):
    """A decision point, open or taken."""

    id: str
    phase: str
    prompt: Text
    role: str
    options: list[OptionView]
    option: str | None = None
    """The option taken (None: still open)."""
    taken_at: str | None = None
    taken_by: str | None = None


class ScreenDecision(BaseModel):
    """An open decision as the team sees it (the options, not their consequences)."""

    id: str
    prompt: Text
    role: str
    options: list[Text]


class ActionView(BaseModel):
    """An action recorded against an expectation."""

    role: str
    participant: str | None
    quality: Literal["full", "partial"]
    at: str
    at_seconds: float
    note: str


class ExpectationView(BaseModel):
    """What a role should do before a deadline, and what was recorded."""

    id: str
    phase: str
    objective: str
    role: str
    action: Text
    weight: float
    every_participant: bool
    applicable: bool
    """False for a branch's expectation whose inject was not released."""
    deadline: str | None
    """On the exercise clock (None: its anchor inject is not out yet)."""
    deadline_seconds: float | None
    done: bool
    """At least one action was recorded."""
    overdue: bool
    """Not done and past its deadline."""
    actions: list[ActionView]


class NoteView(BaseModel):
    """A facilitator's note."""

    at: str
    by: str
    text: str


class RoleView(BaseModel):
    """A role of the scenario with its title in the rule set."""

    id: str
    title: Text


class SessionView(BaseModel):
    """A session as the facilitator's console shows it."""

    id: str
    scenario_id: str
    scenario_version: int
    title: Text
    drill_date: date
    ruleset: str
    facilitator: str
    participants: list[Participant]
    roles: list[RoleView]
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    clock: str
    """The exercise clock now."""
    clock_seconds: float
    duration: str
    duration_seconds: float
    version: int
    """The last event's sequence number: it changes with every event."""
    released: list[InjectView]
    """In release order."""
    upcoming: list[InjectView]
    """Not released: on the clock and triggered first (by due time), then those of branches not chosen yet."""
    open_decisions: list[DecisionView]
    decisions: list[DecisionView]
    """Those taken."""
    expectations: list[ExpectationView]
    notes: list[NoteView]
    score: float | None = None
    scorecard: dict[str, Any] | None = None
    """`drills.scoring.Scorecard` once ended (GET …/scorecard serves it typed)."""


class ParticipantScreen(BaseModel):
    """What the team's screen shows: the clock, the released injects, the open decisions."""

    id: str
    title: Text
    status: SessionStatus
    clock: str
    clock_seconds: float
    duration: str
    duration_seconds: float
    running: bool
    version: int
    released: list[ScreenInject]
    open_decisions: list[ScreenDecision]


class ActionList(BaseModel):
    """Corrective actions from drills, by due date."""

    items: list[CorrectiveAction]
