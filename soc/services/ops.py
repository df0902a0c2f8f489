"""The scheduler's health check: missed, failed and stuck jobs, portals whose scan data is stale.

One run of the same lifecycle as portal findings (collector `ops`, run inventory `ops`): every job is the
subject `job:<name>` and every portal of the inventory its URL, each with one complete observation, so
a finding no longer true is resolved and one true again reopened. Missed slots are found from the
schedules and our own job-run history, never from APScheduler's events (it reports no missed run inside
its grace period nor for coalesced runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from checks.catalogue import catalogue
from checks.ops import ABANDONED, evaluate_freshness, evaluate_job, job_subject
from soc.core.models import Finding, FindingStatus, JobOutcome, JobRun, Observation, RunOwner, ScanRun
from soc.core.observations import OpsObservation
from soc.core.process import current_process, is_running
from soc.inventory import Inventory
from soc.services.context import ServiceContext
from soc.services.schedule import fire_times, scheduled_since, window

OPS_RUN = "ops"
"""Name recorded as the 'inventory' of health-check runs."""
FRESHNESS_LOOKBACK = timedelta(days=90)
"""How far back a portal's latest complete scan is looked for (older: 'none in 90 days')."""
RUNS_PER_JOB = 20_000
"""Job runs read per job for one check at most (a run every minute for two weeks)."""
SCAN_JOB = "portal_scan"


class OpsReport(BaseModel):
    """What one health check found."""

    run: ScanRun
    subjects: int
    opened: int
    resolved: int
    abandoned: list[int]
    """Job runs marked failed because their process is gone."""


def stuck_limit(context: ServiceContext, name: str) -> timedelta:
    """How long a run of job `name` may run before it is stuck (`schedule.stuck_after_minutes`, else the
    scan window plus 3 hours for the portal scan and 1 hour for every other job)."""
    schedule = context.settings.schedule
    if schedule.stuck_after_minutes:
        return timedelta(minutes=schedule.stuck_after_minutes)
    if name == SCAN_JOB:
        return timedelta(minutes=schedule.scan_window_minutes, hours=3)
    return timedelta(hours=1)


def mark_dead_runs(context: ServiceContext) -> list[JobRun]:
    """Job runs left `running` by a process of this host that is gone died without an outcome: mark them
    failed with the reason (kept in their detail as `abandoned`), audited."""
    now, marked = context.clock.now(), []
    for run in context.backend.jobs.runs(outcome=JobOutcome.RUNNING, limit=1000):
        if run.id is None or run.host is None or run.pid is None:
            continue
        if is_running(RunOwner(host=run.host, pid=run.pid)) is not False:
            continue
        reason = f"its process is gone (pid {run.pid} on {run.host})"
        done = context.backend.jobs.finish(run.id, JobOutcome.FAILED, now, error=f"abandoned: {reason}",
                                           detail={**run.detail, ABANDONED: reason})
        context.audit("job.run.abandoned", job_subject(run.job), before={"run": run.id, "outcome": "running"},
                      after={"run": run.id, "outcome": done.outcome.value}, note=reason)
        marked.append(done)
    return marked


def job_runs(context: ServiceContext, name: str, since: datetime | None) -> list[JobRun]:
    """The runs of a job whose slot is in the window, and its latest runs (for its latest outcome)."""
    recent = context.backend.jobs.runs(job=name, limit=50)
    if since is None:
        return recent
    window_runs = context.backend.jobs.runs(job=name, since=since, limit=RUNS_PER_JOB)
    return list({run.id: run for run in [*window_runs, *recent]}.values())


Checked = tuple[list[Finding], dict[str, Any]]
"""A subject's findings and what its observation records."""


def job_findings(context: ServiceContext, name: str, trigger: Any | None) -> tuple[Checked, bool]:
    """One job's findings and evidence, and whether it has had a due slot (scheduled with `trigger`;
    None: a job that is not scheduled, only followed by others)."""
    schedule, now = context.settings.schedule, context.clock.now()
    since = None if trigger is None else scheduled_since(context, name, trigger)
    period = window(now, since, timedelta(days=schedule.lookback_days),
                    timedelta(minutes=schedule.misfire_grace_minutes))
    due: list[datetime] = []
    following = None
    if period is not None:
        due, following = fire_times(trigger, *period)
    runs = job_runs(context, name, period[0] if period else None)
    findings = evaluate_job(name, now, due, following, runs, stuck_limit(context, name))
    data = {"scheduled_since": since.isoformat() if since else None, "slots_due": len(due),
            "first_due": due[0].isoformat() if due else None, "last_due": due[-1].isoformat() if due else None,
            "runs_seen": len(runs), "checks": sorted({f.check_id for f in findings})}
    return (findings, data), bool(due)


