"""The compliance page: the province's KPIs with their members, a 12-month trend, one KPI by agency (bar chart and
table), the register (filtered by agency, level, status), anti-malware coverage, and the spreadsheet import.

The import is the CLI's (`soc systems import`, `soc coverage import`): the same services, so the same validation
and the same all-or-nothing rule; a refused file lists every problem on the page and changes nothing. The upload
is bounded before it is read (its declared length) and while it is read (`settings.sheet_max_bytes`).
"""

from __future__ import annotations

import calendar
import math
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from soc.api.auth import api_state
from soc.charts import Bar, Point, bar_chart, line_chart, sparkline
from soc.compliance.kpi import ComplianceReport, Kpi, TargetSpec, plan_for
from soc.compliance.models import ApprovalStatus, SystemRecord
from soc.core.clock import today
from soc.core.errors import InputError, ProblemsError
from soc.core.untrusted import visible
from soc.inventory import Inventory
from soc.services import compliance as compliance_service
from soc.services import register as register_service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission, Principal
from soc.web import i18n
from soc.web.auth import acting, check_form
from soc.web.i18n import gettext as _
from soc.web.pages.portals import agency_names
from soc.web.templating import language_of, render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
FLASH = "compliance_import"
"""Session key of the last import's summary, shown once by the page the import redirects to."""
DEFAULT_KPI = "systems_approved"
MONTHS = 12
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9998, 12, 30)
UPLOAD_SLACK = 64 * 1024
"""What a multipart body may hold beyond the file itself (boundaries, the other fields)."""
CHUNK = 64 * 1024
Importer = Callable[[ServiceContext, Path, Inventory, "datetime | None"], "register_service.ImportResult[Any]"]
IMPORTERS: dict[str, Importer] = {"systems": register_service.import_systems,
                                  "coverage": register_service.import_coverage}
WORDS = (
    N_("not_started"), N_("dossier_drafted"), N_("submitted"), N_("under_appraisal"), N_("appraised"),
    N_("approved"), N_("returned"), N_("rejected"), N_("partly"),
    N_("the date given in the form"), N_("the file's 'as of' date"), N_("the import date"),
)
BASIS = {"option": "the date given in the form", "file": "the file's 'as of' date", "import": "the import date"}


@dataclass(frozen=True)
class RegisterFilters:
    """The register's filters, from the query string (empty: all)."""

    agency: str = ""
    level: int | None = None
    status: ApprovalStatus | None = None
    as_of: date | None = None

    def keeps(self, record: SystemRecord) -> bool:
        """The record passes the level and status filters (the agency is chosen when reading the register)."""
        level = record.approved_level or record.proposed_level
        return ((self.level is None or level == self.level)
                and (self.status is None or record.status is self.status))


def register_filters(inventory: Inventory, agency: str | None, level: str | None, status: str | None,
                     as_of: str | None) -> tuple[RegisterFilters, list[str]]:
    """The filters asked for, and a message for each one that cannot be used (that filter is then left out)."""
    problems: list[str] = []
    if agency and agency not in {a.id for a in inventory.agencies}:
        problems.append(_("Agency: not an agency of the inventory."))
        agency = ""
    number = None
    if level:
        if level.isdigit() and 1 <= int(level) <= 5:
            number = int(level)
        else:
            problems.append(_("Level: choose a level from 1 to 5."))
    state = None
    if status:
        try:
            state = ApprovalStatus(status)
        except ValueError:
            problems.append(_("Status: not an approval status."))
    day = None
    if as_of:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            problems.append(_("As of: write the date as YYYY-MM-DD."))
        else:
            if not FIRST_DAY <= day <= LAST_DAY:
                problems.append(_("As of: the date is out of range."))
                day = None
    return RegisterFilters(agency or "", number, state, day), problems


def month_ends(day: date, months: int = MONTHS) -> list[date]:
    """The last day of each of the `months - 1` months before `day`'s month, then `day` itself, oldest first."""
    ends: list[date] = []
    year, month = day.year, day.month
    for _month in range(months - 1):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        ends.append(date(year, month, calendar.monthrange(year, month)[1]))
    return [*reversed(ends), day]


