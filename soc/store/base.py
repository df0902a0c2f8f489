"""The `Store` protocol: what the CLI, API, dashboards and reports ask of findings storage.

The embedded SQLite backend implements it now; an Elasticsearch backend will implement the
same questions later, so keep it small and shaped by the questions, not by SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from soc.models import (
    Finding,
    FindingStatus,
    Observation,
    PortalChanges,
    PortalScan,
    ScanRun,
    Severity,
    StoredFinding,
)


class Store(Protocol):
    """Persistence of scan runs, raw observations and findings with their lifecycle."""

    def begin_run(self, inventory: str, portal_count: int) -> ScanRun:
        """Create a run in state `running` and return it (committed immediately)."""
        ...

    def record_portal(
        self,
        run_id: str,
        portal_url: str,
        observations: Sequence[Observation],
        findings: Sequence[Finding],
        assessment: PortalScan | None = None,
    ) -> PortalChanges:
        """Store one portal's observations and findings atomically and apply the lifecycle.

        Findings seen are opened (new), kept (still open) or reopened (were resolved).
        Each complete observation resolves the portal's earlier findings of its own collector's
        checks that were not seen; an incomplete one (unreachable, a probe failed) resolves nothing.
        The portal's assessment (grade, score), when given, is kept for the run.
        """
        ...

    def finish_run(self, run_id: str, complete: bool) -> ScanRun:
        """Mark a run complete, or incomplete when it was interrupted."""
        ...

    def get_run(self, run_id: str) -> ScanRun | None:
        """One run, or None."""
        ...

    def list_runs(self, limit: int = 20) -> list[ScanRun]:
        """Most recent runs first."""
        ...

    def list_findings(
        self,
        statuses: Sequence[FindingStatus] = (),
        severities: Sequence[Severity] = (),
        check_ids: Sequence[str] = (),
        portal_url: str | None = None,
    ) -> list[StoredFinding]:
        """Findings matching every given filter (an empty filter matches all), worst first."""
        ...

    def run_findings(self, run_id: str) -> list[StoredFinding]:
        """The findings seen in one run (their current state)."""
        ...

    def observations(self, run_id: str, portal_url: str | None = None) -> list[Observation]:
        """Raw observations kept for one run."""
        ...

    def portal_scans(self, run_id: str) -> list[PortalScan]:
        """Every portal's assessment in one run."""
        ...

    def portal_scans_between(self, start: datetime, end: datetime) -> list[PortalScan]:
        """Every portal assessment recorded in [start, end], oldest first."""
        ...

    def set_status(
        self, fingerprint: str, status: FindingStatus, actor: str, note: str | None = None
    ) -> StoredFinding:
        """Triage: change a finding's status by hand, with who and why kept in its history."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
