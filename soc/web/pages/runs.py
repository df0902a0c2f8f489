"""Runs and jobs: the scan runs (and what changed between two), the scheduled jobs with their history, and
"run now" for those who may scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from soc.api.auth import api_state
from soc.api.routes.jobs import _from_history as jobs_from_history
from soc.api.routes.portals import portal_id
from soc.core.models import JobOutcome, JobRun, PortalScan, ScanRun
from soc.schemas.findings import DiffOutput
from soc.schemas.jobs import JobInfo
from soc.services import runs as service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission, Principal
from soc.web.auth import acting, check_form
from soc.web.i18n import when
from soc.web.pages.say import say
from soc.web.templating import render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
LIMITS = (20, 50, 100, 200)
"""How many runs the list may show."""
HISTORY = 20
"""Runs of each job shown in its history."""
SHOWN = 300
"""Findings shown per list of a diff (the counts are always whole)."""
CANDIDATES = 50
"""Runs offered to compare with (a fifth newer than the run, the rest older)."""
LOOKBACK = 5000
"""Runs read to find those around a run (the store lists runs newest first only)."""
KINDS = {"ops": N_("health check"), "compliance": N_("compliance evaluation"),
         "drills": N_("drill corrective actions")}
"""Run kinds by their `inventory` name; every other run is a portal scan of that inventory."""
TRIGGERS = (N_("schedule"), N_("manual"), N_("startup"))
"""How a job run was started (shown translated; anything else as it is)."""


@dataclass(frozen=True)
class JobView:
    """One job as the page shows it: what the scheduler (or the history) says, and its recent runs."""

    info: JobInfo
    history: list[JobRun]


def _limit(value: str | None) -> int:
    """The list length asked for, one of LIMITS (anything else: the first)."""
    return int(value) if value is not None and value.isdigit() and int(value) in LIMITS else LIMITS[0]


def _jobs(request: Request, context: ServiceContext) -> tuple[list[JobView], bool]:
    """Every job with its history, and whether a scheduler runs in this process (else: from the history)."""
    scheduler = api_state(request).scheduler
    infos = jobs_from_history(context) if scheduler is None else scheduler.job_infos()
    views = [JobView(info, context.backend.jobs.runs(job=info.name, limit=HISTORY)) for info in infos]
    return views, scheduler is not None and scheduler.running


def _runs_page(request: Request, who: Principal, context: ServiceContext, *, health: bool = False,
               limit: int = LIMITS[0], notice: str | None = None, problem: str | None = None,
               status_code: int = 200) -> Response:
    jobs, scheduler_running = _jobs(request, context)
    return render(request, "runs.html", who, status_code=status_code,
                  runs=service.list_runs(context, limit, health_checks=health), health=health, limit=limit,
                  limits=LIMITS, kinds=KINDS, triggers=TRIGGERS, jobs=jobs, scheduler_running=scheduler_running,
                  notice=notice, problem=problem)


@router.get("/runs")
def runs_page(request: Request, health: str | None = None, limit: str | None = None, started: str | None = None,
              run: str | None = None) -> Response:
    """The scan runs, newest first (the health checks too when asked), and the scheduled jobs."""
    who, context = acting(request, Permission.READ)
    notice = None
    if started is not None:
        names = {view.info.name for view in _jobs(request, context)[0]}
        if started in names:  # a link cannot make the page say anything else
            notice = say(request, N_("Job %(job)s started (run #%(run)s): its outcome appears in its history "
                                     "when it ends."), job=started, run=run if run and run.isdigit() else "?")
    return _runs_page(request, who, context, health=bool(health), limit=_limit(limit), notice=notice)


@router.post("/jobs/{name}/run")
def run_now(request: Request, name: Annotated[str, Path(min_length=1, max_length=64)],
            csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Start a job now (its run is recorded by the scheduler); refused on the page when it is already running
    or when no scheduler runs in this process."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.SCAN)
    scheduler = api_state(request).scheduler

    def refused(status_code: int, message: str) -> Response:
        return _runs_page(request, who, context, problem=message, status_code=status_code)

    if scheduler is None or not scheduler.running:
        return refused(503, say(request, N_("No scheduler runs in this process (the jobs run in `soc worker`): "
                                            "start the job there, or serve with the scheduler.")))
    info = next((job for job in scheduler.job_infos() if job.name == name), None)
    if info is None:
        return refused(404, say(request, N_("There is no job %(job)s."), job=repr(name)))
    last = info.last_run
    if last is not None and last.outcome is JobOutcome.RUNNING:
        return refused(409, say(request, N_("Job %(job)s is already running (run #%(run)s, started %(at)s): "
                                            "wait for it to end."), job=name, run=last.id, at=when(last.started_at)))
    try:
        started = scheduler.run_now(name, who.name)
    except ServiceError as exc:  # it started in between, or the scheduler refuses it now
        return refused(409, say(request, N_("The scheduler did not start the job: %(reason)s"), reason=str(exc)))
    return RedirectResponse(f"/runs?started={quote(name, safe='')}&run={started.id}#jobs", status_code=303)


def _candidates(context: ServiceContext, run: ScanRun) -> list[ScanRun]:
    """Runs of the same inventory (or kind) as `run` to compare it with, newest first: the few just after it
    and those just before it."""
    exclude = [kind for kind in KINDS if kind != run.inventory]
    if run.inventory not in KINDS:
        exclude = list(KINDS)
    same = [other for other in context.backend.findings.list_runs(LOOKBACK, exclude=exclude)
            if other.inventory == run.inventory and other.id != run.id]
    newer = [other for other in same if (other.started_at, other.id) > (run.started_at, run.id)]
    older = [other for other in same if (other.started_at, other.id) < (run.started_at, run.id)]
    return newer[-CANDIDATES // 5:] + older[:CANDIDATES - CANDIDATES // 5]


def _diff(context: ServiceContext, run: ScanRun, against: str | None,
          candidates: list[ScanRun]) -> tuple[ScanRun | None, DiffOutput | None]:
    """The run compared with (the one asked for, else the previous one) and the diff, older → newer."""
    other: ScanRun | None
    if against:
        other = service.find_run(context, against)
    else:
        other = next((candidate for candidate in candidates
                      if (candidate.started_at, candidate.id) < (run.started_at, run.id)), None)
    if other is None or other.id == run.id:
        return other, None
    older, newer = sorted((other, run), key=lambda item: (item.started_at, item.id))
    return other, service.diff_runs(context, older.id, newer.id)


@router.get("/runs/{prefix}")
def run_page(request: Request, prefix: Annotated[str, Path(min_length=1, max_length=64)],
             against: str | None = None) -> Response:
    """One run: its state, its portals' grades, and what changed against the previous run of the same inventory
    (or the run chosen)."""
    who, context = acting(request, Permission.READ)
    try:
        run = service.find_run(context, prefix)
    except ServiceError:
        return render(request, "error.html", who, status_code=404, title="Not found",
                      message=N_("No run has this id (or several runs start with it)."))
    candidates = _candidates(context, run)
    problem, other, diff = None, None, None
    try:
        other, diff = _diff(context, run, (against or "").strip()[:64] or None, candidates)
    except ServiceError as exc:
        problem = say(request, N_("Compare with: %(reason)s"), reason=str(exc))
    scans: list[PortalScan] = context.backend.findings.portal_scans(run.id)
    return render(request, "run.html", who, status_code=400 if problem else 200, run=run, kinds=KINDS,
                  scans=scans, portal_id=portal_id, candidates=candidates, other=other, diff=diff,
                  against=against or "", problem=problem, shown=SHOWN)
