"""Our own history of scheduled job runs on SQLite (APScheduler keeps only what is due next)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from soc.core.models import JobOutcome, JobRun, RunOwner
from soc.store.sqlite.schema import BEGIN_OPTION, job_runs, leases


class SqliteJobHistory:
    """The `JobHistory` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})

    def start(self, run: JobRun) -> JobRun:
        """Record a job run that starts (committed at once); return it with its id."""
        with self._writer.begin() as conn:
            key = conn.execute(insert(job_runs).values(run.model_dump(mode="python", exclude={"id"}))
                               ).inserted_primary_key
        return run.model_copy(update={"id": key[0] if key else None})

    def update(self, run_id: int, **values: Any) -> JobRun:
        """Change a run's columns (`scan_run_id`, `detail`, …) while it runs or when it ends."""
        with self._writer.begin() as conn:
            if conn.execute(update(job_runs).where(job_runs.c.id == run_id).values(values)).rowcount == 0:
                raise KeyError(f"no job run {run_id}")
            row = conn.execute(select(job_runs).where(job_runs.c.id == run_id)).mappings().one()
        return JobRun.model_validate(dict(row))

    def finish(self, run_id: int, outcome: JobOutcome, finished_at: datetime, error: str | None = None,
               **values: Any) -> JobRun:
        """Record how a run ended."""
        return self.update(run_id, outcome=outcome.value, finished_at=finished_at, error=error, **values)

    def runs(self, job: str | None = None, since: datetime | None = None, outcome: JobOutcome | None = None,
             limit: int = 100) -> list[JobRun]:
        """Runs newest first (by slot, then start), optionally of one job, since a slot, with one outcome."""
        stmt = select(job_runs)
        if job is not None:
            stmt = stmt.where(job_runs.c.job == job)
        if since is not None:
            stmt = stmt.where(job_runs.c.slot >= since)
        if outcome is not None:
            stmt = stmt.where(job_runs.c.outcome == outcome.value)
        stmt = stmt.order_by(job_runs.c.slot.desc(), job_runs.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [JobRun.model_validate(dict(row)) for row in conn.execute(stmt).mappings()]

    def get(self, run_id: int) -> JobRun | None:
        """One run, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(job_runs).where(job_runs.c.id == run_id)).mappings().first()
        return None if row is None else JobRun.model_validate(dict(row))

    def acquire_lease(self, name: str, owner: RunOwner, now: datetime,
                      is_dead: Callable[[RunOwner, datetime], bool]) -> tuple[RunOwner, datetime] | None:
        """Take the lease `name` for `owner`; when another holds it and `is_dead(holder, heartbeat)` says it
        still lives, refuse and return (holder, its last heartbeat)."""
        with self._writer.begin() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).mappings().first()
            if row is not None:
                holder = RunOwner(host=row["host"], pid=row["pid"], started=row["started"])
                if holder != owner and not is_dead(holder, row["heartbeat_at"]):
                    return holder, row["heartbeat_at"]
                conn.execute(delete(leases).where(leases.c.name == name))
            conn.execute(insert(leases).values(name=name, host=owner.host, pid=owner.pid, started=owner.started,
                                               acquired_at=now, heartbeat_at=now))
        return None

    def renew_lease(self, name: str, owner: RunOwner, now: datetime) -> bool:
        """Say the holder lives; False when `owner` no longer holds the lease."""
        with self._writer.begin() as conn:
            result = conn.execute(update(leases).where(leases.c.name == name, leases.c.host == owner.host,
                                                       leases.c.pid == owner.pid).values(heartbeat_at=now))
            return bool(result.rowcount)

    def release_lease(self, name: str, owner: RunOwner) -> None:
        """Give the lease up (nothing happens when another holds it)."""
        with self._writer.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.host == owner.host,
                                              leases.c.pid == owner.pid))
