"""Drills on the dashboard: the scenario library and the sessions, the facilitator's console of one session,
and the participants' screen (what the team looks at: the clock and the released injects, nothing to come).

Every change goes through `soc.api.drill_views` → `soc.services.drills` (the same engine, checks and audit as
the API and the terminal); a refused command shows the engine's reason on the console. Reading needs `read`,
every form `drills` (incident, admin); viewers see the console without its forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from drills.scenario import PHASE_TITLES
from drills.scoring import VERDICT_TITLES
from soc.api import drill_views as views
from soc.api.problems import ApiError
from soc.api.routes.drills import library_folder
from soc.compliance.rules import RulesError, ruleset_for
from soc.core.clock import today
from soc.core.drill_records import CorrectiveAction, Participant, SessionStatus
from soc.core.text import Text
from soc.schemas.drills import MAX_PARTICIPANTS, DrillCommand, SessionView
from soc.services import drills as service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission, Principal
from soc.web.auth import acting, check_form
from soc.web.pages.say import say
from soc.web.templating import language_of, render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
MAX_LINES = 20_000
"""Characters of the participants box."""
ARTEFACT_KINDS = {"log": N_("Log excerpt"), "alert": N_("Alert"), "ransom_note": N_("Ransom note"),
                  "email": N_("E-mail"), "message": N_("Message"), "document": N_("Document"),
                  "screenshot": N_("Screenshot")}
NOTICES = {"start": N_("The exercise clock started."), "pause": N_("The exercise clock is paused."),
           "resume": N_("The exercise clock runs again."), "advance": N_("The exercise clock moved forward."),
           "release": N_("The inject is released."), "decide": N_("The decision is recorded."),
           "act": N_("The action is recorded."), "note": N_("The note is kept."),
           "end": N_("The exercise has ended and is scored."), "created": N_("The session is created."),
           "done": N_("The corrective action is marked done.")}
ANCHORS = {"release": "injects", "decide": "decisions", "act": "expectations", "note": "notes", "end": "result",
           "done": "result"}
PAGE_WORDS = (N_("tabletop"), N_("communication_check"), N_("planned"), N_("paused"), N_("ended"), N_("full"),
              N_("partial"), N_("done"), N_("confirmed"),
              N_("No drill session with this id."), N_("No corrective action with this id."))
"""Words the templates translate from data (`| t`), and messages given them as values."""


@dataclass(frozen=True)
class CreateForm:
    """What the create form was sent with (shown back when it is refused)."""

    scenario: str = ""
    drill_date: str = ""
    participants: str = ""


@dataclass
class Lines:
    """Participants read from 'Name, role' lines, or what is wrong with them."""

    participants: list[Participant] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_participants(text: str, day: date) -> Lines:
    """'Name, role' per line (role: its id or its title in the rule set in force on `day`); blank lines skipped."""
    read = Lines()
    try:
        roles = ruleset_for(day).incident_response.roles
    except RulesError as exc:
        read.problems.append(str(exc))
        return read
    names = {r.id: r.id for r in roles}
    for known in roles:
        names |= {known.title.vi.casefold(): known.id, known.title.en.casefold(): known.id}
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) > MAX_PARTICIPANTS:
        read.problems.append(f"participants: at most {MAX_PARTICIPANTS} lines ({len(lines)} given)")
        return read
    for number, line in lines:
        name, comma, role = line.rpartition(",")
        role_id = names.get(role.strip().casefold()) or names.get(role.strip())
        if not comma or not name.strip():
            read.problems.append(f"participants, line {number}: write 'Name, role' ({line[:60]!r})")
        elif role_id is None:
            read.problems.append(f"participants, line {number}: {role.strip()[:64]!r} is not a role "
                                 f"({', '.join(r.id for r in roles)})")
        else:
            try:
                read.participants.append(Participant(name=name.strip(), role=role_id))
            except ValidationError:
                read.problems.append(f"participants, line {number}: the name is longer than 200 characters")
    return read


def _texts(request: Request) -> dict[str, Any]:
    """What every drill template needs to show bilingual data in the page's language."""
    language = language_of(request)

    def tr(text: Text | None) -> str:
        if text is None:
            return ""
        return text.vi if language == "vi" else text.en

    return {"tr": tr, "phases": {phase.value: title for phase, title in PHASE_TITLES.items()},
            "artefact_kinds": ARTEFACT_KINDS, "verdicts": {k: Text(vi=vi, en=en) for k, (vi, en) in
                                                           VERDICT_TITLES.items()},
            "clock_text": clock_text}


