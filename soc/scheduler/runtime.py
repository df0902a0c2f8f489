"""How APScheduler calls our jobs: one persisted callable, and an executor that hands it the slot.

A job in APScheduler's store names its callable by a textual reference (`FIRE`) with the job's name as
its only argument, so the store can keep it across restarts. APScheduler 3 tells the executor, not the
job function, the scheduled run time; `SlotExecutor` adds it (and the scheduler that owns the executor)
to the call's keyword arguments, so `run_job` records the slot the run is for, not the moment it began.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor

FIRE = "soc.scheduler.runtime:fire"
"""The textual reference every scheduled job is stored with."""

Runner = Callable[[str, datetime], None]
"""Runs job `name` for slot `datetime` (the owning `SocScheduler`)."""


def fire(name: str, *, slot: datetime | None = None, runner: Runner | None = None) -> None:
    """Run job `name` for its slot: what APScheduler calls, through `SlotExecutor`."""
    if slot is None or runner is None:
        raise RuntimeError(f"job {name}: called without its slot (only SocScheduler's executor runs it)")
    runner(name, slot)


class _Slotted:
    """A job as APScheduler's `run_job` sees it, with the slot and the runner added to its keyword arguments."""

    def __init__(self, job: Any, slot: datetime, runner: Runner) -> None:
        self._job = job
        self.kwargs = {**job.kwargs, "slot": slot, "runner": runner}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


class SlotExecutor(ThreadPoolExecutor):  # type: ignore[misc]  # APScheduler has no type information
    """APScheduler's thread-pool executor, calling each job with the slot it runs for.

    Jobs are coalesced (one run time per submission: the latest); APScheduler's own checks stay as they
    are — max_instances before submitting, the misfire grace before calling.
    """

    def __init__(self, runner: Runner, max_workers: int = 10) -> None:
        super().__init__(max_workers)
        self._runner = runner

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        latest = run_times[-1:]
        super()._do_submit_job(_Slotted(job, latest[0], self._runner), latest)
