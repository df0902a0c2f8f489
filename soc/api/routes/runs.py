"""`/api/v1/runs`: scan runs, one run (by a prefix of its id), and what changed between two runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from soc.api.auth import Reader
from soc.api.problems import NotFound
from soc.core.models import ScanRun
from soc.schemas.api import RunList
from soc.schemas.findings import DiffOutput
from soc.services import runs as service
from soc.services.context import ServiceContext, ServiceError

router = APIRouter(prefix="/runs", tags=["runs"])
RunId = Annotated[str, Path(description="A run id or a unique prefix of one (as `soc runs` shows them).",
                            min_length=1, max_length=64)]


def _run(context: ServiceContext, prefix: str) -> ScanRun:
    try:
        return service.find_run(context, prefix)
    except ServiceError as exc:
        raise NotFound(str(exc)) from None


@router.get("", response_model=RunList, summary="Các lần quét / Scan runs")
def list_scan_runs(context: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20,
                   health: Annotated[bool, Query(description="Also the scheduler's health checks (ops).")] = False
                   ) -> RunList:
    """Scan runs (portal scans and compliance evaluations), newest first."""
    return RunList(items=service.list_runs(context, limit, health))


@router.get("/{run}", response_model=ScanRun, summary="Một lần quét / One run")
def get_scan_run(run: RunId, context: Reader) -> ScanRun:
    """One run: 404 when no run, or several, have an id starting like this."""
    return _run(context, run)


@router.get("/{run_a}/diff/{run_b}", response_model=DiffOutput,
            summary="So sánh hai lần quét / Diff two runs")
def diff_scan_runs(run_a: RunId, run_b: RunId, context: Reader) -> DiffOutput:
    """Findings of run B compared with run A: new, still open, and resolved (only of the portals B scanned)."""
    first, second = _run(context, run_a), _run(context, run_b)
    return service.diff_runs(context, first.id, second.id)