def clock_text(seconds: float) -> str:
    """The exercise clock as the screens show it: '+02:30:15', '+1d 04:00:00' (the same as drill-screen.js)."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    return "+" + (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _library_page(request: Request, who: Principal, context: ServiceContext, *, form: CreateForm | None = None,
                  problems: tuple[str, ...] = (), status_code: int = 200) -> Response:
    entries = views.library(library_folder(request))
    sessions = context.backend.drills.sessions(limit=200)
    try:
        roles = [(r.id, r.title) for r in ruleset_for(today(context.clock)).incident_response.roles]
    except RulesError:
        roles = []
    return render(request, "drills.html", who, status_code=status_code, scenarios=[e.item for e in entries],
                  sessions=[views.session_item(s) for s in sessions], form=form or CreateForm(), roles=roles,
                  problems=problems, today=today(context.clock).isoformat(), **_texts(request))


@router.get("/drills")
def drills_page(request: Request) -> Response:
    """The scenario library (bad files with their problems), the sessions with their scores, the create form."""
    who, context = acting(request, Permission.READ)
    return _library_page(request, who, context)


@router.post("/drills/sessions")
def create_session(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
                   scenario: Annotated[str, Form(max_length=64)] = "",
                   drill_date: Annotated[str, Form(max_length=40)] = "",
                   participants: Annotated[str, Form(max_length=MAX_LINES)] = "") -> Response:
    """A planned session from a library scenario; the console of the new session."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.DRILLS)
    form = CreateForm(scenario=scenario, drill_date=drill_date, participants=participants)
    try:
        day = date.fromisoformat(drill_date.strip()) if drill_date.strip() else today(context.clock)
    except ValueError:
        return _library_page(request, who, context, form=form, status_code=400,
                             problems=(f"drill_date: {drill_date[:40]!r} is not a date (YYYY-MM-DD)",))
    read = read_participants(participants, day)
    if read.problems:
        return _library_page(request, who, context, form=form, problems=tuple(read.problems), status_code=400)
    try:
        session = views.create(context, scenario, day, read.participants, library_folder(request))
    except ApiError as exc:
        return _library_page(request, who, context, form=form, problems=(exc.detail,), status_code=400)
    return RedirectResponse(f"/drills/sessions/{session.id}?notice=created", status_code=303)


def _not_found(request: Request, who: Principal, message: str = "No drill session with this id.") -> Response:
    return render(request, "error.html", who, status_code=404, title="Not found", message=message)


def _console(request: Request, who: Principal, context: ServiceContext, session_id: str, *,
             problem: str | None = None, problem_form: str | None = None, status_code: int = 200) -> Response:
    try:
        state = views.current(context, session_id)
    except ApiError as exc:
        if exc.status == 404:
            return _not_found(request, who)
        raise
    view: SessionView = views.session_view(state, context.clock.now())
    actions: list[CorrectiveAction] = context.backend.drills.actions(session_id=session_id)
    notice = request.query_params.get("notice")
    return render(request, "drill_console.html", who, status_code=status_code, v=view, actions=actions,
                  roles={r.id: r.title for r in view.roles}, problem=problem, problem_form=problem_form,
                  notice=say(request, NOTICES[notice]) if notice in NOTICES else None,
                  live=view.status in (SessionStatus.RUNNING, SessionStatus.PAUSED),
                  next_inject=next((i for i in view.upcoming if i.due is not None), None), **_texts(request))


