"""`/api/v1/systems`, `/api/v1/kpis`, `/api/v1/coverage`: the register, the plan's KPIs and anti-malware coverage
as they stood on a date (as known now, or for the KPIs as known at a past moment)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from soc.api.auth import Reader, api_state
from soc.api.problems import ApiError
from soc.api.routes.findings import moment
from soc.core.clock import LOCAL_ZONE, today
from soc.inventory import Inventory
from soc.schemas.api import CoverageList, SystemList
from soc.schemas.compliance import ComplianceOutput
from soc.services import compliance as compliance_service
from soc.services import register as register_service
from soc.services.context import ServiceContext, ServiceError

router = APIRouter(tags=["register"])
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9998, 12, 30)

AsOf = Annotated[date | None, Query(description="The day (YYYY-MM-DD, Asia/Ho_Chi_Minh); default today.")]
Agency = Annotated[str | None, Query(description="One agency (its inventory id).", max_length=64)]


def _day(context: ServiceContext, value: date | None) -> date:
    if value is None:
        return today(context.clock)
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ServiceError(f"as_of: {value.isoformat()} is out of range ({FIRST_DAY} … {LAST_DAY})")
    return value


def _agency(inventory: Inventory | None, agency: str | None) -> str | None:
    if agency is not None and inventory is not None and agency not in {a.id for a in inventory.agencies}:
        raise ServiceError(f"agency {agency!r}: not an agency of the inventory")
    return agency


@router.get("/systems", response_model=SystemList, summary="Hệ thống thông tin / Information systems")
def list_systems(request: Request, context: Reader, as_of: AsOf = None, agency: Agency = None) -> SystemList:
    """The register as it stood at the end of `as_of`, as known now (a decision recorded today but dated
    earlier counts), by agency and id."""
    day = _day(context, as_of)
    agency = _agency(api_state(request).inventory(), agency)
    return SystemList(as_of=day, items=register_service.systems_as_of(context, day, agency))


@router.get("/coverage", response_model=CoverageList, summary="Phòng chống mã độc / Anti-malware coverage")
def list_coverage(request: Request, context: Reader, as_of: AsOf = None, agency: Agency = None) -> CoverageList:
    """Each agency's anti-malware coverage as it stood at the end of `as_of`, as known now."""
    day = _day(context, as_of)
    agency = _agency(api_state(request).inventory(), agency)
    return CoverageList(as_of=day, items=register_service.coverage_as_of(context, day, agency))


@router.get("/kpis", response_model=ComplianceOutput, summary="Chỉ tiêu an toàn thông tin / Security KPIs")
def kpis(request: Request, context: Reader, as_of: AsOf = None, agency: Agency = None,
         known_at: Annotated[datetime | None, Query(
             description="Rebuild the figures as the toolkit knew them at this moment (a sent report); without a "
                         "time zone, Asia/Ho_Chi_Minh.")] = None) -> ComplianceOutput:
    """The plan's KPIs on `as_of` for the province and each agency (or one): what is known now about that day,
    or with `known_at` what the toolkit would have said then."""
    inventory = api_state(request).inventory()
    if inventory is None:
        raise ApiError("the KPIs need the inventory (its agencies and portals), and this service has none: "
                       "set SOC_INVENTORY", 422)
    day = _day(context, as_of)
    if known_at is not None and known_at.utcoffset() is None:
        known_at = known_at.replace(tzinfo=LOCAL_ZONE)
    known_at = moment(known_at, "known_at")
    if known_at is not None and known_at > context.clock.now():
        raise ServiceError(f"known_at: {known_at.isoformat()} is in the future")
    report = compliance_service.kpis(context, inventory, day, _agency(inventory, agency), known_at)
    return ComplianceOutput.of(report)
