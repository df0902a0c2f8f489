"""Scan runs: list them, find one by a prefix of its id, and what changed between two."""

from __future__ import annotations

from soc.core.models import ScanRun
from soc.schemas.findings import DiffCounts, DiffOutput
from soc.services.context import ServiceContext, ServiceError

HEALTH_RUNS = ("ops",)
"""The scheduler's health check records a run every 15 minutes: listed only when asked for."""


def list_runs(context: ServiceContext, limit: int = 20, health_checks: bool = False) -> list[ScanRun]:
    """Most recent runs first (scans and compliance evaluations; the health checks too with `health_checks`)."""
    return context.backend.findings.list_runs(limit, exclude=() if health_checks else HEALTH_RUNS)


def find_run(context: ServiceContext, prefix: str) -> ScanRun:
    """The run whose id starts with `prefix` (as `soc runs` shows them); ServiceError when none or several do."""
    matches = context.backend.findings.runs_by_prefix(prefix, limit=2) if prefix else []
    if len(matches) != 1:
        raise ServiceError(f"run {prefix!r}: {'no run' if not matches else 'several runs'} with this id")
    return matches[0]


def diff_runs(context: ServiceContext, prefix_a: str, prefix_b: str) -> DiffOutput:
    """Findings of run B compared with run A; `resolved` only lists the portals run B scanned."""
    store = context.backend.findings
    run_a, run_b = find_run(context, prefix_a).id, find_run(context, prefix_b).id
    seen_a = {f.fingerprint: f for f in store.run_findings(run_a)}
    seen_b = {f.fingerprint: f for f in store.run_findings(run_b)}
    scanned_b = {scan.portal_url for scan in store.portal_scans(run_b)}
    new = [f for fp, f in seen_b.items() if fp not in seen_a]
    still_open = [f for fp, f in seen_b.items() if fp in seen_a]
    resolved = [f for fp, f in seen_a.items() if fp not in seen_b and f.portal_url in scanned_b]
    return DiffOutput(run_a=run_a, run_b=run_b, new=new, still_open=still_open, resolved=resolved,
                      counts=DiffCounts(new=len(new), still_open=len(still_open), resolved=len(resolved)))