@router.get("/drills/sessions/{session_id}")
def console(request: Request, session_id: str) -> Response:
    """The facilitator's console: the clock and its controls, injects, decisions, expectations, notes, the end
    and, once ended, the score, the phases, the corrective actions and the after-action report."""
    who, context = acting(request, Permission.READ)
    return _console(request, who, context, session_id)


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
    return "; ".join(parts).replace("Value error, ", "")


@router.post("/drills/sessions/{session_id}/command")
def command(request: Request, session_id: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
            command: Annotated[str, Form(max_length=16)] = "", to: Annotated[str, Form(max_length=32)] = "",
            by: Annotated[str, Form(max_length=32)] = "", next: Annotated[str, Form(max_length=8)] = "",
            inject: Annotated[str, Form(max_length=64)] = "", decision: Annotated[str, Form(max_length=64)] = "",
            option: Annotated[str, Form(max_length=64)] = "", expectation: Annotated[str, Form(max_length=64)] = "",
            role: Annotated[str, Form(max_length=64)] = "", participant: Annotated[str, Form(max_length=200)] = "",
            quality: Annotated[str, Form(max_length=16)] = "", note: Annotated[str, Form(max_length=4000)] = "",
            text: Annotated[str, Form(max_length=4000)] = "", at: Annotated[str, Form(max_length=32)] = "",
            confirm: Annotated[str, Form(max_length=8)] = "") -> Response:
    """One command from the console's forms (the same commands as POST /api/v1/drills/sessions/{id}/commands)."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.DRILLS)
    given: dict[str, Any] = {name: value.strip() for name, value in (
        ("to", to), ("by", by), ("inject", inject), ("decision", decision), ("option", option),
        ("expectation", expectation), ("role", role), ("participant", participant), ("quality", quality),
        ("text", text), ("at", at)) if value.strip()}
    if note.strip():
        given["note"] = note
    if next:
        given["next"] = True
    form = ANCHORS.get(command, "clock")
    if command == "end" and not confirm:
        return _console(request, who, context, session_id, status_code=400, problem_form=form,
                        problem=say(request, N_("Tick the box to confirm that the exercise ends now.")))
    try:
        body = DrillCommand.model_validate({"command": command, **given})
        views.run(context, session_id, body)
    except ValidationError as exc:
        return _console(request, who, context, session_id, problem=_validation_text(exc), problem_form=form,
                        status_code=400)
    except ApiError as exc:
        if exc.status == 404:
            return _not_found(request, who)
        return _console(request, who, context, session_id, problem=exc.detail, problem_form=form,
                        status_code=exc.status)
    return RedirectResponse(f"/drills/sessions/{session_id}?notice={command}#{form}", status_code=303)


@router.get("/drills/sessions/{session_id}/participant")
def participant_screen(request: Request, session_id: str) -> Response:
    """The screen the team looks at: the clock and the released injects (read-aloud text, artefacts, questions),
    the open decisions; it follows the session by itself (static/drill-screen.js)."""
    who, context = acting(request, Permission.READ)
    try:
        state = views.current(context, session_id)
    except ApiError as exc:
        if exc.status == 404:
            return _not_found(request, who)
        raise
    screen = views.screen_view(state, context.clock.now())
    roles = {r.id: r.title for r in views.session_view(state, context.clock.now()).roles}
    return render(request, "drill_screen.html", who, s=screen, roles=roles, **_texts(request))


@router.post("/drills/actions/{action_id}/done")
def action_done(request: Request, action_id: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
                note: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """The owner says a corrective action is done; back to its session's console."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.DRILLS)
    action = context.backend.drills.action(action_id) if len(action_id) <= 64 else None
    if action is None:
        return _not_found(request, who, "No corrective action with this id.")
    try:
        service.mark_done(context, action_id, note.strip() or None)
    except ServiceError as exc:
        return _console(request, who, context, action.session_id, problem=str(exc), problem_form="result",
                        status_code=409)
    return RedirectResponse(f"/drills/sessions/{action.session_id}?notice=done#result", status_code=303)