def stale_portals(context: ServiceContext, inventory: Inventory) -> dict[str, Checked]:
    """Each inventory portal → its ops.data_stale finding (none while its latest complete scan is recent)."""
    now, days = context.clock.now(), context.settings.schedule.data_stale_days
    latest: dict[str, datetime] = {}
    for scan in context.backend.findings.latest_portal_scans(now - FRESHNESS_LOOKBACK):
        if scan.complete and (scan.portal_url not in latest or scan.recorded_at > latest[scan.portal_url]):
            latest[scan.portal_url] = scan.recorded_at
    checked: dict[str, Checked] = {}
    for portal in inventory.portals:
        findings = evaluate_freshness(portal.url, now, latest.get(portal.url), timedelta(days=days),
                                      FRESHNESS_LOOKBACK)
        last = latest.get(portal.url)
        checked[portal.url] = findings, {"latest_complete_scan": last.isoformat() if last else None,
                                         "checks": sorted({f.check_id for f in findings})}
    return checked


def gone_subjects(context: ServiceContext, checked: set[str], portals: set[str] | None) -> set[str]:
    """Subjects of active ops findings nobody checks any more: a job that is gone, and — when the inventory
    is known (`portals`) — a portal that left it."""
    active = context.backend.findings.list_findings(statuses=(FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED),
                                                    check_ids=[key for key in catalogue() if key.startswith("ops.")])
    gone = set()
    for subject in {finding.portal_url for finding in active} - checked:
        if subject.startswith("job:") or (portals is not None and subject not in portals):
            gone.add(subject)
    return gone


def check(context: ServiceContext, inventory: Inventory | None, triggers: Mapping[str, Any],
          unscheduled: Sequence[str] = ()) -> OpsReport:
    """Record the ops findings of every job (`triggers`: the scheduled ones; `unscheduled`: jobs that only
    follow others, e.g. the change e-mail) and, once the portal scan has had a due slot, of every portal of
    the inventory (none given: portals are not judged). Audited (`ops.check`)."""
    abandoned = mark_dead_runs(context)
    results: dict[str, Checked] = {}
    scan_due = False
    for name, trigger in triggers.items():
        results[job_subject(name)], due = job_findings(context, name, trigger)
        scan_due = scan_due or (name == SCAN_JOB and due)
    for name in unscheduled:
        results[job_subject(name)], _ = job_findings(context, name, None)
    if inventory is not None and scan_due:
        results |= stale_portals(context, inventory)
    portals = None if inventory is None else {portal.url for portal in inventory.portals}
    for subject in gone_subjects(context, set(results) | (portals or set()), portals):
        results[subject] = [], {"checks": [], "gone": True}
    return _record(context, results, abandoned)


def _record(context: ServiceContext, results: Mapping[str, Checked], abandoned: list[JobRun]) -> OpsReport:
    store, observed = context.backend.findings, context.clock.now()
    run = store.begin_run(OPS_RUN, len(results), owner=current_process())
    complete, opened, resolved = False, 0, 0
    try:
        for subject, (findings, data) in results.items():
            typed = OpsObservation(portal_url=subject, observed_at=observed, data=data)
            observation = Observation(collector="ops", portal_url=subject, observed_at=observed,
                                      complete=typed.complete, data=typed.model_dump(mode="json"))
            changes = store.record_portal(run.id, subject, [observation], findings)
            opened += len(changes.new) + len(changes.reopened)
            resolved += len(changes.resolved)
        complete = True
    finally:
        run = store.finish_run(run.id, complete=complete)
        context.audit("ops.check", run.id, after={"status": run.status.value, "subjects": len(results),
                                                  "opened": opened, "resolved": resolved,
                                                  "abandoned": [item.id for item in abandoned]})
    return OpsReport(run=run, subjects=len(results), opened=opened, resolved=resolved,
                     abandoned=[item.id for item in abandoned if item.id is not None])
