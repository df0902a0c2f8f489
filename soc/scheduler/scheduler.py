"""`SocScheduler`: the scheduled jobs of `soc serve` / `soc worker`, in a background thread.

APScheduler 3 (BackgroundScheduler) keeps what is due next in its job store, a table of our own
database, so a restart keeps the jobs; we keep the history (`soc.services.jobs`). Jobs are coalesced,
one instance at a time, and a slot the scheduler could not start within the misfire grace is left to
the health check (`soc.services.ops`) to report. APScheduler runs on real time; our records use the
injected clock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from soc.core.clock import LOCAL_ZONE, SYSTEM_CLOCK, Clock
from soc.core.models import JobOutcome, JobRun, RunOwner
from soc.core.process import current_process, is_running
from soc.core.settings import Settings
from soc.scheduler.runtime import FIRE, SlotExecutor
from soc.schemas.jobs import JobInfo
from soc.services.context import ServiceContext, ServiceError, open_context
from soc.services.jobs import JOBS, begin, cron_of, default_triggers, execute, record_skipped, run_job, running_run
from soc.services.schedule import record_schedule, schedule_key

LEASE, LEASE_STORE = "scheduler", "lease"
LEASE_RENEW = timedelta(seconds=30)
LEASE_STALE = timedelta(minutes=2)
"""A scheduler silent this long (or whose process is gone) has died: another may take its place."""
ACTOR = "scheduler"
"""Who the scheduled runs act as (a run-now acts as the user who asked)."""
log = logging.getLogger("soc.scheduler")


class SocScheduler:
    """The jobs of `soc.services.jobs.JOBS` on their schedules, plus 'run now'.

    `triggers` replaces some jobs' cron expressions with APScheduler triggers (tests use a few seconds);
    `on_run` hears of every finished run (the worker prints a line). On start, an immediate health check
    (trigger 'startup') reports slots missed while the service was down.
    """

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK, *, triggers: Mapping[str, Any] | None = None,
                 on_run: Callable[[JobRun], None] | None = None, startup_check: bool = True) -> None:
        unknown = set(triggers or {}) - set(JOBS)
        if unknown:
            raise ValueError(f"triggers for unknown jobs: {', '.join(sorted(unknown))} (jobs: {', '.join(JOBS)})")
        self.settings = settings
        self.clock = clock
        self.triggers: dict[str, Any] = {**default_triggers(settings), **(triggers or {})}
        self._schedules = {name: str(triggers[name]) if triggers and name in triggers else cron_of(settings, name)
                           for name in JOBS}
        self._on_run = on_run
        self._startup_check = startup_check
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._scheduler: Any = None
        self._context: ServiceContext | None = None
        self._manual: ThreadPoolExecutor | None = None

    # --- life ------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """The scheduler thread runs and takes jobs."""
        from apscheduler.schedulers.base import STATE_RUNNING

        return self._scheduler is not None and self._scheduler.state == STATE_RUNNING

    def start(self) -> None:
        """Open the store, bring the job store's jobs in line with the schedules (a job whose trigger is
        unchanged keeps its next slot, so one missed while down is still run within the grace), run the
        start-up health check, then take jobs. StoreError when the store cannot be used."""
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES
        from apscheduler.executors.pool import ThreadPoolExecutor as PlainExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        if self._scheduler is not None:
            raise ServiceError("the scheduler is already running")
        context = open_context(self.settings, self.clock, actor=ACTOR)
        try:
            self._take_lease(context)
        except BaseException:
            context.close()
            raise
        grace = self.settings.schedule.misfire_grace_minutes * 60
        scheduler = BackgroundScheduler(
            timezone=LOCAL_ZONE, jobstores={"default": context.backend.job_store()},
            executors={"default": SlotExecutor(self._fire, max_workers=len(JOBS))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace})
        scheduler.add_jobstore("memory", alias=LEASE_STORE)
        scheduler.add_executor(PlainExecutor(max_workers=1), alias=LEASE_STORE)
        scheduler.add_listener(self._max_instances, EVENT_JOB_MAX_INSTANCES)
        try:
            scheduler.start(paused=True)
            self._reconcile(scheduler, context, grace)
            scheduler.add_job(self._renew_lease, "interval", seconds=LEASE_RENEW.total_seconds(), id="lease",
                              jobstore=LEASE_STORE, executor=LEASE_STORE, coalesce=True, max_instances=1)
        except BaseException:
            with contextlib.suppress(Exception):
                scheduler.shutdown(wait=False)
            context.backend.jobs.release_lease(LEASE, current_process())
            context.close()
            raise
        self._scheduler, self._context = scheduler, context
        self._manual = ThreadPoolExecutor(max_workers=len(JOBS), thread_name_prefix="soc-run-now")
        if self._startup_check:  # before any slot kept from before the restart runs: what was missed is seen
            self._run("freshness", self.clock.now(), "startup")
        scheduler.resume()
        log.info("scheduler started: %s", ", ".join(f"{name} {text}" for name, text in self._schedules.items()))

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking jobs; with `wait`, let the runs going now finish first. The job store keeps the jobs."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.shutdown(wait=wait)
        if self._manual is not None:
            self._manual.shutdown(wait=wait, cancel_futures=True)
        if self._context is not None:
            with contextlib.suppress(Exception):  # a store gone bad must not keep the process from ending
                self._context.backend.jobs.release_lease(LEASE, current_process())
            self._context.close()
            self._context = None

    def _take_lease(self, context: ServiceContext) -> None:
        """One scheduler per store: two would run every job twice (APScheduler 3 cannot share a job store)."""
        def dead(holder: RunOwner, beat: datetime) -> bool:
            return is_running(holder) is False or beat < context.clock.now() - LEASE_STALE

        held = context.backend.jobs.acquire_lease(LEASE, current_process(), context.clock.now(), dead)
        if held is not None:
            holder, beat = held
            raise ServiceError(f"the scheduler of {context.backend.location} already runs in process {holder.pid} on "
                               f"{holder.host} (last heartbeat {beat.astimezone(LOCAL_ZONE):%d/%m/%Y %H:%M:%S}): "
                               "stop it, or start this one without the scheduler (`soc serve --no-scheduler`)")

    def _renew_lease(self) -> None:
        context = self._context
        if context is not None and not context.backend.jobs.renew_lease(LEASE, current_process(), self.clock.now()):
            log.error("the scheduler lease of %s was taken by another process: this scheduler stops",
                      context.backend.location)
            threading.Thread(target=self.shutdown, kwargs={"wait": False}, daemon=True).start()

    def _reconcile(self, scheduler: Any, context: ServiceContext, grace: int) -> None:
        stored = {job.id: job for job in scheduler.get_jobs()}
        for name, trigger in self.triggers.items():
            record_schedule(context, name, trigger, self._schedules[name])
            old = stored.get(name)
            if (old is not None and schedule_key(old.trigger) == schedule_key(trigger) and old.func_ref == FIRE
                    and tuple(old.args) == (name,)):
                if (old.misfire_grace_time, old.coalesce, old.max_instances) != (grace, True, 1):
                    scheduler.modify_job(name, misfire_grace_time=grace, coalesce=True, max_instances=1)
                continue
            scheduler.add_job(FIRE, trigger=trigger, args=(name,), id=name, name=name, replace_existing=True)
        for stale in stored.keys() - self.triggers.keys():
            scheduler.remove_job(stale)

    # --- runs ------------------------------------------------------------------------------------------

    def run_now(self, name: str, actor: str = ACTOR) -> JobRun:
        """Start job `name` now in the background, acting as `actor`; return its started run.

        ServiceError: unknown job, the scheduler is not running, or a run of the job is still going.
        """
        if name not in JOBS:
            raise ServiceError(f"job {name!r}: unknown (jobs: {', '.join(JOBS)})")
        context, pool = self._context, self._manual
        if context is None or pool is None or not self.running:
            raise ServiceError("the scheduler is not running")
        if not self._claim(name):
            raise ServiceError(f"job {name}: a run is already going in this process")
        try:
            acting = ServiceContext(self.settings, context.backend, self.clock, actor)
            other = running_run(acting, name)
            me = current_process()
            if other is not None and (other.host, other.pid) != (me.host, me.pid):  # ours would be busy
                raise ServiceError(f"job {name}: run #{other.id} (pid {other.pid} on {other.host}) is still going")
            started = begin(acting, name, self.clock.now(), "manual")
            pool.submit(self._run, name, started.slot, "manual", actor, started, True)
        except BaseException:
            self._release(name)
            raise
        return started

    def _fire(self, name: str, slot: datetime) -> None:
        """A slot of job `name` is due (called by `SlotExecutor` in one of APScheduler's threads)."""
        self._run(name, slot, "schedule")

    def _run(self, name: str, slot: datetime, trigger: str, actor: str = ACTOR, started: JobRun | None = None,
             claimed: bool = False) -> JobRun | None:
        """Run a job in its own context (never raising for a failure; a store that cannot be opened is logged)."""
        if not claimed and not self._claim(name):
            self._skip(name, slot, trigger, "a run of this job is still going (started by hand)")
            return None
        run = None
        try:
            with open_context(self.settings, self.clock, actor=actor) as context:
                run = (execute(context, started, schedules=self.triggers) if started is not None
                       else run_job(context, name, slot, trigger, schedules=self.triggers))
        except Exception:
            log.exception("job %s (slot %s) could not be run", name, slot.isoformat())
        finally:
            self._release(name)
        if run is not None and self._on_run is not None:
            try:
                self._on_run(run)
            except Exception:
                log.exception("on_run failed for job run %s", run.id)
        return run

    def _skip(self, name: str, slot: datetime, trigger: str, reason: str) -> None:
        try:
            with self._records() as context:
                run = record_skipped(context, name, slot, trigger, reason)
        except Exception:
            log.exception("job %s: the skipped slot %s could not be recorded", name, slot.isoformat())
            return
        if self._on_run is not None:
            with contextlib.suppress(Exception):
                self._on_run(run)

    def _max_instances(self, event: Any) -> None:
        """APScheduler skipped a slot because the job's previous run is still going: say so in the history."""
        if event.job_id in JOBS and event.scheduled_run_times:
            self._skip(event.job_id, event.scheduled_run_times[-1], "schedule",
                       "the previous run was still going (one run at a time)")

    def _claim(self, name: str) -> bool:
        with self._lock:
            if name in self._busy:
                return False
            self._busy.add(name)
            return True

    def _release(self, name: str) -> None:
        with self._lock:
            self._busy.discard(name)

    @contextlib.contextmanager
    def _records(self) -> Iterator[ServiceContext]:
        """The scheduler's own context while it runs, else one opened for the moment."""
        if self._context is not None:
            yield self._context
            return
        with open_context(self.settings, self.clock, actor=ACTOR) as context:
            yield context

    # --- what the API shows ----------------------------------------------------------------------------

    def job_infos(self) -> list[JobInfo]:
        """Every job with its schedule, next slot, whether it runs now, its latest run and last success."""
        scheduler = self._scheduler
        with self._lock:
            busy = set(self._busy)
        infos = []
        with self._records() as context:
            for name, spec in JOBS.items():
                job = scheduler.get_job(name) if scheduler is not None else None
                last = context.backend.jobs.runs(job=name, limit=1)
                success = context.backend.jobs.runs(job=name, outcome=JobOutcome.SUCCESS, limit=1)
                infos.append(JobInfo(
                    name=name, description=spec.description.vi, description_en=spec.description.en,
                    schedule=self._schedules[name], next_run=job.next_run_time if job is not None else None,
                    running=name in busy or bool(last and last[0].outcome is JobOutcome.RUNNING),
                    last_run=last[0] if last else None,
                    last_success=(success[0].finished_at or success[0].started_at) if success else None))
        return infos
