"""`soc drill run SCENARIO` without --responses: a small team around one screen, the facilitator at the keyboard.

Every command is one engine command through the service, written to the store before the screen moves on: a
session closed by Ctrl-C (or a crash) resumes with `soc drill run --session ID`.
"""

from __future__ import annotations

import shlex
from datetime import date
from pathlib import Path

import typer
from rich.panel import Panel
from rich.table import Table

from drills.engine import SessionState
from drills.scenario import PHASE_TITLES, format_offset, parse_offset
from soc.cli.common import console, fail, shown
from soc.core.drill_records import SessionStatus
from soc.services import drills as service
from soc.services.context import ServiceContext, ServiceError

HELP = """Lệnh / commands:
  n                    tiến tới tình huống kế tiếp / advance to the next inject
  t +30m               tiến đồng hồ thêm / advance the clock by a duration
  a EXP ROLE [partial] [NAME]  ghi hành động / record an action (NAME: participant, for acknowledgements)
  d DECISION OPTION    ghi quyết định / record a decision
  r INJECT             phát sớm tình huống / release an inject early
  note TEXT            ghi chú / note
  p                    tạm dừng / tiếp tục — pause / resume
  s                    trạng thái / status (expectations and deadlines)
  e                    kết thúc và chấm điểm / end and score
  q                    thoát (phiên được lưu) / quit (the session is kept)"""


def _show_inject(state: SessionState, inject_id: str) -> None:
    inject = state.scenario.inject(inject_id)
    body = f"[bold]{shown(inject.read_aloud.vi)}[/]\n[dim]{shown(inject.read_aloud.en)}[/]"
    for artefact in inject.artefacts:
        body += (f"\n\n[cyan]{shown(artefact.title.vi)} / {shown(artefact.title.en)}[/]\n"
                 f"{shown(artefact.content, multiline=True)}")
    for question in inject.questions:
        body += f"\n[yellow]? {shown(question.vi)}[/] [dim]/ {shown(question.en)}[/]"
    at = format_offset(state.released[inject_id])
    console.print(Panel(body, title=f"{at} · {shown(inject.title.vi)} · {PHASE_TITLES[inject.phase].vi}",
                        subtitle=inject.id))


def _status(state: SessionState) -> None:
    table = Table(title=f"Yêu cầu / Expectations — {state.scenario.title.vi}")
    for column in ("Mã / Id", "Vai trò / Role", "Hạn / Due", "Đã làm / Done"):
        table.add_column(column)
    done = {a.expectation for a in state.actions}
    for expectation in state.scenario.expectations:
        if not state.applicable(expectation.id):
            continue
        due = state.deadline(expectation.id)
        table.add_row(expectation.id, expectation.role, "?" if due is None else format_offset(due),
                      "✓" if expectation.id in done else "")
    console.print(table)
    for decision in state.open_decisions():
        item = state.scenario.decision(decision)
        options = ", ".join(f"{o.id} ({shown(o.label.vi)})" for o in item.options)
        console.print(f"[magenta]Quyết định mở / open decision[/] {decision}: {shown(item.prompt.vi)} → {options}")


def _apply(context: ServiceContext, session_id: str, words: list[str], state: SessionState) -> SessionState | None:
    verb, rest = words[0], words[1:]
    if verb == "n":
        upcoming = state.due(state.scenario.duration)
        if not upcoming:
            raise ServiceError("không còn tình huống theo lịch / no inject left on the clock")
        return service.command(context, session_id, "advance", to=upcoming[0][0])
    if verb == "t" and rest:
        return service.command(context, session_id, "advance",
                               to=state.exercise_now(context.clock.now()) + parse_offset(rest[0]))
    if verb == "a" and len(rest) >= 2:
        quality = "partial" if "partial" in rest[2:] else "full"
        names = [w for w in rest[2:] if w != "partial"]
        return service.command(context, session_id, "act", expectation_id=rest[0], role=rest[1], quality=quality,
                               participant=" ".join(names) or None)
    if verb == "d" and len(rest) == 2:
        return service.command(context, session_id, "decide", decision_id=rest[0], option_id=rest[1])
    if verb == "r" and rest:
        return service.command(context, session_id, "release", inject_id=rest[0])
    if verb == "note" and rest:
        return service.command(context, session_id, "note", text=" ".join(rest))
    if verb == "p":
        return service.command(context, session_id, "resume" if state.status is SessionStatus.PAUSED else "pause")
    if verb == "e":
        return service.command(context, session_id, "end")
    if verb == "s":
        _status(state)
        return state
    console.print(HELP, markup=False)
    return state


def run_terminal(context: ServiceContext, scenario: Path | None, session_id: str | None, day: date | None) -> None:
    """Create (or resume) a session and drive it from the keyboard until it ends or the facilitator quits."""
    if session_id is None:
        assert scenario is not None
        try:
            session = service.create_session(context, scenario, drill_date=day)
        except ServiceError as exc:
            fail(str(exc))
        session_id = session.id
        console.print(f"Phiên mới / new session [bold]{session_id}[/] — tiếp tục sau bằng / resume with "
                      f"`soc drill run --session {session_id}`")
        state = service.command(context, session_id, "start")
    else:
        state = service.state_of(context, session_id)
        if state.status is SessionStatus.PLANNED:
            state = service.command(context, session_id, "start")
    console.print(HELP, markup=False)
    shown_ids = set()
    while True:
        state = service.command(context, session_id, "catch_up")
        for inject_id in state.released:
            if inject_id not in shown_ids:
                _show_inject(state, inject_id)
                shown_ids.add(inject_id)
        if state.status is SessionStatus.ENDED:
            break
        clock = format_offset(state.exercise_now(context.clock.now()))
        try:
            line = typer.prompt(f"[{clock}] soc-drill", default="s", show_default=False)
        except (EOFError, typer.Abort):
            line = "q"
        try:
            words = shlex.split(line)
        except ValueError as exc:
            console.print(f"[red]{shown(exc)}[/]")
            continue
        if not words:
            continue
        if words[0] == "q":
            console.print(f"Đã lưu / kept: `soc drill run --session {session_id}` để tiếp tục / to resume")
            return
        try:
            _apply(context, session_id, words, state)
        except (ServiceError, ValueError) as exc:
            console.print(f"[red]{shown(exc)}[/]")
    finished = service.finish(context, session_id)
    console.print(f"Điểm / score [bold]{finished.scorecard.score.value}[/]/100; "
                  f"{len(finished.actions)} hành động khắc phục / corrective actions")