def monthly_kpis(context: ServiceContext, inventory: Inventory, day: date, months: int = MONTHS,
                 latest: ComplianceReport | None = None) -> list[tuple[date, dict[str, Kpi]]]:
    """The province's KPIs at the end of each of the last `months` months (the last one: `day`, from `latest` when
    given), by KPI id; a month with no plan in force has none. One `kpis` call per month: about 10 ms each on the
    example inventory (0.12 s for the 12), as the service computes every agency's scope too."""
    trend: list[tuple[date, dict[str, Kpi]]] = []
    for end in month_ends(day, months):
        try:
            report = latest if latest is not None and end == latest.as_of else compliance_service.kpis(
                context, inventory, end)
        except ServiceError:  # no plan or rule set in force then
            trend.append((end, {}))
            continue
        trend.append((end, {kpi.id: kpi for kpi in report.province.kpis}))
    return trend


def _value(kpi: Kpi | None) -> float | None:
    """What a chart draws for a KPI: its percentage (a rate), its count, or nothing."""
    if kpi is None:
        return None
    return kpi.percent if kpi.kind == "rate" else float(kpi.numerator)


def _shown(kpi: Kpi) -> str:
    return i18n.percent(kpi.percent, 1) if kpi.kind == "rate" else i18n.number(kpi.numerator)


def _title(kpi: Kpi, language: str) -> str:
    return kpi.title_vi if language == "vi" else kpi.title_en


def _limits(spec: TargetSpec | None, values: list[float | None]) -> tuple[float, float | None]:
    """The chart's top and target line of one KPI: 0–100 % for a rate, else up to a little over the largest count."""
    if spec is None or spec.kind == "rate":
        return 100.0, None if spec is None else float(spec.percent or 0)
    largest = max([v for v in values if v is not None] + [float(spec.count or 0)], default=1.0)
    return 4.0 * math.ceil(max(largest * 1.25, 1.0) / 4), float(spec.count or 0)  # whole ticks at each quarter


def trend_charts(trend: list[tuple[date, dict[str, Kpi]]], report: ComplianceReport,
                 language: str) -> list[tuple[Kpi, str]]:
    """One line chart per KPI of the province over the months (the target drawn as a dashed line)."""
    specs = {target.id: target for target in plan_for(report.as_of).targets}
    charts = []
    for kpi in report.province.kpis:
        points = [Point(f"{end:%m/%Y}", _value(kpis.get(kpi.id)),
                        _shown(kpis[kpi.id]) if kpi.id in kpis and _value(kpis[kpi.id]) is not None else None)
                  for end, kpis in trend]
        top, target = _limits(specs.get(kpi.id), [p.value for p in points])
        unit = "%" if kpi.kind == "rate" else ""
        chart = line_chart(points, title=_("%(kpi)s, end of each month") % {"kpi": _title(kpi, language)},
                           maximum=top, target=target, target_text=f"{_('target')} {kpi.target}", unit=unit,
                           tone="ok" if kpi.status == "met" else "bad" if kpi.status == "not_met" else "neutral")
        charts.append((kpi, chart))
    return charts


def sparklines(context: ServiceContext, inventory: Inventory, day: date | None = None) -> dict[str, str]:
    """KPI id → a sparkline of the province's figure at the end of each of the last 12 months (for the overview's
    tiles); the page's language must be set (`i18n.use`)."""
    trend = monthly_kpis(context, inventory, day or today(context.clock))
    lines: dict[str, str] = {}
    for kpi_id, latest in trend[-1][1].items():
        values = [_value(kpis.get(kpi_id)) for _end, kpis in trend]
        top = 100.0 if latest.kind == "rate" else max([v for v in values if v is not None] + [1.0])
        title = _("%(kpi)s, end of each month") % {"kpi": _title(latest, i18n.current())}
        lines[kpi_id] = sparkline(values, title=title, maximum=top, tone="ok" if latest.status == "met" else "bad")
    return lines


