"""The context every service is called with, and the errors services raise for bad input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from soc.core.clock import Clock
from soc.core.errors import InputError
from soc.core.models import AuditEntry, RunningRun
from soc.core.process import is_running, sweep_orphan_files
from soc.core.settings import Settings
from soc.store import Backend, open_backend

ABANDONED_AFTER = timedelta(hours=6)
"""A run with no heartbeat (begun before store revision 0007), or whose live process has said nothing,
still `running` after this long was killed without a chance to say so: it is incomplete."""
HEARTBEAT_STALE = timedelta(minutes=2)
"""A run whose process cannot be checked from here (another host) and has been silent this long is dead
(the pipeline beats every few seconds: `soc.scan.pipeline.HEARTBEAT_SECONDS`)."""


class ServiceError(InputError):
    """Input a service cannot act on; the message names what is wrong (front ends show it, exit 2)."""


@dataclass
class ServiceContext:
    """Settings, the store backend, the clock and who is acting."""

    settings: Settings
    backend: Backend
    clock: Clock
    actor: str

    def audit(self, action: str, subject: str, before: dict[str, Any] | None = None,
              after: dict[str, Any] | None = None, note: str | None = None) -> AuditEntry:
        """Record one state change in the audit log (services only)."""
        return self.backend.audit.append(AuditEntry(at=self.clock.now(), actor=self.actor, action=action,
                                                    subject=subject, before=before, after=after, note=note))

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> ServiceContext:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_context(settings: Settings, clock: Clock, actor: str, *, writes: bool = True,
                 on_create: Callable[[Path], None] | None = None) -> ServiceContext:
    """Open the store the settings name (StoreError if it cannot be used) and recognise abandoned runs.

    `writes=False` is for use cases that only read: they also work on a store this process cannot write
    (opened read-only, and then nothing is marked — that is a write). `on_create` hears of a new store.
    """
    backend = open_backend(settings.db, clock, writes=writes, on_create=on_create, store=settings.store)
    context = ServiceContext(settings, backend, clock, actor)
    try:
        if not backend.read_only:
            mark_abandoned_runs(context)
        sweep_orphan_files()  # temporary files of killed scans (trust anchors)
    except BaseException:
        context.close()
        raise
    return context


def mark_abandoned_runs(context: ServiceContext) -> int:
    """Runs left `running` by a process that is gone (or silent too long) were killed: mark them incomplete,
    audited with the reason."""
    now = context.clock.now()
    reasons = {item.run.id: reason for item in context.backend.findings.running_runs()
               if (reason := abandoned_because(item, now)) is not None}
    runs = context.backend.findings.abandon_runs(list(reasons)) if reasons else []
    for run in runs:
        context.audit("scan.run.abandoned", run.id, before={"status": "running"}, after={"status": run.status.value},
                      note=reasons[run.id])
    return len(runs)


def abandoned_because(item: RunningRun, now: datetime) -> str | None:
    """Why a `running` run is dead, or None while it may live.

    Its process ran on this host and is gone (or its pid now names another process): dead at once. A
    process that provably still runs it is left alone up to ABANDONED_AFTER without a heartbeat; one
    that cannot be checked from here up to HEARTBEAT_STALE; a run with no heartbeat at all (begun
    before owners were recorded) up to ABANDONED_AFTER after its start.
    """
    owner, beat = item.owner, item.heartbeat_at
    running = None if owner is None else is_running(owner)
    if owner is not None and running is False:
        return f"its process is gone (pid {owner.pid} on {owner.host})"
    limit = ABANDONED_AFTER if running or beat is None else HEARTBEAT_STALE
    if beat is None:
        return f"still running after {ABANDONED_AFTER}" if item.run.started_at < now - limit else None
    if beat < now - limit:
        return f"no heartbeat for {limit} (last {beat.isoformat(timespec='seconds')})"
    return None
