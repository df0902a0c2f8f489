"""Reports on the dashboard: the archive of the monthly and quarterly reports to leadership (each one's PDF, and
the same document as HTML, served by `/api/v1/reports/{id}.pdf|.html` on the same session) and, for operators
and admins, the form that generates one.

Generating goes through `soc.api.routes.reports.create` → `soc.services.report_archive` (the same figures,
archive and audit as the API and the scheduled job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from soc.api.problems import ApiError
from soc.api.routes.reports import create, item
from soc.core.clock import today
from soc.core.report_records import ReportKind, month_period, period_bounds, previous_month
from soc.schemas.reports import ReportCreate
from soc.services.context import ServiceContext
from soc.services.users import Permission, Principal
from soc.web.auth import acting, check_form
from soc.web.pages.say import say
from soc.web.templating import render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
NOTICES = {"created": N_("The report is generated and archived.")}
PAGE_WORDS = (N_("monthly"), N_("quarterly"))
"""Words the templates translate from data (`| t`), and messages given them as values."""


@dataclass(frozen=True)
class GenerateForm:
    """What the generate form was sent with (shown back when it is refused)."""

    kind: str = ReportKind.MONTHLY.value
    period: str = ""
    lang: str = "vi"


def _page(request: Request, who: Principal, context: ServiceContext, *, form: GenerateForm | None = None,
          problems: tuple[str, ...] = (), status_code: int = 200) -> Response:
    reports = [item(report) for report in context.backend.reports.list(limit=500)]
    notice = request.query_params.get("notice")
    last_month = month_period(previous_month(today(context.clock)))
    return render(request, "reports.html", who, status_code=status_code, reports=reports, problems=problems,
                  form=form or GenerateForm(period=last_month),
                  notice=say(request, NOTICES[notice]) if notice in NOTICES else None)


@router.get("/reports")
def reports_page(request: Request) -> Response:
    """Every archived report, newest period first, with its PDF and HTML; the generate form."""
    who, context = acting(request, Permission.READ)
    return _page(request, who, context)


@router.post("/reports")
def generate(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
             kind: Annotated[str, Form(max_length=16)] = ReportKind.MONTHLY.value,
             period: Annotated[str, Form(max_length=16)] = "",
             lang: Annotated[str, Form(max_length=8)] = "vi") -> Response:
    """Generate and archive the report of one period; back to the list, which shows it first."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.SCAN)
    form = GenerateForm(kind=kind, period=period.strip(), lang=lang)
    try:
        period_bounds(ReportKind(kind), form.period)  # its message says how a period is written
        body = ReportCreate.model_validate({"kind": kind, "period": form.period, "lang": lang})
    except ValidationError as exc:
        problems = tuple(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        return _page(request, who, context, form=form, problems=problems, status_code=400)
    except ValueError as exc:
        return _page(request, who, context, form=form, problems=(str(exc),), status_code=400)
    try:
        create(request, context, body)
    except ApiError as exc:
        return _page(request, who, context, form=form, problems=(exc.detail,), status_code=400)
    return RedirectResponse("/reports?notice=created", status_code=303)