def agency_chart(report: ComplianceReport, kpi_id: str, names: dict[str, str], language: str) -> str:
    """One KPI for every agency, as horizontal bars (green met, red not met, '—' nothing to measure)."""
    spec = next((t for t in plan_for(report.as_of).targets if t.id == kpi_id), None)
    bars, title = [], kpi_id
    for scope in report.agencies:
        kpi = next((k for k in scope.kpis if k.id == kpi_id), None)
        if kpi is None:
            continue
        title = _title(kpi, language)
        value = None if kpi.status == "no_data" else _value(kpi)
        bars.append(Bar(names.get(scope.id, scope.name), value, None if value is None else _shown(kpi),
                        tone="ok" if kpi.status == "met" else "bad"))
    top, target = _limits(spec, [bar.value for bar in bars])
    return bar_chart(bars, title=_("%(kpi)s, by agency") % {"kpi": title}, maximum=top, target=target,
                     target_text=_("target") + (f" {spec.label}" if spec else ""),
                     unit="%" if spec is None or spec.kind == "rate" else "")


def _flash(request: Request) -> dict[str, Any] | None:
    """The summary of the import that just redirected here (shown once)."""
    summary = request.session.pop(FLASH, None)
    if not isinstance(summary, dict):
        return None
    if isinstance(summary.get("effective"), str):
        summary["effective"] = datetime.fromisoformat(summary["effective"])
    summary["basis"] = BASIS.get(str(summary.get("basis")), "the import date")
    return summary


def compliance_view(request: Request, who: Principal, context: ServiceContext, *, agency: str | None = None,
                    level: str | None = None, status: str | None = None, as_of: str | None = None,
                    kpi: str | None = None, status_code: int = 200, **importing: Any) -> Response:
    """The page (also with the problems of a refused import, `importing`)."""
    language = language_of(request)
    i18n.use(language)
    inventory = api_state(request).inventory()
    values: dict[str, Any] = {"inventory": inventory, "kinds": list(IMPORTERS), "kind": "systems",
                              "import_problems": [], "effective": "", "flash": None}
    values |= importing
    if inventory is None:
        return render(request, "compliance.html", who, status_code=status_code, **values)
    filters, problems = register_filters(inventory, agency, level, status, as_of)
    day = filters.as_of or today(context.clock)
    names = agency_names(inventory, language)
    report: ComplianceReport | None = None
    try:
        report = compliance_service.kpis(context, inventory, day)
    except ServiceError as exc:
        problems.append(str(exc))
    kpi_ids = [k.id for k in report.province.kpis] if report else []
    chosen = kpi if kpi in kpi_ids else DEFAULT_KPI
    systems = [r for r in register_service.systems_as_of(context, day, filters.agency or None) if filters.keeps(r)]
    values |= {
        "filters": filters, "problems": problems, "day": day, "names": names, "report": report, "chosen": chosen,
        "systems": systems, "statuses": [s.value for s in ApprovalStatus],
        "coverage": register_service.coverage_as_of(context, day, filters.agency or None),
        "bars": agency_chart(report, chosen, names, language) if report else "",
        "trend": trend_charts(monthly_kpis(context, inventory, day, latest=report), report, language) if report else [],
        "flash": _flash(request) if request.query_params.get("imported") else None,
    }
    return render(request, "compliance.html", who, status_code=status_code, **values)


