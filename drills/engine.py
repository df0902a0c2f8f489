"""The drill engine: a session's state as the fold of its events, and the commands that append events.

One engine, three ways to drive it (the web console, the terminal, a responses file): each command checks the
state, turns into one or more events, and each event is written to the log before the state moves on — a
session interrupted at any point resumes from its log. The exercise clock runs in real time while the session
runs, stops when paused, and jumps when the facilitator advances it; injects due on the way are released in
their order with the clock time they were due at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

from drills.scenario import Scenario, format_offset
from drills.validate import deadline_offset
from soc.compliance.rules import RuleSet, ruleset_for
from soc.core.drill_records import DrillEvent, DrillSession, Participant, SessionStatus

MAX_NOTE = 4_000
"""Bound on a note or an action's comment."""


class EventKind(StrEnum):
    """What a session's log records."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    ADVANCE = "advance"
    RELEASE = "release"
    ACTION = "action"
    DECISION = "decision"
    NOTE = "note"
    END = "end"


class DrillError(ValueError):
    """A command the session's state refuses (the message says why, in Vietnamese and English)."""


class SessionLog(Protocol):
    """Where a session's events go (the store's drill part implements it)."""

    def append_event(self, event: DrillEvent, status: SessionStatus | None = None) -> DrillEvent:
        """Keep one event (and the session's new status) atomically; return it with its seq."""
        ...


@dataclass(frozen=True)
class Action:
    """An action recorded against an expectation."""

    expectation: str
    role: str
    participant: str | None
    quality: Literal["full", "partial"]
    at: timedelta
    real_at: datetime
    note: str


@dataclass
class SessionState:
    """Everything a session's events say, over its scenario."""

    session: DrillSession
    scenario: Scenario
    rules: RuleSet
    status: SessionStatus = SessionStatus.PLANNED
    clock: timedelta = timedelta()
    """The exercise clock at `clock_real` (while running) or now (while paused)."""
    clock_real: datetime | None = None
    released: dict[str, timedelta] = field(default_factory=dict)
    """Inject id → when it was released on the exercise clock, in release order."""
    released_by: dict[str, str] = field(default_factory=dict)
    pending: dict[str, timedelta] = field(default_factory=dict)
    """Injects a decision triggered, not yet released → when they fall due."""
    decisions: dict[str, tuple[str, timedelta, str]] = field(default_factory=dict)
    """Decision id → (option, when, who)."""
    actions: list[Action] = field(default_factory=list)
    notes: list[tuple[timedelta, str, str]] = field(default_factory=list)
    seq: int = 0

    @property
    def day(self) -> date:
        """The drill date (its rule set applies)."""
        return self.session.drill_date

    def exercise_now(self, real: datetime) -> timedelta:
        """The exercise clock at the real moment `real` (capped at the exercise's end)."""
        now = self.clock
        if self.status is SessionStatus.RUNNING and self.clock_real is not None:
            now += max(real - self.clock_real, timedelta())
        return min(now, self.scenario.duration)

    def due(self, until: timedelta) -> list[tuple[timedelta, str]]:
        """Injects not yet released that fall due at or before `until`, in order."""
        waiting = [(i.at, i.id) for i in self.scenario.injects if i.at is not None and i.id not in self.released]
        waiting += [(at, inject) for inject, at in self.pending.items() if inject not in self.released]
        return sorted((at, inject) for at, inject in waiting if at <= until)

    def open_decisions(self) -> list[str]:
        """Decisions whose opening inject is out and which nobody has taken yet."""
        return [d.id for d in self.scenario.decisions if d.after in self.released and d.id not in self.decisions]

    def deadline(self, expectation_id: str) -> timedelta | None:
        """When an expectation falls due, as far as the released injects tell."""
        expectation = self.scenario.expectation(expectation_id)
        return deadline_offset(expectation.deadline, self.scenario, self.released, self.rules, self.day)

    def applicable(self, expectation_id: str) -> bool:
        """Whether the expectation counts on the path taken (its `requires` inject released)."""
        requires = self.scenario.expectation(expectation_id).requires
        return requires is None or requires in self.released

    def participants_in(self, role: str) -> list[Participant]:
        """The session's participants in one role."""
        return [p for p in self.session.participants if p.role == role]


def seconds(value: timedelta) -> float:
    """Exercise time as stored."""
    return value.total_seconds()


