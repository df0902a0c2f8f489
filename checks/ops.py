"""Operations checks on the scheduler: expected slots + our job-run history + a moment in, findings out. Pure.

Findings are about a subject — `job:<name>` for a scheduled job, the portal's URL for stale scan data —
kept in the same store and lifecycle as every other finding: each check of a subject is one complete
observation, so a condition that clears resolves its finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from checks.catalogue import make_finding
from soc.core.clock import LOCAL_ZONE
from soc.core.models import Finding, JobOutcome, JobRun

MAX_LISTED = 20
"""Missed slots listed in one finding's evidence (the rest are counted)."""
ABANDONED = "abandoned"
"""Key of a run's `detail` saying why it died without recording an outcome (its process is gone)."""


def job_subject(name: str) -> str:
    """Subject key of a job's findings."""
    return f"job:{name}"


def when(moment: datetime) -> str:
    """A moment in local time: '27/11/2026 01:00', with seconds when it has any (short test schedules)."""
    local = moment.astimezone(LOCAL_ZONE)
    return local.strftime("%d/%m/%Y %H:%M:%S" if local.second or local.microsecond else "%d/%m/%Y %H:%M")


def missed_slots(due: Sequence[datetime], following: datetime | None, runs: Sequence[JobRun]) -> list[datetime]:
    """The due slots (oldest first) that no run covers.

    A run covers the slot its `slot` falls in: from that slot up to the next one (`following` after the
    last). A scheduled run's slot is exactly its fire time, so it covers only that one — a coalesced run
    after a down time covers the latest slot, the earlier ones stay missed; a manual or start-up run covers
    the slot it was asked in (it did that slot's work).
    """
    if not due:
        return []
    ends = [*due[1:], following]
    slots = sorted(run.slot for run in runs)
    missed = []
    for start, end in zip(due, ends, strict=True):
        if not any(start <= slot and (end is None or slot < end) for slot in slots):
            missed.append(start)
    return missed


def evaluate_job(name: str, now: datetime, due: Sequence[datetime], following: datetime | None,
                 runs: Sequence[JobRun], stuck_after: timedelta) -> list[Finding]:
    """The findings of one job: missed schedule, failed latest run, stuck (or dead) run.

    `due`: the job's expected slots, oldest first, from when it was scheduled (at most the lookback) to
    now minus the misfire grace; `following`: the slot after the last of them. `runs`: its runs in that
    window and its most recent ones, any order.
    """
    subject = job_subject(name)
    findings: list[Finding] = []
    missed = missed_slots(due, following, runs)
    if due and missed and missed[-1] == due[-1]:
        listed = ", ".join(when(slot) for slot in missed[-MAX_LISTED:])
        more = f" (and {len(missed) - MAX_LISTED} earlier)" if len(missed) > MAX_LISTED else ""
        findings.append(make_finding(
            subject, "ops.schedule_missed",
            f"{name}: {len(missed)} of {len(due)} slot(s) without a run{more}: {listed}"))
    ordered = sorted(runs, key=lambda run: (run.slot, run.started_at, run.id or 0), reverse=True)
    finished = next((run for run in ordered if run.outcome in (JobOutcome.SUCCESS, JobOutcome.FAILED)), None)
    stuck = [f"run #{run.id} (slot {when(run.slot)}) has been running since {when(run.started_at)}, "
             f"over {_minutes(stuck_after)}" for run in ordered
             if run.outcome is JobOutcome.RUNNING and now - run.started_at > stuck_after]
    if finished is not None and finished.outcome is JobOutcome.FAILED:
        if ABANDONED in finished.detail:
            stuck.append(f"run #{finished.id} (slot {when(finished.slot)}) died without an outcome: "
                         f"{finished.detail[ABANDONED]}")
        else:
            findings.append(make_finding(
                subject, "ops.job_failed",
                f"{name}: run #{finished.id} (slot {when(finished.slot)}, {finished.trigger}) failed: "
                f"{finished.error or 'no error recorded'}"))
    if stuck:
        findings.append(make_finding(subject, "ops.job_stuck", f"{name}: " + "; ".join(stuck)))
    return findings


def evaluate_freshness(portal_url: str, now: datetime, latest_complete: datetime | None,
                       stale_after: timedelta, looked_back: timedelta) -> list[Finding]:
    """ops.data_stale when the portal's latest complete scan is older than `stale_after`, or there is none
    in the `looked_back` period."""
    if latest_complete is None:
        return [make_finding(portal_url, "ops.data_stale",
                             f"no complete scan in the last {looked_back.days} days (limit {stale_after.days})")]
    age = now - latest_complete
    if age <= stale_after:
        return []
    return [make_finding(portal_url, "ops.data_stale",
                         f"latest complete scan {when(latest_complete)}, {age.days} days ago "
                         f"(limit {stale_after.days})")]


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