@router.get("/compliance")
def compliance_page(request: Request, agency: Annotated[str | None, Query(max_length=64)] = None,
                    level: Annotated[str | None, Query(max_length=8)] = None,
                    status: Annotated[str | None, Query(max_length=40)] = None,
                    as_of: Annotated[str | None, Query(max_length=10)] = None,
                    kpi: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """The register, the KPIs, coverage, the charts, and (for operators) the import form."""
    who, context = acting(request, Permission.READ)
    return compliance_view(request, who, context, agency=agency, level=level, status=status, as_of=as_of, kpi=kpi)


def upload_name(filename: str | None) -> str:
    """The uploaded file's own name, made safe for a file of ours (it names the file in the problems, the audit log
    and, by its extension, the format): letters, digits, '.', '-', '_' and spaces, at most 100 characters."""
    name = PurePosixPath(unicodedata.normalize("NFC", visible(filename or "")).replace("\\", "/")).name
    name = "".join(char if char.isalnum() or char in "._- " else "_" for char in name)[-100:].strip(" .")
    return name or "upload"


async def _saved(upload: UploadFile, target: Path, limit: int) -> bool:
    """Copy the upload to `target`, refusing (False) as soon as it is over `limit` bytes."""
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                return False
            out.write(chunk)
    return True


def _summary(kind: str, name: str, result: register_service.ImportResult[Any]) -> dict[str, Any]:
    """What the page shows after an import: small, since it travels in the session cookie."""
    changes = result.changes
    return {"kind": kind, "file": name, "added": len(changes.added), "changed": len(changes.changed),
            "unchanged": len(changes.unchanged), "fields": len(changes.fields), "backdated": len(changes.backdated),
            "keys_added": [key[:40] for key in changes.added[:8]],
            "keys_changed": [key[:40] for key in changes.changed[:8]],
            "effective": result.effective.isoformat() if result.effective else None, "basis": result.effective_basis,
            "warnings": [warning[:160] for warning in result.sheet.warnings[:3]],
            "warning_count": len(result.sheet.warnings),
            "evaluation_error": (result.evaluation_error or "")[:200] or None,
            "run": result.evaluation.id if result.evaluation else None}


def _field(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/compliance/import")
async def import_sheet(request: Request) -> Response:
    """Import a register or coverage spreadsheet (operators): all of it or nothing, every problem listed."""
    who, context = await run_in_threadpool(acting, request, Permission.IMPORT)
    i18n.use(language_of(request))
    limit = context.settings.sheet_max_bytes
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > limit + UPLOAD_SLACK:  # refused before a byte of it is read
        message = _("The file is larger than the %(size)s bytes a spreadsheet may have.") % {
            "size": i18n.number(limit)} if declared.isdigit() else _("The upload must state its length.")
        return await run_in_threadpool(compliance_view, request, who, context, status_code=413,
                                       import_problems=[message])
    async with request.form(max_files=1, max_fields=8) as form:
        check_form(request, _field(form, "csrf_token"))
        kind, effective, upload = _field(form, "kind"), _field(form, "effective"), form.get("file")
        problems: list[str] = []
        importer = IMPORTERS.get(kind)
        if importer is None:
            problems.append(_("Kind: choose the register of systems or the anti-malware coverage."))
        moment = None
        if effective:
            try:
                moment = datetime.combine(date.fromisoformat(effective), time())
            except ValueError:
                problems.append(_("Effective date: write the date as YYYY-MM-DD."))
        if not isinstance(upload, UploadFile) or not upload.filename:
            problems.append(_("File: choose the spreadsheet (XLSX or CSV) to import."))
        inventory = api_state(request).inventory()
        if inventory is None:
            problems.append(_("No inventory is configured: start the service with --inventory FILE or SOC_INVENTORY."))
        if problems or importer is None or inventory is None or not isinstance(upload, UploadFile):
            return await run_in_threadpool(compliance_view, request, who, context, status_code=422,
                                           import_problems=problems, kind=kind, effective=effective)
        name = upload_name(upload.filename)
        with tempfile.TemporaryDirectory(prefix="soc-import-") as directory:
            path = Path(directory) / name
            if not await _saved(upload, path, limit):
                problems.append(_("The file is larger than the %(size)s bytes a spreadsheet may have.") % {
                    "size": i18n.number(limit)})
            else:
                try:
                    result = await run_in_threadpool(importer, context, path, inventory, moment)
                except ProblemsError as exc:
                    problems += exc.problems
                except InputError as exc:
                    problems.append(str(exc))
        if problems:
            return await run_in_threadpool(compliance_view, request, who, context, status_code=422,
                                           import_problems=problems, kind=kind, effective=effective)
    request.session[FLASH] = _summary(kind, name, result)
    return RedirectResponse("/compliance?imported=1#import-result", status_code=303)
