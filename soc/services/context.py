"""The context every service is called with, and the errors services raise for bad input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from soc.core.clock import Clock
from soc.core.errors import InputError
from soc.core.models import AuditEntry
from soc.core.settings import Settings
from soc.store import Backend, open_backend

ABANDONED_AFTER = timedelta(hours=6)
"""A run still `running` after this long was killed without a chance to say so: it is incomplete."""


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


def open_context(settings: Settings, clock: Clock, actor: str) -> ServiceContext:
    """Open the store the settings name (StoreError if it cannot be used) and recognise abandoned runs."""
    context = ServiceContext(settings, open_backend(settings.db, clock), clock, actor)
    try:
        mark_abandoned_runs(context)
    except BaseException:
        context.close()
        raise
    return context


def mark_abandoned_runs(context: ServiceContext) -> int:
    """Runs left `running` longer than ABANDONED_AFTER were killed: mark them incomplete, audited."""
    runs = context.backend.findings.mark_abandoned_runs(context.clock.now() - ABANDONED_AFTER)
    for run in runs:
        context.audit("scan.run.abandoned", run.id, before={"status": "running"}, after={"status": run.status.value},
                      note=f"still running after {ABANDONED_AFTER}")
    return len(runs)
