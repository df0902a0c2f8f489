"""`/api/v1/findings`: the triage list (filters, sort, cursor pages), one finding, transitions, comments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from soc.api.auth import Reader, Triager, api_state
from soc.api.problems import NotFound
from soc.core.models import FindingStatus, Severity, StoredFinding
from soc.findings.sla import SlaState, sla_state
from soc.inventory import normalise_portal_url
from soc.schemas.api import (
    AssignRequest,
    CommentRequest,
    FindingDetail,
    FindingItem,
    FindingPage,
    TransitionRequest,
)
from soc.services import findings as service
from soc.services.context import ServiceContext, ServiceError
from soc.store import FindingQuery, FindingSort

router = APIRouter(prefix="/findings", tags=["findings"])
DEFAULT_PAGE = 100


def item(finding: StoredFinding, now: datetime, owned: dict[str, str]) -> FindingItem:
    """A stored finding as the API shows it."""
    return FindingItem(**finding.model_dump(), sla_state=sla_state(finding, now),
                       agency=service.agency_of(finding, owned))


def _portal(url: str) -> str:
    try:
        return normalise_portal_url(url)
    except ValueError:
        return url  # a subject such as system:HT01 is not a URL


EARLIEST, LATEST = datetime(1970, 1, 2), datetime(9998, 12, 31)
"""Local wall times a filter may name (near year 1 or 9999 a time cannot even be converted to UTC)."""


def moment(value: datetime | None, name: str) -> datetime | None:
    """A moment given as a filter: with a time zone, within 1970–9998 (ServiceError naming `name`)."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ServiceError(f"{name}: give a time zone (e.g. 2026-11-27T09:00:00+07:00)")
    if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
        raise ServiceError(f"{name}: {value.isoformat()} is out of range (1970-01-02 … 9998-12-31)")
    return value


@dataclass(frozen=True)
class FindingFilters:
    """The filters of a findings listing, from the query string (GET /findings and its exports)."""

    agency: tuple[str, ...] = ()
    portal: tuple[str, ...] = ()
    check: tuple[str, ...] = ()
    severity: tuple[Severity, ...] = ()
    status: tuple[FindingStatus, ...] = ()
    sla: tuple[SlaState, ...] = ()
    assignee: tuple[str, ...] = ()
    first_seen_after: datetime | None = None
    first_seen_before: datetime | None = None
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None

    def query(self, owned: dict[str, str], now: datetime, sort: FindingSort = FindingSort.SEVERITY,
              limit: int | None = None, cursor: str | None = None) -> FindingQuery:
        """The store query of these filters (ServiceError for an unknown agency or a bad moment)."""
        return FindingQuery(
            statuses=self.status, severities=self.severity, check_ids=self.check,
            portal_urls=tuple(_portal(url) for url in self.portal), assignees=self.assignee,
            owners=self.agency, owned_subjects=service.subjects_of(owned, self.agency) if self.agency else (),
            sla_states=tuple(state.value for state in self.sla), now=now,
            first_seen_after=moment(self.first_seen_after, "first_seen_after"),
            first_seen_before=moment(self.first_seen_before, "first_seen_before"),
            last_seen_after=moment(self.last_seen_after, "last_seen_after"),
            last_seen_before=moment(self.last_seen_before, "last_seen_before"),
            sort=sort, limit=limit, cursor=cursor)


def finding_filters(
    agency: Annotated[list[str] | None, Query(description="Owning agency (repeatable).", max_length=64)] = None,
    portal: Annotated[list[str] | None, Query(description="Portal URL or subject (repeatable).",
                                              max_length=2048)] = None,
    check: Annotated[list[str] | None, Query(description="Check id (repeatable).", max_length=128)] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    status: Annotated[list[FindingStatus] | None, Query()] = None,
    sla: Annotated[list[SlaState] | None, Query(description="SLA state (repeatable).")] = None,
    assignee: Annotated[list[str] | None, Query(max_length=64)] = None,
    first_seen_after: datetime | None = None,
    first_seen_before: datetime | None = None,
    last_seen_after: datetime | None = None,
    last_seen_before: datetime | None = None,
) -> FindingFilters:
    """A dependency: the findings filters of the query string (repeat a filter for "any of")."""
    return FindingFilters(
        agency=tuple(agency or ()), portal=tuple(portal or ()), check=tuple(check or ()),
        severity=tuple(severity or ()), status=tuple(status or ()), sla=tuple(sla or ()),
        assignee=tuple(assignee or ()), first_seen_after=first_seen_after, first_seen_before=first_seen_before,
        last_seen_after=last_seen_after, last_seen_before=last_seen_before)


