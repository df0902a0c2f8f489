"""`/api/v1/portals`: the inventory's portals with their latest assessment and open findings, and one portal."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from soc.api.auth import Reader, api_state
from soc.api.problems import NotFound
from soc.api.routes.findings import item
from soc.core.models import PortalScan, Severity
from soc.findings.sla import CLOCK_RUNS
from soc.inventory import Inventory, Portal
from soc.schemas.api import PortalDetail, PortalItem, PortalList, SeverityCounts
from soc.services import findings as findings_service
from soc.services.context import ServiceContext, ServiceError
from soc.store import FindingQuery

router = APIRouter(prefix="/portals", tags=["portals"])
LOOKBACK = timedelta(days=400)
"""How far back a portal's latest assessment is looked for (a portal not scanned for longer shows none)."""


def portal_id(url: str) -> str:
    """The stable short id of a portal URL: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _latest(context: ServiceContext) -> dict[str, tuple[PortalScan, PortalScan | None]]:
    """Portal URL → (its newest assessment, its newest complete one)."""
    latest: dict[str, tuple[PortalScan, PortalScan | None]] = {}
    for scan in context.backend.findings.latest_portal_scans(context.clock.now() - LOOKBACK):
        if scan.portal_url not in latest:
            latest[scan.portal_url] = (scan, scan if scan.complete else None)
        elif scan.complete:
            latest[scan.portal_url] = (latest[scan.portal_url][0], scan)
    return latest


def _item(portal: Portal, scans: tuple[PortalScan, PortalScan | None] | None,
          counts: Mapping[Severity, int]) -> PortalItem:
    """The list entry of a portal: the grade of its newest scan, or of its newest complete one when the
    newest could not assess everything (an unreachable portal keeps showing what was last known)."""
    base = PortalItem(id=portal_id(portal.url), url=portal.url, agency=portal.agency, name=portal.name,
                      system=portal.system,
                      open_findings=SeverityCounts(**{severity.value: counts.get(severity, 0)
                                                      for severity in Severity}))
    if scans is None:
        return base
    newest, complete = scans
    shown = newest if newest.complete or complete is None else complete
    return base.model_copy(update={
        "grade": shown.tls_grade, "grade_without_trust": shown.grade_without_trust, "score": shown.score,
        "grade_reasons": list(shown.reasons), "label_valid": shown.label_valid, "last_scan": newest.recorded_at,
        "last_complete_scan": complete.recorded_at if complete else None, "last_run_id": newest.run_id})


def _portals(inventory: Inventory | None, agency: str | None) -> list[Portal]:
    if inventory is None:
        return []
    if agency is not None and agency not in {a.id for a in inventory.agencies}:
        raise ServiceError(f"agency {agency!r}: not an agency of the inventory")
    return [portal for portal in inventory.portals if agency is None or portal.agency == agency]


def portal_items(context: ServiceContext, inventory: Inventory | None, agency: str | None = None) -> list[PortalItem]:
    """Every portal of the inventory (of one agency) with its latest assessment and open findings."""
    portals = _portals(inventory, agency)
    if not portals:
        return []
    latest = _latest(context)
    counts = context.backend.findings.open_counts_by_subject()
    return [_item(portal, latest.get(portal.url), counts.get(portal.url, {})) for portal in portals]


Agency = Annotated[str | None, Query(description="Only the portals of this agency (an inventory agency id).",
                                     max_length=64)]


@router.get("", response_model=PortalList, summary="Danh sách cổng thông tin / Portals")
def list_portals(request: Request, context: Reader, agency: Agency = None) -> PortalList:
    """Every portal of the inventory with its latest grade and score and its open (or acknowledged) findings by
    severity; empty when the service has no inventory."""
    return PortalList(items=portal_items(context, api_state(request).inventory(), agency))


@router.get("/{portal}", response_model=PortalDetail, summary="Một cổng thông tin / One portal")
def get_portal(request: Request, context: Reader,
               portal: Annotated[str, Path(description="The portal's `id` (as listed).", max_length=64)]
               ) -> PortalDetail:
    """One portal: its latest assessment, every finding of it (all statuses) and the raw observations of its
    latest scan (text from the portal, untrusted)."""
    inventory = api_state(request).inventory()
    found = next((p for p in _portals(inventory, None) if portal_id(p.url) == portal), None)
    if found is None:
        raise NotFound(f"no portal {portal!r} in the inventory")
    scans = _latest(context).get(found.url)
    owned = findings_service.owners(context, inventory)
    now = context.clock.now()
    findings = findings_service.query_findings(context, FindingQuery(portal_urls=(found.url,))).items
    counts = Counter(f.severity for f in findings if f.status in CLOCK_RUNS)
    observations = [] if scans is None else [
        observation.model_dump(mode="json")
        for observation in context.backend.findings.observations(scans[0].run_id, found.url)]
    return PortalDetail(portal=_item(found, scans, counts), findings=[item(f, now, owned) for f in findings],
                        observations=observations)
