"""`/api/v1/reports`: the archive of the reports to leadership (monthly, quarterly) — list, generate, and each
report's PDF and the same document as HTML. Reading needs `read`; generating `scan` (operator, admin), like
running a job now.

The HTML is served as a standalone document under a CSP that allows its own inline styles and data: images and
fonts, never a script; the PDF as an attachment, byte for byte as archived (its SHA-256 in `ETag`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from soc.api.auth import Reader, Scanner, api_state
from soc.api.problems import ApiError, Conflict, NotFound
from soc.api.routes.drills import REPORT_CSP
from soc.core.report_records import ArchivedReport, ReportKind, ReportSummary
from soc.schemas.reports import ReportCreate, ReportItem, ReportList
from soc.services.context import ServiceContext, ServiceError

router = APIRouter(prefix="/reports", tags=["reports"])
ReportId = Annotated[str, Path(description="A report's id (as GET /reports lists them).", min_length=1,
                               max_length=32, pattern=r"^[0-9a-f]+$")]
PDF_TYPES: dict[int | str, dict[str, object]] = {200: {"description": "The report as archived.",
                                                       "content": {"application/pdf": {}}}}
HTML_TYPES: dict[int | str, dict[str, object]] = {200: {"description": "The same document as HTML.",
                                                        "content": {"text/html": {}}}}


def item(report: ReportSummary) -> ReportItem:
    """A listing entry with its download links."""
    base = f"/api/v1/reports/{report.id}"
    return ReportItem.model_validate(report.model_dump(include=set(ReportSummary.model_fields))
                                     | {"pdf_url": f"{base}.pdf", "html_url": f"{base}.html"})


def create(request: Request, context: ServiceContext, body: ReportCreate) -> ArchivedReport:
    """Generate and archive one report (the API's and the dashboard's form): 422 without an inventory, 409 for a
    period that has not ended."""
    from soc.services import report_archive  # imports WeasyPrint: only a request that generates pays for it

    inventory = api_state(request).inventory()
    if inventory is None:
        raise ApiError("a report needs the inventory (its agencies and portals), and this service has none: set "
                       "SOC_INVENTORY", 422)
    try:
        return report_archive.generate(context, inventory, body.kind, body.period, body.lang)
    except ServiceError as exc:
        raise Conflict(str(exc)) from None


def archived(context: ServiceContext, report_id: str) -> ArchivedReport:
    """One archived report (NotFound otherwise)."""
    report = context.backend.reports.get(report_id)
    if report is None:
        raise NotFound(f"no report {report_id!r}")
    return report


def pdf_response(report: ArchivedReport) -> Response:
    """The PDF as archived, as a download."""
    return Response(report.pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="bao-cao-{report.period}-{report.lang}.pdf"',
        "ETag": f'"{report.sha256}"'})


def html_response(report: ArchivedReport) -> Response:
    """The HTML as archived, standalone, under the report CSP."""
    return Response(report.html, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": REPORT_CSP})


@router.get("", response_model=ReportList, summary="Báo cáo đã lưu / Archived reports")
def list_reports(context: Reader, kind: ReportKind | None = None,
                 period: Annotated[str | None, Query(max_length=8)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> ReportList:
    """Generated reports, newest period first (optionally of one kind and one period), without their content."""
    return ReportList(items=[item(report) for report in context.backend.reports.list(kind, period, limit)])


@router.post("", response_model=ReportItem, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "The period has not ended."}},
             summary="Lập báo cáo / Generate a report")
def generate_report(request: Request, response: Response, body: ReportCreate, context: Scanner) -> ReportItem:
    """Build the report of a period that has ended (`YYYY-MM` monthly, `YYYY-Qn` quarterly) in `lang`, from the
    figures of `soc compliance --as-of` its last day, and archive it with those figures. Audited."""
    report = create(request, context, body)
    response.headers["Location"] = f"/api/v1/reports/{report.id}.pdf"
    return item(report)


@router.get("/{report_id}.pdf", response_class=Response, responses=PDF_TYPES, summary="Báo cáo PDF / Report PDF")
def report_pdf(report_id: ReportId, context: Reader) -> Response:
    """The PDF exactly as archived and e-mailed."""
    return pdf_response(archived(context, report_id))


@router.get("/{report_id}.html", response_class=Response, responses=HTML_TYPES,
            summary="Báo cáo HTML / Report HTML")
def report_html(report_id: ReportId, context: Reader) -> Response:
    """The same document as HTML (what the dashboard shows)."""
    return html_response(archived(context, report_id))
