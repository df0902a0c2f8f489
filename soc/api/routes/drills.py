"""`/api/v1/drills`: the scenario library, sessions and their commands, the participants' screen, scorecards,
after-action reports and corrective actions. Reading needs `read`, every change `drills` (incident, admin).

A refused command is a 409 problem with the engine's reason (Vietnamese / English); an unknown session a 404.
Reading a running session lets its clock release what has fallen due first (see `soc.api.drill_views`).
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from drills.scoring import Scorecard
from soc.api import drill_views as views
from soc.api.auth import Reader, needs
from soc.api.problems import ApiError, Conflict, NotFound
from soc.core.drill_records import ActionStatus, CorrectiveAction, SessionStatus
from soc.schemas.drills import (
    ActionDone,
    ActionList,
    DrillCommand,
    ParticipantScreen,
    ScenarioList,
    SessionCreate,
    SessionList,
    SessionView,
)
from soc.services import drills as service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission

router = APIRouter(prefix="/drills", tags=["drills"])
Drills = Annotated[ServiceContext, Depends(needs(Permission.DRILLS))]
SessionId = Annotated[str, Path(description="A session's id (as POST /drills/sessions gave it).", min_length=1,
                                max_length=64)]
ActionId = Annotated[str, Path(description="A corrective action's id.", min_length=1, max_length=64)]
REFUSED: dict[int | str, dict[str, Any]] = {409: {"description": "The session's state refuses it (the detail says "
                                                                  "why)."}}
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")
"""The after-action report is a standalone document (its own inline styles, never a script)."""


def library_folder(request: Request) -> FilePath | None:
    """The scenario library the app serves: `app.state.drill_library` when set, else the toolkit's playbooks/."""
    folder = getattr(request.app.state, "drill_library", None)
    return folder if isinstance(folder, FilePath) else None


@router.get("/scenarios", response_model=ScenarioList, summary="Thư viện kịch bản / Scenario library")
def list_scenarios(request: Request, context: Reader) -> ScenarioList:
    """Every scenario file of the library: valid ones with their title, kind and target; bad ones with every
    problem (`FILE:LINE: path: message`); a bad one cannot be used for a session."""
    return ScenarioList(items=[entry.item for entry in views.library(library_folder(request))])


@router.post("/sessions", response_model=SessionView, status_code=status.HTTP_201_CREATED,
             summary="Tạo phiên diễn tập / Create a session")
def create_session(request: Request, response: Response, body: SessionCreate, context: Drills) -> SessionView:
    """A planned session from a scenario of the library, on `drill_date` (default today), with its participants
    (each in one of the scenario's roles); 422 for an unknown or bad scenario. Audited."""
    session = views.create(context, body.scenario, body.drill_date, body.participants, library_folder(request))
    response.headers["Location"] = str(request.app.url_path_for("get_session", session_id=session.id))
    return views.session_view(views.current(context, session.id), context.clock.now())


