"""`/api/v1/jobs`: the scheduled jobs with their next slot and latest runs, their run history, and "run now"."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response, status

from soc.api.auth import Reader, Scanner, api_state
from soc.api.problems import ApiError, Conflict, NotFound
from soc.core.models import JobOutcome
from soc.schemas.api import JobList, JobRunList, JobStarted
from soc.schemas.jobs import JobInfo
from soc.services.context import ServiceContext, ServiceError
from soc.services.jobs import JOBS, cron_of

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobName = Annotated[str, Path(description="A job's name (as listed by GET /jobs).", min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many runs, newest first.")]


def _from_history(context: ServiceContext) -> list[JobInfo]:
    """The jobs of `soc.services.jobs.JOBS` with their latest runs from our history (no scheduler runs here:
    no next slot)."""
    history = context.backend.jobs
    infos = []
    for name, spec in JOBS.items():
        last = next(iter(history.runs(job=name, limit=1)), None)
        success = next(iter(history.runs(job=name, outcome=JobOutcome.SUCCESS, limit=1)), None)
        infos.append(JobInfo(name=name, description=spec.description.vi, description_en=spec.description.en,
                             schedule=cron_of(context.settings, name), running=last is not None
                             and last.outcome is JobOutcome.RUNNING,
                             last_run=last,
                             last_success=None if success is None else success.finished_at or success.started_at))
    return infos


@router.get("", response_model=JobList, summary="Tác vụ định kỳ / Scheduled jobs")
def list_jobs(request: Request, context: Reader) -> JobList:
    """Every scheduled job with its schedule, next slot and latest run. When no scheduler is beside this API
    (`soc worker` runs it apart), the same jobs with their latest runs from the history, without next slots."""
    scheduler = api_state(request).scheduler
    if scheduler is None:
        return JobList(items=_from_history(context), scheduler_running=False)
    return JobList(items=scheduler.job_infos(), scheduler_running=scheduler.running)


@router.get("/runs", response_model=JobRunList, summary="Lịch sử chạy tác vụ / Job runs")
def all_job_runs(context: Reader, limit: Limit = 100) -> JobRunList:
    """The runs of every job, newest first (by slot)."""
    return JobRunList(items=context.backend.jobs.runs(limit=limit))


@router.get("/{name}/runs", response_model=JobRunList, summary="Lịch sử một tác vụ / One job's runs")
def job_runs(name: JobName, context: Reader, limit: Limit = 100) -> JobRunList:
    """The runs of one job, newest first (by slot); empty for a job that never ran."""
    return JobRunList(items=context.backend.jobs.runs(job=name, limit=limit))


@router.post("/{name}/run", response_model=JobStarted, status_code=status.HTTP_202_ACCEPTED,
             summary="Chạy ngay / Run now",
             responses={409: {"description": "The job is already running."},
                        503: {"description": "No scheduler runs in this process."}})
def run_job(request: Request, response: Response, name: JobName, context: Scanner) -> JobStarted:
    """Start a job now, in the background: 202 with its job-run id, and the job's runs list in `Location`.
    409 when it is already running, 503 when no scheduler runs beside this API."""
    scheduler = api_state(request).scheduler
    if scheduler is None or not scheduler.running:
        raise ApiError("no scheduler runs in this process: start the API with its scheduler, or run the job from "
                       "the host (`soc worker`)", 503)
    info = next((job for job in scheduler.job_infos() if job.name == name), None)
    if info is None:
        raise NotFound(f"no job {name!r}")
    if info.last_run is not None and info.last_run.outcome is JobOutcome.RUNNING:
        raise Conflict(f"job {name!r} is already running (run {info.last_run.id}, started "
                       f"{info.last_run.started_at.isoformat(timespec='seconds')})")
    try:
        started = scheduler.run_now(name, context.actor)
    except ServiceError as exc:  # it started in between, or the scheduler refuses it now
        raise Conflict(str(exc)) from None
    runs = str(request.app.url_path_for("job_runs", name=quote(name, safe="")))
    response.headers["Location"] = runs
    assert started.id is not None
    return JobStarted(id=started.id, job=name, runs=runs, run=started)