def apply(state: SessionState, event: DrillEvent) -> SessionState:
    """Move the state by one event (events come from the log: they are not checked again)."""
    at = timedelta(seconds=event.exercise_seconds)
    kind, data = EventKind(event.kind), event.data
    state.seq = max(state.seq, event.seq)
    if kind in (EventKind.START, EventKind.RESUME):
        state.status, state.clock, state.clock_real = SessionStatus.RUNNING, at, event.real_at
    elif kind is EventKind.PAUSE:
        state.status, state.clock, state.clock_real = SessionStatus.PAUSED, at, None
    elif kind is EventKind.ADVANCE:
        state.clock = at
        state.clock_real = event.real_at if state.status is SessionStatus.RUNNING else None
    elif kind is EventKind.RELEASE:
        inject = str(data["inject"])
        state.released[inject] = at
        state.released_by[inject] = str(data.get("by", "clock"))
        state.pending.pop(inject, None)
    elif kind is EventKind.DECISION:
        decision, option = str(data["decision"]), str(data["option"])
        state.decisions[decision] = (option, at, event.actor)
        for item in state.scenario.injects:
            trigger = item.trigger
            if trigger is not None and trigger.decision == decision and trigger.option == option:
                state.pending[item.id] = at + trigger.delay
    elif kind is EventKind.ACTION:
        state.actions.append(Action(
            expectation=str(data["expectation"]), role=str(data["role"]),
            participant=data.get("participant"), quality="partial" if data.get("quality") == "partial" else "full",
            at=at, real_at=event.real_at, note=str(data.get("note", ""))))
    elif kind is EventKind.NOTE:
        state.notes.append((at, event.actor, str(data.get("text", ""))))
    elif kind is EventKind.END:
        state.status, state.clock, state.clock_real = SessionStatus.ENDED, at, None
    return state


def replay(session: DrillSession, scenario: Scenario, events: Sequence[DrillEvent]) -> SessionState:
    """A session's state from its log."""
    state = SessionState(session=session, scenario=scenario, rules=ruleset_for(session.drill_date),
                         status=SessionStatus.PLANNED)
    for event in sorted(events, key=lambda e: e.seq):
        apply(state, event)
    return state


