"""The FastAPI application: `/api/v1` (OpenAPI at /openapi.json, docs at /docs) and `/healthz`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.sessions import SessionMiddleware

from soc.api import problems
from soc.api.auth import LoginLimiter, api_state, reject_unknown_query
from soc.api.routes import admin, drills, exports, findings, jobs, portals, register, reports, runs, session
from soc.api.state import ApiState
from soc.core.clock import Clock
from soc.core.settings import Settings
from soc.schemas.api import Health, Problem
from soc.services.users import session_key
from soc.store import Backend, StoreError

API_PREFIX = "/api/v1"
SESSION_COOKIE = "soc_session"
ERRORS = {code: {"model": Problem, "description": problems.TITLES[code]} for code in (400, 401, 403, 404, 422)}


def create_app(settings: Settings, backend: Backend, clock: Clock, *, scheduler: object | None = None,
               secure_cookies: bool = False) -> FastAPI:
    """The app on one opened backend; `scheduler` is the one running beside it (None: see `soc worker`)."""
    app = FastAPI(
        title="SOC Đồng Nai API",
        version="1",
        description="Bộ công cụ SOC tỉnh Đồng Nai / Đồng Nai provincial SOC toolkit. Authenticate with "
                    "`Authorization: Bearer <token>` (`soc tokens create --user NAME`).",
        responses=ERRORS,  # type: ignore[arg-type]
    )
    state = ApiState(settings=settings, backend=backend, clock=clock, scheduler=scheduler)  # type: ignore[arg-type]
    app.state.soc = state
    app.state.login_limiter = LoginLimiter(settings.auth.login_rate_per_minute)
    secure = settings.auth.secure_cookies if settings.auth.secure_cookies is not None else secure_cookies
    app.add_middleware(SessionMiddleware, secret_key=session_key(state.context("api")), session_cookie=SESSION_COOKIE,
                       max_age=int(timedelta(hours=settings.auth.session_hours).total_seconds()), same_site="lax",
                       https_only=secure)
    problems.install(app)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(reject_unknown_query)])
    for module in (findings, portals, runs, register, jobs, exports, session, admin, drills, reports):
        api.include_router(module.router)
    app.include_router(api)
    _document_problems(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Health, tags=["health"],
                      responses={503: {"model": Health}}, summary="Sức khỏe / Health")
    return app


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what errors really are: `application/problem+json` bodies of the
    Problem schema (FastAPI documents them as application/json, and its own 422 body, which we replace)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        problem_body = {problems.MEDIA_TYPE.split(";")[0]: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for url, path in document.get("paths", {}).items():
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    if code.isdigit() and int(code) >= 400 and url != "/healthz":
                        response["content"] = dict(problem_body)
        document.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
        document.get("components", {}).get("schemas", {}).pop("ValidationError", None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def healthz(request: Request) -> JSONResponse:
    """200 when the store answers and the scheduler runs (with the last success of each job), else 503."""
    state = api_state(request)
    store: dict[str, object] = {"location": state.backend.location, "read_only": state.backend.read_only}
    try:
        state.backend.findings.list_runs(1)
        store["up"] = True
    except StoreError as exc:
        store |= {"up": False, "error": str(exc)}
    scheduler: dict[str, object] = {"running": False}
    if state.scheduler is not None:
        try:
            jobs = state.scheduler.job_infos()
            scheduler = {"running": state.scheduler.running,
                         "jobs": {job.name: {"last_success": job.last_success.isoformat() if job.last_success
                                             else None,
                                             "next_run": job.next_run.isoformat() if job.next_run else None}
                                  for job in jobs}}
        except Exception as exc:  # the health answer must come even when the scheduler is broken
            scheduler = {"running": False, "error": f"{type(exc).__name__}: {exc}"}
    healthy = bool(store.get("up")) and bool(scheduler.get("running"))
    body = Health(status="ok" if healthy else "degraded", store=store, scheduler=scheduler)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)