Filters = Annotated[FindingFilters, Depends(finding_filters)]


@router.get("", response_model=FindingPage, summary="Danh sách phát hiện / List findings")
def list_findings(
    request: Request,
    context: Reader,
    filters: Filters,
    sort: FindingSort = FindingSort.SEVERITY,
    limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """Findings matching every filter given (repeat a filter for "any of"), in `sort` order, one page at a time:
    pass `next` back as `cursor` for the following page."""
    inventory, now = api_state(request).inventory(), context.clock.now()
    owned = service.owners(context, inventory) if filters.agency else None  # only an agency filter needs them all
    page = service.query_findings(context, filters.query(owned or {}, now, sort, limit, cursor))
    if owned is None:  # the page needs the owners of its own subjects only (the register only for systems)
        owned = service.owners(context, inventory, subjects={finding.portal_url for finding in page.items})
    body = FindingPage(items=[item(finding, now, owned) for finding in page.items], next=page.next_cursor)
    # Serialised here, once: handing FastAPI the model makes it dump, validate and serialise the page again
    # (about half the CPU of a 100-finding page, bench/api_load.py); the document is the same FindingPage.
    return Response(body.model_dump_json(), media_type="application/json")


def _found(context: ServiceContext, fingerprint: str) -> StoredFinding:
    finding = context.backend.findings.finding(fingerprint) if len(fingerprint) <= 64 else None
    if finding is None:
        raise NotFound(f"no finding {fingerprint[:64]!r}")
    return finding


def _detail(request: Request, context: ServiceContext, finding: StoredFinding) -> FindingDetail:
    owned = service.owners(context, api_state(request).inventory())
    return FindingDetail(finding=item(finding, context.clock.now(), owned),
                         history=context.backend.findings.events(finding.fingerprint))


@router.get("/{fingerprint}", response_model=FindingDetail, summary="Một phát hiện / One finding")
def get_finding(request: Request, fingerprint: str, context: Reader) -> FindingDetail:
    """One finding with its whole history."""
    return _detail(request, context, _found(context, fingerprint))


@router.post("/{fingerprint}/transitions", response_model=FindingDetail,
             summary="Chuyển trạng thái / Change a finding's status")
def transition(request: Request, fingerprint: str, body: TransitionRequest, context: Triager) -> FindingDetail:
    """Acknowledge, mark false positive (comment required), accept the risk (comment, approver and `expires`
    required), resolve by hand (only what no collector re-checks) or open again; audited."""
    found = _found(context, fingerprint)
    updated = service.triage(context, found.fingerprint, body.status, body.comment, expires=body.expires,
                             approver=body.approver, inventory=api_state(request).inventory())
    return _detail(request, context, updated)


@router.post("/{fingerprint}/comments", response_model=FindingDetail, summary="Bình luận / Comment")
def add_comment(request: Request, fingerprint: str, body: CommentRequest, context: Triager) -> FindingDetail:
    """Add a comment to the finding's history; audited."""
    found = _found(context, fingerprint)
    service.comment(context, found.fingerprint, body.comment)
    return _detail(request, context, found)


@router.post("/{fingerprint}/assignment", response_model=FindingDetail, summary="Giao xử lý / Assign")
def assign(request: Request, fingerprint: str, body: AssignRequest, context: Triager) -> FindingDetail:
    """Assign the finding to an agency of the inventory (null: back to its portal's owner); audited."""
    found = _found(context, fingerprint)
    updated = service.assign(context, found.fingerprint, body.agency, api_state(request).inventory())
    return _detail(request, context, updated)