class Engine:
    """Commands on one session; every accepted command is written to the log before it takes effect."""

    def __init__(self, state: SessionState, log: SessionLog) -> None:
        self.state = state
        self.log = log

    def _emit(self, kind: EventKind, real: datetime, at: timedelta, actor: str,
              status: SessionStatus | None = None, **data: Any) -> DrillEvent:
        event = DrillEvent(session_id=self.state.session.id, kind=kind.value, real_at=real,
                           exercise_seconds=seconds(at), actor=actor, data=data)
        stored = self.log.append_event(event, status)
        apply(self.state, stored)
        return stored

    def _running(self, what: str) -> None:
        if self.state.status is SessionStatus.ENDED:
            raise DrillError(f"Phiên diễn tập đã kết thúc / the session has ended: cannot {what}")
        if self.state.status is SessionStatus.PLANNED:
            raise DrillError(f"Phiên diễn tập chưa bắt đầu / the session has not started: cannot {what}")

    def catch_up(self, real: datetime, actor: str = "clock") -> list[str]:
        """Release every inject that has fallen due on the running clock; return their ids."""
        if self.state.status not in (SessionStatus.RUNNING, SessionStatus.PAUSED):
            return []
        return self._release_until(self.state.exercise_now(real), real, actor)

    def _release_until(self, until: timedelta, real: datetime, actor: str) -> list[str]:
        released = []
        for at, inject in self.state.due(until):
            self._emit(EventKind.RELEASE, real, at, actor, inject=inject, by="clock")
            released.append(inject)
        return released

    def start(self, real: datetime, actor: str) -> list[str]:
        """Start the exercise clock at 0 and release what is due at once."""
        if self.state.status is not SessionStatus.PLANNED:
            raise DrillError("Phiên đã bắt đầu / the session has already started")
        self._emit(EventKind.START, real, timedelta(), actor, SessionStatus.RUNNING)
        return self.catch_up(real)

    def pause(self, real: datetime, actor: str) -> None:
        """Stop the clock (what fell due before is released first)."""
        self._running("pause")
        if self.state.status is SessionStatus.PAUSED:
            raise DrillError("Phiên đang tạm dừng / the session is already paused")
        self.catch_up(real)
        self._emit(EventKind.PAUSE, real, self.state.exercise_now(real), actor, SessionStatus.PAUSED)

    def resume(self, real: datetime, actor: str) -> None:
        """Let the clock run again from where it stopped."""
        self._running("resume")
        if self.state.status is not SessionStatus.PAUSED:
            raise DrillError("Phiên không tạm dừng / the session is not paused")
        self._emit(EventKind.RESUME, real, self.state.clock, actor, SessionStatus.RUNNING)

    def advance(self, to: timedelta, real: datetime, actor: str) -> list[str]:
        """Move the clock forward to `to` (at most the exercise's end), releasing what falls due on the way."""
        self._running("advance the clock")
        now = self.state.exercise_now(real)
        target = min(to, self.state.scenario.duration)
        if target < now:
            raise DrillError(f"Đồng hồ chỉ tiến / the clock only moves forward: it stands at {format_offset(now)}, "
                             f"{format_offset(to)} is earlier")
        released = self._release_until(target, real, "clock")
        self._emit(EventKind.ADVANCE, real, target, actor)
        return released

    def release(self, inject_id: str, real: datetime, actor: str) -> None:
        """Release an inject now, ahead of its time (the facilitator's call)."""
        self._running("release an inject")
        try:
            inject = self.state.scenario.inject(inject_id)
        except KeyError:
            raise DrillError(f"Không có tình huống / no inject {inject_id!r}") from None
        if inject_id in self.state.released:
            raise DrillError(f"Tình huống đã phát / inject {inject_id!r} is already released")
        if inject.trigger is not None and inject_id not in self.state.pending:
            raise DrillError(f"Tình huống {inject_id!r} thuộc nhánh chưa chọn / belongs to a branch not taken")
        self.catch_up(real)
        self._emit(EventKind.RELEASE, real, self.state.exercise_now(real), actor, inject=inject_id, by="facilitator")

    def decide(self, decision_id: str, option_id: str, real: datetime, actor: str) -> list[str]:
        """Record the option chosen at a decision point; injects it triggers with no delay are released."""
        self._running("record a decision")
        self.catch_up(real)
        try:
            decision = self.state.scenario.decision(decision_id)
        except KeyError:
            raise DrillError(f"Không có điểm quyết định / no decision {decision_id!r}") from None
        if decision_id in self.state.decisions:
            raise DrillError(f"Quyết định {decision_id!r} đã được ghi / already taken")
        if decision.after not in self.state.released:
            raise DrillError(f"Quyết định {decision_id!r} chưa mở / not open yet (it opens with inject "
                             f"{decision.after!r})")
        if option_id not in {o.id for o in decision.options}:
            raise DrillError(f"Quyết định {decision_id!r} không có phương án / has no option {option_id!r}")
        self._emit(EventKind.DECISION, real, self.state.exercise_now(real), actor, decision=decision_id,
                   option=option_id)
        return self.catch_up(real)

    def act(self, expectation_id: str, role: str, real: datetime, actor: str, *, participant: str | None = None,
            quality: Literal["full", "partial"] = "full", note: str = "") -> None:
        """Record that a role (a participant) did what an expectation asks, now on the exercise clock."""
        self._running("record an action")
        self.catch_up(real)
        try:
            expectation = self.state.scenario.expectation(expectation_id)
        except KeyError:
            raise DrillError(f"Không có yêu cầu / no expectation {expectation_id!r}") from None
        if role not in self.state.scenario.roles:
            raise DrillError(f"Vai trò {role!r} không có trong kịch bản / is not a role of the scenario")
        if not self.state.applicable(expectation_id):
            raise DrillError(f"Yêu cầu {expectation_id!r} không áp dụng ở nhánh này / does not apply on this path")
        names = {p.name for p in self.state.session.participants}
        if participant is not None and participant not in names:
            raise DrillError(f"{participant!r} không phải người tham gia / is not a participant of the session")
        if expectation.every_participant and participant is None:
            raise DrillError(f"Yêu cầu {expectation_id!r} cần tên người xác nhận / needs the participant's name")
        self._emit(EventKind.ACTION, real, self.state.exercise_now(real), actor, expectation=expectation_id,
                   role=role, participant=participant, quality=quality, note=note[:MAX_NOTE])

    def note(self, text: str, real: datetime, actor: str) -> None:
        """Keep a facilitator's note on the exercise clock."""
        self._running("add a note")
        if not text.strip():
            raise DrillError("Ghi chú trống / the note is empty")
        self.catch_up(real)
        self._emit(EventKind.NOTE, real, self.state.exercise_now(real), actor, text=text[:MAX_NOTE])

    def end(self, real: datetime, actor: str, at: timedelta | None = None) -> None:
        """End the exercise (at the current clock, or at `at` after advancing to it)."""
        self._running("end it")
        if at is not None and at > self.state.exercise_now(real):
            self._release_until(min(at, self.state.scenario.duration), real, "clock")
            end_at = min(at, self.state.scenario.duration)
        else:
            self.catch_up(real)
            end_at = self.state.exercise_now(real)
        self._emit(EventKind.END, real, end_at, actor, SessionStatus.ENDED)
