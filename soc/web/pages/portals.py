"""The portals: the list (grade, trust label, open findings by severity) and one portal's page — its grade and what
capped it, the certificate chain, protocols and cipher suites, HTTP headers and redirects, the trust label, open
ports, the grade history and its findings.

Everything an observation holds came from the portal (or its certificate, or the registry): the template shows it
with `| text`, and links only to the inventory's own URL and to the registry's detail page built from the
inventory's registry address and a checked slug, never to a URL the portal sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from soc.api.auth import api_state
from soc.api.routes.portals import portal_items
from soc.charts import GradePoint, grade_chart
from soc.core.clock import local_date
from soc.core.models import Observation, PortalScan, Severity, StoredFinding
from soc.core.observations import (
    PROTOCOLS,
    HttpObservation,
    LabelObservation,
    PortsObservation,
    TlsObservation,
)
from soc.findings.sla import CLOCK_RUNS, sla_state
from soc.inventory import Inventory
from soc.schemas.api import PortalItem
from soc.services import findings as findings_service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission, Principal
from soc.store import FindingQuery
from soc.web import i18n
from soc.web.auth import acting
from soc.web.i18n import gettext as _
from soc.web.templating import language_of, render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
HISTORY = timedelta(days=365)
"""How far back the grade history goes."""
SLUG = re.compile(r"[a-z0-9-]{1,128}")
"""A registry slug the detail link may carry (the collector's own rule)."""
DETAIL_PREFIX = "/danh-ba-tin-nhiem/"
PARSERS: dict[str, type[BaseModel]] = {"tls": TlsObservation, "http": HttpObservation, "label": LabelObservation,
                                       "ports": PortsObservation}
WORDS = (
    N_("No portal with this id in the inventory."), N_("No agency with this id in the inventory."),
    N_("dns"), N_("refused"), N_("timeout"), N_("reset"), N_("not_tls"), N_("handshake"), N_("too_slow"),
    N_("not_allowed"), N_("other"),
    N_("good"), N_("revoked"), N_("unknown"), N_("not_checked"), N_("valid"), N_("expired"),
    N_("snapshot"), N_("registry"), N_("basic"), N_("advanced"),
)


def agency_names(inventory: Inventory | None, language: str) -> dict[str, str]:
    """Agency id → its name in the page's language (the Vietnamese name when it has no English one)."""
    if inventory is None:
        return {}
    return {a.id: (a.name_en or a.name) if language == "en" else a.name for a in inventory.agencies}


def not_found(request: Request, who: Principal, message: str) -> Response:
    """The 404 page (`message` is a msgid)."""
    return render(request, "error.html", who, status_code=404, title="Not found", message=message)


@router.get("/portals")
def portals_page(request: Request, agency: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """Every portal of the inventory with its grade, trust label and open findings by severity (one agency's)."""
    who, context = acting(request, Permission.READ)
    inventory = api_state(request).inventory()
    problem = None
    try:
        items = portal_items(context, inventory, agency or None)
    except ServiceError as exc:
        problem, items = str(exc), portal_items(context, inventory)
    return render(request, "portals.html", who, inventory=inventory, items=items, agency=agency or "",
                  names=agency_names(inventory, language_of(request)), severities=[s.value for s in Severity],
                  problem=problem)


@dataclass
class Observed:
    """What the portal's latest run saw, typed (a collector whose data cannot be read is named in `failed`)."""

    tls: TlsObservation | None = None
    http: HttpObservation | None = None
    label: LabelObservation | None = None
    ports: PortsObservation | None = None
    failed: dict[str, str] = field(default_factory=dict)
    """Collector → why it gave nothing readable (its error, when it died)."""
    observed_at: dict[str, datetime] = field(default_factory=dict)


def observed(observations: list[Observation]) -> Observed:
    """The latest run's observations of one portal as the typed models of `soc.core.observations`."""
    seen = Observed()
    for observation in observations:
        model = PARSERS.get(observation.collector)
        if model is None:
            continue
        seen.observed_at[observation.collector] = observation.observed_at
        try:
            setattr(seen, observation.collector, model.model_validate(observation.data))
        except ValidationError:  # a collector that died stores its error instead (FailedObservation)
            seen.failed[observation.collector] = str(observation.data.get("error") or "")
    return seen


def registry_link(inventory: Inventory, host: str, label: LabelObservation | None) -> str | None:
    """The registry's detail page of this portal's label: the inventory's registry address and the slug the
    registry was asked about (or of a badge naming this host), checked; None when there is none."""
    base = inventory.settings.trustlabel.registry_url
    if base is None or label is None or urlsplit(base).scheme not in ("http", "https"):
        return None
    slug = label.registry.label_id if label.registry is not None and label.registry.source == "registry" else None
    if slug is None:
        compact = host.replace(".", "")
        slug = next((b.slug for b in label.badges if b.slug and (b.image_host == host or b.slug_domain == compact)),
                    None)
    if slug is None or not SLUG.fullmatch(slug):
        return None
    return f"{base.rstrip('/')}{DETAIL_PREFIX}{slug}"


def in_language(text: str, language: str) -> str:
    """One side of a bilingual 'vi / en' text of ours (a grading reason), the whole text when it is not one."""
    parts = text.split(" / ")
    return text if len(parts) != 2 else parts[1] if language == "en" else parts[0]


def history_chart(history: list[PortalScan]) -> str:
    """The grade history as an SVG chart (labels in the page's language)."""
    points = [GradePoint(i18n.day(local_date(scan.recorded_at)), scan.tls_grade) for scan in history]
    return grade_chart(points, title=_("TLS grade over the last 12 months"),
                       description=_("One point per assessment, best grade at the top."))


def _findings(context: ServiceContext, url: str) -> tuple[list[StoredFinding], list[StoredFinding]]:
    """The portal's findings: those whose SLA clock runs (open, acknowledged), then the others."""
    found = findings_service.query_findings(context, FindingQuery(portal_urls=(url,))).items
    return [f for f in found if f.status in CLOCK_RUNS], [f for f in found if f.status not in CLOCK_RUNS]


def _portal(items: list[PortalItem], portal: str) -> PortalItem | None:
    return next((item for item in items if item.id == portal), None)


@router.get("/portals/{portal}")
def portal_page(request: Request, portal: Annotated[str, Path(max_length=64)]) -> Response:
    """One portal: everything its latest scan saw, its grade history and its findings."""
    who, context = acting(request, Permission.READ)
    i18n.use(language_of(request))
    inventory = api_state(request).inventory()
    found = _portal(portal_items(context, inventory), portal)
    if inventory is None or found is None:
        return not_found(request, who, "No portal with this id in the inventory.")
    entry = next(p for p in inventory.portals if p.url == found.url)
    store = context.backend.findings
    seen = observed(store.observations(found.last_run_id, found.url)) if found.last_run_id else Observed()
    now = context.clock.now()
    history = store.portal_history(found.url, now - HISTORY)
    running, others = _findings(context, found.url)
    values: dict[str, Any] = {
        "item": found, "entry": entry, "seen": seen, "history": history, "chart": history_chart(history),
        "running": running, "others": others, "now": now, "sla_state": sla_state,
        "agency_name": agency_names(inventory, language_of(request)).get(found.agency, found.agency),
        "registry_link": registry_link(inventory, entry.host, seen.label), "protocols": PROTOCOLS,
        "reason": lambda text: in_language(text, language_of(request)),
        "severities": [s.value for s in Severity],
    }
    return render(request, "portal.html", who, **values)