@router.get("/sessions", response_model=SessionList, summary="Các phiên diễn tập / Sessions")
def list_sessions(context: Reader, session_status: Annotated[SessionStatus | None, Query(alias="status")] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> SessionList:
    """Sessions, newest drill date first (optionally of one status), with the score of those ended."""
    found = context.backend.drills.sessions(status=session_status, limit=limit)
    return SessionList(items=[views.session_item(session) for session in found])


@router.get("/sessions/{session_id}", response_model=SessionView, summary="Một phiên / One session")
def get_session(session_id: SessionId, context: Reader) -> SessionView:
    """The facilitator's view: status, the exercise clock now, released injects with their content, upcoming
    ones, open decisions, expectations with deadlines and whether done, notes, and the score once ended."""
    return views.session_view(views.current(context, session_id), context.clock.now())


@router.get("/sessions/{session_id}/participant", response_model=ParticipantScreen,
            summary="Màn hình người tham gia / Participants' screen")
def participant_screen(session_id: SessionId, context: Reader) -> ParticipantScreen:
    """What the team's screen shows: the clock and the released injects (read-aloud text, artefacts,
    questions), the open decisions; never the upcoming injects, the hints or the expectations."""
    return views.screen_view(views.current(context, session_id), context.clock.now())


@router.post("/sessions/{session_id}/commands", response_model=SessionView, responses=REFUSED,
             summary="Điều khiển phiên / Command a session")
def command(session_id: SessionId, body: DrillCommand, context: Drills) -> SessionView:
    """start, pause, resume, advance (`to`, `by` or `next`), release (`inject`), decide (`decision`, `option`),
    act (`expectation`, `role`, `participant`, `quality`, `note`), note (`text`), end (`at`). Ending scores the
    session. The new state; 409 with the engine's reason when the state refuses it. Audited."""
    state = views.run(context, session_id, body)
    return views.session_view(state, context.clock.now())


def _ended(context: ServiceContext, session_id: str) -> Scorecard:
    session = context.backend.drills.session(session_id)
    if session is None:
        raise NotFound(f"no drill session {session_id!r}")
    if session.status is not SessionStatus.ENDED or session.scorecard is None:
        raise Conflict(f"Phiên chưa kết thúc / drill session {session_id} has not ended ({session.status.value})")
    return Scorecard.model_validate(session.scorecard)


@router.get("/sessions/{session_id}/scorecard", response_model=Scorecard, responses=REFUSED,
            summary="Bảng điểm / Scorecard")
def scorecard(session_id: SessionId, context: Reader) -> Scorecard:
    """The scoring of an ended session: each expectation's verdict, scores by phase, objective and role,
    response times, the corrective actions called for; 409 while it has not ended."""
    return _ended(context, session_id)


REPORT_TYPES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The after-action report.", "content": {"text/html": {}, "application/pdf": {}}},
    **REFUSED, 503: {"description": "The report module is not available."}}


@router.get("/sessions/{session_id}/report", response_class=Response, responses=REPORT_TYPES,
            summary="Báo cáo sau diễn tập / After-action report")
def report(session_id: SessionId, context: Reader, format: Literal["html", "pdf"] = "html",
           lang: Literal["vi", "en"] = "vi") -> Response:
    """The after-action report of an ended session, as HTML (to read) or PDF (to file), in Vietnamese or
    English; 409 while it has not ended."""
    _ended(context, session_id)
    try:
        from soc.services import drill_reports  # written beside the drills service; imported when asked for
    except ImportError as exc:
        raise ApiError(f"the after-action report is not available here ({exc})", 503) from None
    try:
        if format == "pdf":
            document = drill_reports.report_pdf(context, session_id, lang)
            return Response(document, media_type="application/pdf", headers={
                "Content-Disposition": f'attachment; filename="drill-{session_id}-{lang}.pdf"'})
        page = drill_reports.report_html(context, session_id, lang)
    except ServiceError as exc:
        raise Conflict(str(exc)) from None
    return Response(page, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/actions", response_model=ActionList, summary="Hành động khắc phục / Corrective actions")
def list_actions(context: Reader, action_status: Annotated[ActionStatus | None, Query(alias="status")] = None,
                 session: Annotated[str | None, Query(max_length=64)] = None) -> ActionList:
    """Corrective actions from drills by due date (optionally of one status or one session)."""
    return ActionList(items=context.backend.drills.actions(session_id=session, status=action_status))


@router.post("/actions/{action_id}/done", response_model=CorrectiveAction, responses=REFUSED,
             summary="Đã khắc phục / Mark done")
def action_done(action_id: ActionId, body: ActionDone, context: Drills) -> CorrectiveAction:
    """The owner says a corrective action is done (a later drill or a fixed finding confirms it); 409 when it
    is not open. Audited."""
    if context.backend.drills.action(action_id) is None:
        raise NotFound(f"no corrective action {action_id!r}")
    try:
        return service.mark_done(context, action_id, body.note)
    except ServiceError as exc:
        raise Conflict(str(exc)) from None
