"""One agency's page: its portals, its systems and their approvals (the register as of today), its KPIs with their
members, its open findings by severity and its SLA performance — what the agency's IT officer looks at."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from soc.api.auth import api_state
from soc.api.routes.portals import portal_items
from soc.compliance.kpi import Scope
from soc.core.clock import today
from soc.core.models import Severity
from soc.services import compliance as compliance_service
from soc.services import findings as findings_service
from soc.services import register as register_service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission
from soc.web.auth import acting
from soc.web.pages.portals import agency_names, not_found
from soc.web.templating import language_of, render

router = APIRouter(include_in_schema=False)


def open_by_severity(context: ServiceContext, owned: dict[str, str], agency: str) -> dict[str, int]:
    """The agency's open (or acknowledged) findings by severity: those of every subject it owns (its portals,
    its systems, itself)."""
    counts = dict.fromkeys((s.value for s in Severity), 0)
    for subject, by_severity in context.backend.findings.open_counts_by_subject().items():
        if owned.get(subject) == agency:
            for severity, count in by_severity.items():
                counts[severity.value] += count
    return counts


@router.get("/agencies/{agency}")
def agency_page(request: Request, agency: Annotated[str, Path(max_length=64)]) -> Response:
    """Everything about one agency of the inventory."""
    who, context = acting(request, Permission.READ)
    inventory = api_state(request).inventory()
    found = None if inventory is None else next((a for a in inventory.agencies if a.id == agency), None)
    if inventory is None or found is None:
        return not_found(request, who, "No agency with this id in the inventory.")
    day = today(context.clock)
    scope: Scope | None = None
    problem = None
    try:
        scope = compliance_service.kpis(context, inventory, day, agency).agencies[0]
    except ServiceError as exc:  # no plan or rule set in force today
        problem = str(exc)
    owned = findings_service.owners(context, inventory)
    names = agency_names(inventory, language_of(request))
    return render(request, "agency.html", who, agency=found, name=names[agency], day=day, scope=scope,
                  problem=problem, items=portal_items(context, inventory, agency), names=names,
                  systems=register_service.systems_as_of(context, day, agency),
                  coverage=register_service.coverage_as_of(context, day, agency),
                  counts=open_by_severity(context, owned, agency), severities=[s.value for s in Severity])
