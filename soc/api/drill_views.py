"""Drill sessions for the API and the dashboard: the scenario library, a session's state as the console and the
participants' screen show it, and commands, all through `soc.services.drills`.

Commands on sessions are serialised in this process (one lock): each one replays the log, checks and appends,
and two at once could both act on the same state. Reading a running session first lets the clock release what
has fallen due (the engine's `catch_up`, acting as "clock"), so a screen that only reads still moves on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml
from pydantic import ValidationError

from drills.engine import SessionState
from drills.scenario import Inject, Scenario, format_offset, parse_offset
from drills.validate import Checked
from soc.api.problems import ApiError, Conflict, NotFound
from soc.core.drill_records import DrillSession, Participant, SessionStatus
from soc.core.text import Text
from soc.schemas.drills import (
    ActionView,
    ArtefactView,
    DecisionView,
    DrillCommand,
    ExpectationView,
    InjectView,
    NoteView,
    OptionView,
    ParticipantScreen,
    RoleView,
    ScenarioItem,
    ScreenDecision,
    ScreenInject,
    SessionItem,
    SessionView,
)
from soc.services import drills as service
from soc.services.context import ServiceContext, ServiceError

LOCK = threading.Lock()
"""One command (or clock catch-up) on a session at a time in this process."""
CLOCK_ACTOR = "clock"


@dataclass(frozen=True)
class LibraryEntry:
    """A scenario file of the library: what the checker said, and how the API lists it."""

    checked: Checked
    item: ScenarioItem


def _problem_text(text: str, folder: Path) -> str:
    """A problem as the caller sees it: file names relative to the library (no server paths)."""
    return text.replace(str(folder) + "/", "")


def _schema_valid(checked: Checked) -> Scenario | None:
    """The scenario of a file whose fields are right but whose cross-references are not (to list its title)."""
    if not checked.text:
        return None
    try:
        return Scenario.model_validate(yaml.safe_load(checked.text))
    except (yaml.YAMLError, ValidationError):
        return None


def library(folder: Path | None = None) -> list[LibraryEntry]:
    """Every scenario file of the library, valid or not (checked against today's rules)."""
    base = folder or service.PLAYBOOKS
    entries = []
    for checked in service.library(folder):
        path = Path(checked.source)
        scenario = checked.scenario or _schema_valid(checked)
        problems = [_problem_text(str(p), base) for p in checked.problems]
        if scenario is None:
            item = ScenarioItem(id=path.stem, file=path.name, valid=False, problems=problems)
        else:
            item = ScenarioItem(id=scenario.id, file=path.name, valid=checked.ok, problems=problems,
                                title=scenario.title, kind=scenario.kind, target=scenario.target.system,
                                level=scenario.target.level, duration=format_offset(scenario.duration))
        entries.append(LibraryEntry(checked, item))
    return entries


def find_scenario(entries: list[LibraryEntry], key: str) -> LibraryEntry:
    """The library entry of a scenario id or file name (without .yaml); NotFound otherwise."""
    for entry in entries:
        if key in (entry.item.id, Path(entry.item.file).stem):
            return entry
    raise ApiError(f"scenario: no scenario {key[:64]!r} in the library "
                   f"({', '.join(e.item.id for e in entries) or 'empty'})", 422)


def create(context: ServiceContext, scenario: str, drill_date: date | None, participants: Sequence[Participant],
           folder: Path | None = None) -> DrillSession:
    """A planned session from a library scenario (its id or file name); 422 listing every problem of a bad one."""
    entry = find_scenario(library(folder), scenario)
    if not entry.item.valid:
        raise ApiError(f"scenario {entry.item.id!r} cannot be used, it has problems:\n"
                       + "\n".join(entry.item.problems), 422)
    try:
        return service.create_session(context, Path(entry.checked.source), drill_date=drill_date,
                                      participants=participants)
    except ServiceError as exc:
        raise ApiError(_problem_text(str(exc), folder or service.PLAYBOOKS), 422) from None


def session_item(session: DrillSession) -> SessionItem:
    """A session in a list."""
    return SessionItem(id=session.id, scenario_id=session.scenario_id,
                       title=Text(vi=session.title_vi, en=session.title_en), drill_date=session.drill_date,
                       status=session.status, facilitator=session.facilitator,
                       participants=len(session.participants), score=session.score, created_at=session.created_at,
                       updated_at=session.updated_at)


def _session(context: ServiceContext, session_id: str) -> DrillSession:
    session = context.backend.drills.session(session_id) if len(session_id) <= 64 else None
    if session is None:
        raise NotFound(f"no drill session {session_id[:64]!r}")
    return session


def _clock_context(context: ServiceContext) -> ServiceContext:
    return ServiceContext(context.settings, context.backend, context.clock, CLOCK_ACTOR)


def _state(context: ServiceContext, session_id: str) -> SessionState:
    try:
        return service.state_of(context, session_id)
    except ServiceError as exc:  # its stored scenario no longer validates under today's rules
        raise Conflict(str(exc)) from None


def current(context: ServiceContext, session_id: str) -> SessionState:
    """A session's state now: what the running clock has brought is released first (NotFound: no session)."""
    _session(context, session_id)
    with LOCK:
        state = _state(context, session_id)
        now = context.clock.now()
        running = state.status in (SessionStatus.RUNNING, SessionStatus.PAUSED)
        if running and state.due(state.exercise_now(now)) and not context.backend.read_only:
            state = service.command(_clock_context(context), session_id, "catch_up")
        return state


def offset(value: str, name: str) -> timedelta:
    """An exercise-clock duration from a request ('+1h30m'); 422 naming the field."""
    try:
        return parse_offset(value)
    except (ValueError, OverflowError) as exc:
        raise ApiError(f"{name}: {exc}"[:300], 422) from None


def _arguments(state: SessionState, body: DrillCommand, now: datetime) -> dict[str, object]:
    """The engine method's arguments for a command."""
    if body.command == "advance":
        clock = state.exercise_now(now)
        if body.to is not None:
            return {"to": offset(body.to, "to")}
        if body.by is not None:
            step = offset(body.by, "by")
            if step <= timedelta():
                raise ApiError("by: give a duration longer than zero", 422)
            return {"to": min(clock + step, state.scenario.duration)}
        ahead = state.due(state.scenario.duration)
        if not ahead:
            raise Conflict("Không còn tình huống nào theo đồng hồ / no inject is left on the clock")
        return {"to": max(ahead[0][0], clock)}
    if body.command == "release":
        return {"inject_id": body.inject}
    if body.command == "decide":
        return {"decision_id": body.decision, "option_id": body.option}
    if body.command == "act":
        assert body.expectation is not None
        role = body.role
        if role is None:
            known = {e.id: e.role for e in state.scenario.expectations}
            role = known.get(body.expectation, "")
        return {"expectation_id": body.expectation, "role": role, "participant": body.participant,
                "quality": body.quality or "full", "note": body.note or ""}
    if body.command == "note":
        return {"text": body.text}
    if body.command == "end" and body.at is not None:
        return {"at": offset(body.at, "at")}
    return {}


def run(context: ServiceContext, session_id: str, body: DrillCommand) -> SessionState:
    """Run one command; NotFound for an unknown session, Conflict (409) with the engine's reason when refused."""
    _session(context, session_id)
    with LOCK:
        state = _state(context, session_id)
        arguments = _arguments(state, body, context.clock.now())
        try:
            state = service.command(context, session_id, body.command, **arguments)
        except ServiceError as exc:
            raise Conflict(str(exc)) from None
        if state.status is SessionStatus.ENDED:  # the scoring was stored after the engine's state was built
            state = _state(context, session_id)
        return state


def _artefacts(inject: Inject) -> list[ArtefactView]:
    return [ArtefactView(kind=a.kind, title=a.title, content=a.content) for a in inject.artefacts]


def _screen_inject(inject: Inject, at: timedelta) -> ScreenInject:
    return ScreenInject(id=inject.id, phase=inject.phase.value, title=inject.title, released_at=format_offset(at),
                        released_seconds=at.total_seconds(), to=list(inject.to), read_aloud=inject.read_aloud,
                        artefacts=_artefacts(inject), questions=list(inject.questions))


def _inject(state: SessionState, inject: Inject, due: timedelta | None) -> InjectView:
    at = state.released.get(inject.id)
    trigger = inject.trigger
    live = state.status in (SessionStatus.RUNNING, SessionStatus.PAUSED)
    return InjectView(
        id=inject.id, phase=inject.phase.value, title=inject.title, to=list(inject.to), read_aloud=inject.read_aloud,
        artefacts=_artefacts(inject), questions=list(inject.questions), hint=inject.hint,
        released_at=None if at is None else format_offset(at),
        released_seconds=None if at is None else at.total_seconds(),
        released_by=state.released_by.get(inject.id), due=None if due is None else format_offset(due),
        due_seconds=None if due is None else due.total_seconds(),
        trigger=None if trigger is None else f"{trigger.decision}={trigger.option}",
        releasable=live and at is None and due is not None)


def _upcoming(state: SessionState) -> list[InjectView]:
    scenario, released = state.scenario, state.released
    timed = [(i.at, i) for i in scenario.injects if i.at is not None and i.id not in released]
    timed += [(at, scenario.inject(i)) for i, at in state.pending.items() if i not in released]
    branches = [i for i in scenario.injects if i.trigger is not None and i.id not in released
                and i.id not in state.pending and i.trigger.decision not in state.decisions]
    ordered = sorted(timed, key=lambda pair: (pair[0], [i.id for i in scenario.injects].index(pair[1].id)))
    return [_inject(state, i, at) for at, i in ordered] + [_inject(state, i, None) for i in branches]


def _decision(state: SessionState, decision_id: str) -> DecisionView:
    decision = state.scenario.decision(decision_id)
    taken = state.decisions.get(decision_id)
    return DecisionView(id=decision.id, phase=decision.phase.value, prompt=decision.prompt, role=decision.role,
                        options=[OptionView(id=o.id, label=o.label, consequence=o.consequence)
                                 for o in decision.options],
                        option=None if taken is None else taken[0],
                        taken_at=None if taken is None else format_offset(taken[1]),
                        taken_by=None if taken is None else taken[2])


def _expectations(state: SessionState, clock: timedelta) -> list[ExpectationView]:
    views = []
    everyone = {p.name for p in state.session.participants}
    for expectation in state.scenario.expectations:
        actions = [a for a in state.actions if a.expectation == expectation.id]
        deadline = state.deadline(expectation.id)
        if expectation.every_participant:
            done = bool(actions) and everyone <= {a.participant for a in actions}
        else:
            done = bool(actions)
        applicable = state.applicable(expectation.id)
        views.append(ExpectationView(
            id=expectation.id, phase=expectation.phase.value, objective=expectation.objective, role=expectation.role,
            action=expectation.action, weight=expectation.weight, every_participant=expectation.every_participant,
            applicable=applicable, deadline=None if deadline is None else format_offset(deadline),
            deadline_seconds=None if deadline is None else deadline.total_seconds(), done=done,
            overdue=applicable and not done and deadline is not None and clock > deadline,
            actions=[ActionView(role=a.role, participant=a.participant, quality=a.quality, at=format_offset(a.at),
                                at_seconds=a.at.total_seconds(), note=a.note) for a in actions]))
    return views


def _roles(state: SessionState) -> list[RoleView]:
    views = []
    for role in state.scenario.roles:
        known = state.rules.incident_response.role(role)
        views.append(RoleView(id=role, title=known.title if known is not None else Text(vi=role, en=role)))
    return views


def session_view(state: SessionState, now: datetime) -> SessionView:
    """The facilitator's view of a session at the real moment `now`."""
    session, scenario = state.session, state.scenario
    clock = state.exercise_now(now)
    return SessionView(
        id=session.id, scenario_id=session.scenario_id, scenario_version=session.scenario_version,
        title=Text(vi=session.title_vi, en=session.title_en), drill_date=session.drill_date, ruleset=session.ruleset,
        facilitator=session.facilitator, participants=list(session.participants), roles=_roles(state),
        status=state.status, created_at=session.created_at, updated_at=session.updated_at,
        clock=format_offset(clock), clock_seconds=clock.total_seconds(), duration=format_offset(scenario.duration),
        duration_seconds=scenario.duration.total_seconds(), version=state.seq,
        released=[_inject(state, scenario.inject(i), None) for i in state.released], upcoming=_upcoming(state),
        open_decisions=[_decision(state, d) for d in state.open_decisions()],
        decisions=[_decision(state, d) for d in state.decisions], expectations=_expectations(state, clock),
        notes=[NoteView(at=format_offset(at), by=by, text=text) for at, by, text in state.notes],
        score=session.score if state.status is SessionStatus.ENDED else None,
        scorecard=session.scorecard if state.status is SessionStatus.ENDED else None)


def screen_view(state: SessionState, now: datetime) -> ParticipantScreen:
    """What the team's screen shows: the clock, the injects released, the open decisions (prompt and options);
    never what is still to come, the facilitator's hints or the expectations."""
    session, scenario = state.session, state.scenario
    clock = state.exercise_now(now)
    opened = [scenario.decision(d) for d in state.open_decisions()]
    return ParticipantScreen(
        id=session.id, title=Text(vi=session.title_vi, en=session.title_en), status=state.status,
        clock=format_offset(clock), clock_seconds=clock.total_seconds(), duration=format_offset(scenario.duration),
        duration_seconds=scenario.duration.total_seconds(), running=state.status is SessionStatus.RUNNING,
        version=state.seq, released=[_screen_inject(scenario.inject(i), at) for i, at in state.released.items()],
        open_decisions=[ScreenDecision(id=d.id, prompt=d.prompt, role=d.role, options=[o.label for o in d.options])
                        for d in opened])
