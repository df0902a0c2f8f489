"""Reading the audit log (writing it is `ServiceContext.audit`, called by the other services)."""

from __future__ import annotations

from soc.core.models import AuditEntry
from soc.services.context import ServiceContext

MAX_ENTRIES = 10_000


def audit_entries(context: ServiceContext, action_prefix: str | None = None, subject: str | None = None,
                  limit: int = 100) -> list[AuditEntry]:
    """The newest entries first, optionally of actions starting with a prefix ('finding.') or of one subject."""
    return context.backend.audit.entries(action_prefix, subject, max(1, min(limit, MAX_ENTRIES)))
