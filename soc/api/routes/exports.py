"""`/api/v1/exports`: findings and portal results as CSV (UTF-8 with BOM, for Excel) and XLSX files.

Every text cell passes `soc.core.cells.cell_text`: control, bidi and invisible characters from a portal are
shown as escapes and a cell that would run as a formula (`=HYPERLINK(…)`) starts with an apostrophe.
Times are written in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from soc.api.auth import Reader, api_state
from soc.api.routes.findings import Filters, FindingFilters
from soc.api.routes.portals import portal_items
from soc.core.cells import XLSX_CELL_MAX, cell_text
from soc.core.clock import LOCAL_ZONE, today
from soc.core.models import Severity, StoredFinding
from soc.findings.sla import sla_state
from soc.schemas.api import PortalItem
from soc.services import findings as findings_service
from soc.services.context import ServiceContext, ServiceError
from soc.store import FindingSort
from soc.store.query import MAX_PAGE

router = APIRouter(prefix="/exports", tags=["exports"])
MAX_ROWS = 100_000
"""An export holds at most this many rows; a larger one is refused (narrow it with filters)."""
CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TIME_FORMAT = "%d/%m/%Y %H:%M"
Cell = str | int | datetime | None


class CsvResponse(Response):
    """A CSV file (Starlette adds `; charset=utf-8`)."""

    media_type = CSV_TYPE


class XlsxResponse(Response):
    """An Excel workbook."""

    media_type = XLSX_TYPE


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(LOCAL_ZONE).strftime(TIME_FORMAT)
    return cell_text(value) if isinstance(value, str) else str(value)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """A CSV file: a UTF-8 BOM (so Excel reads Vietnamese), the header, then one line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def xlsx_bytes(title: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """An XLSX workbook of one sheet (written streaming: openpyxl's write-only mode), bold frozen header."""
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value: Cell, font: object | None = None) -> object:
        if isinstance(value, datetime):
            written = WriteOnlyCell(sheet, value.astimezone(LOCAL_ZONE).replace(tzinfo=None))
            written.number_format = "DD/MM/YYYY HH:MM"
            return written
        written = WriteOnlyCell(sheet, cell_text(value)[:XLSX_CELL_MAX] if isinstance(value, str) else value)
        if font is not None:
            written.font = font
        return written

    sheet.append([cell(name, bold) for name in header])
    for row in rows:
        sheet.append([cell(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _file(context: ServiceContext, name: str, kind: str, title: str, header: Sequence[str],
          rows: Sequence[Sequence[Cell]]) -> Response:
    filename = f"{name}-{today(context.clock).isoformat()}.{kind}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if kind == "csv":
        return CsvResponse(csv_bytes(header, rows), headers=disposition)
    return XlsxResponse(xlsx_bytes(title, header, rows), headers=disposition)


FINDING_HEADER = (
    "Mã phát hiện / Fingerprint", "Cổng hoặc đối tượng / Portal or subject", "Cơ quan / Agency",
    "Mã kiểm tra / Check", "Mức độ / Severity", "Trạng thái / Status", "Tình trạng SLA / SLA state",
    "Tiêu đề / Title (vi)", "Tiêu đề / Title (en)", "Bằng chứng / Evidence", "Chi tiết / Detail",
    "Khắc phục / Remediation (vi)", "Khắc phục / Remediation (en)", "Thấy lần đầu / First seen",
    "Thấy lần cuối / Last seen", "Đã khắc phục lúc / Resolved at", "Hạn xử lý / Due", "Giao cho / Assignee",
    "Ghi chú / Note", "Lần quét cuối / Last run",
)


def _finding_row(finding: StoredFinding, agency: str | None, now: datetime) -> list[Cell]:
    return [finding.fingerprint, finding.portal_url, agency, finding.check_id, finding.severity.value,
            finding.status.value, sla_state(finding, now).value, finding.title_vi, finding.title_en,
            finding.evidence, finding.detail, finding.remediation_vi, finding.remediation_en, finding.first_seen,
            finding.last_seen, finding.resolved_at, finding.due_at, finding.assignee, finding.status_note,
            finding.last_run_id]


def _finding_rows(request: Request, context: ServiceContext, filters: FindingFilters,
                  sort: FindingSort) -> list[list[Cell]]:
    """Every finding matching the filters (paged through the store), or ServiceError past MAX_ROWS."""
    owned = findings_service.owners(context, api_state(request).inventory())
    now = context.clock.now()
    rows: list[list[Cell]] = []
    cursor: str | None = None
    while True:
        page = findings_service.query_findings(context, filters.query(owned, now, sort, MAX_PAGE, cursor))
        rows += [_finding_row(f, findings_service.agency_of(f, owned), now) for f in page.items]
        if len(rows) > MAX_ROWS:
            raise ServiceError(f"more than {MAX_ROWS:,} findings match: narrow the export with filters "
                               "(status, severity, agency, portal, first_seen_after …)")
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


PORTAL_HEADER = (
    "Mã / ID", "Cổng / Portal", "Tên / Name", "Cơ quan / Agency", "Hệ thống / System", "Hạng TLS / TLS grade",
    "Hạng nếu được tin cậy / Grade if trusted", "Điểm / Score", "Lý do / Reasons",
    "Nhãn tín nhiệm hợp lệ / Trust label valid", "Lần quét cuối / Last scan",
    "Lần quét đầy đủ cuối / Last complete scan", "Mã lần quét / Run",
    *(f"Đang mở: {vi} / Open: {severity.value}" for severity, vi in (
        (Severity.CRITICAL, "nghiêm trọng"), (Severity.HIGH, "cao"), (Severity.MEDIUM, "trung bình"),
        (Severity.LOW, "thấp"), (Severity.INFO, "thông tin"))),
)
YES_NO = {True: "có / yes", False: "không / no", None: None}


def _portal_row(portal: PortalItem) -> list[Cell]:
    counts = portal.open_findings
    return [portal.id, portal.url, portal.name, portal.agency, portal.system, portal.grade,
            portal.grade_without_trust, portal.score, "; ".join(portal.grade_reasons), YES_NO[portal.label_valid],
            portal.last_scan, portal.last_complete_scan, portal.last_run_id, counts.critical, counts.high,
            counts.medium, counts.low, counts.info]


def _portal_rows(request: Request, context: ServiceContext, agency: str | None) -> list[list[Cell]]:
    return [_portal_row(portal) for portal in portal_items(context, api_state(request).inventory(), agency)]


FILE: dict[int | str, dict[str, Any]] = {200: {"description": "The file, as an attachment named with today's date."}}
Sort = Annotated[FindingSort, Query(description="Row order.")]
Agency = Annotated[str | None, Query(description="Only the portals of this agency (an inventory agency id).",
                                     max_length=64)]


@router.get("/findings.csv", response_class=CsvResponse, responses=FILE,
            summary="Xuất phát hiện (CSV) / Export findings (CSV)")
def findings_csv(request: Request, context: Reader, filters: Filters, sort: Sort = FindingSort.SEVERITY) -> Response:
    """Every finding matching the filters of GET /findings (no pages; at most 100,000 rows, else 422)."""
    rows = _finding_rows(request, context, filters, sort)
    return _file(context, "soc-findings", "csv", "Phát hiện", FINDING_HEADER, rows)


@router.get("/findings.xlsx", response_class=XlsxResponse, responses=FILE,
            summary="Xuất phát hiện (XLSX) / Export findings (XLSX)")
def findings_xlsx(request: Request, context: Reader, filters: Filters, sort: Sort = FindingSort.SEVERITY) -> Response:
    """Every finding matching the filters of GET /findings, as an Excel workbook (at most 100,000 rows)."""
    rows = _finding_rows(request, context, filters, sort)
    return _file(context, "soc-findings", "xlsx", "Phát hiện", FINDING_HEADER, rows)


@router.get("/portals.csv", response_class=CsvResponse, responses=FILE,
            summary="Xuất kết quả cổng (CSV) / Export portal results (CSV)")
def portals_csv(request: Request, context: Reader, agency: Agency = None) -> Response:
    """Every portal of the inventory with its latest grade, score and open findings by severity."""
    return _file(context, "soc-portals", "csv", "Cổng thông tin", PORTAL_HEADER, _portal_rows(request, context, agency))


@router.get("/portals.xlsx", response_class=XlsxResponse, responses=FILE,
            summary="Xuất kết quả cổng (XLSX) / Export portal results (XLSX)")
def portals_xlsx(request: Request, context: Reader, agency: Agency = None) -> Response:
    """Every portal of the inventory with its latest grade, score and open findings, as an Excel workbook."""
    return _file(context, "soc-portals", "xlsx", "Cổng thông tin", PORTAL_HEADER,
                 _portal_rows(request, context, agency))
