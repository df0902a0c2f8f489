"""Generating a report to leadership and keeping it: the PDF and the same document as HTML, built from the
figures of `soc.services.reports`, archived with those figures and the PDF's SHA-256, audited `report.generate`.

A period that has ended has final figures: rebuilding it gives the same numbers (the archive keeps
them beside the document, to compare).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from pydantic_core import to_jsonable_python

from reports.monthly import kpi_percent
from soc.compliance.kpi import Kpi
from soc.core.report_records import ArchivedReport, ReportKind, ReportLang, period_bounds, quarter_of
from soc.inventory import Inventory
from soc.notify.mail import DeliveryReport, send_message
from soc.notify.report_mail import month_subject, quarter_subject, report_message, report_settings
from soc.services import reports
from soc.services.compliance import kpis
from soc.services.context import ServiceContext, ServiceError

LANGS: tuple[ReportLang, ...] = ("vi", "en")


def generate(context: ServiceContext, inventory: Inventory, kind: ReportKind, period: str,
             lang: ReportLang = "vi") -> ArchivedReport:
    """Build the report of `period` (`YYYY-MM` monthly, `YYYY-Qn` quarterly) in `lang`, archive it, audit it.

    ServiceError for a period written wrong, one not begun (a period not ended yet is reported to date, and
    says so), or an unknown language.
    """
    if lang not in LANGS:
        raise ServiceError(f"language {lang!r}: vi or en")
    try:
        first, _last = period_bounds(kind, period)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    if kind is ReportKind.MONTHLY:
        data = reports.monthly_data(context, inventory, first)
    else:
        data = reports.quarterly_data(context, inventory, first.year, quarter_of(first))
    pdf = reports.render_pdf(data, lang)
    report = ArchivedReport(
        id=secrets.token_hex(6), kind=kind, period=period, lang=lang, created_at=context.clock.now(),
        created_by=context.actor, sha256=hashlib.sha256(pdf).hexdigest(), pdf_size=len(pdf), pdf=pdf,
        html=reports.render_html(data, lang), figures=to_jsonable_python(reports.figures(data)))
    context.backend.reports.add(report)
    context.audit("report.generate", report.id, after={"kind": kind.value, "period": period, "lang": lang,
                                                       "sha256": report.sha256, "pdf_size": report.pdf_size})
    return report


_STATUS = {"met": "Đạt / Met", "not_met": "Chưa đạt / Not met", "no_data": "Chưa có số liệu / No data"}


def kpi_line(kpi: Kpi) -> str:
    """'Tiêu đề / Title: 12/20 (60,0%) · mục tiêu / target > 80% · Chưa đạt / Not met' for a rate (the report's
    own rounding); 'Title: 1 · mục tiêu / target ≥ 1 · Đạt / Met' for a count."""
    value = (f"{kpi.numerator}/{kpi.denominator} ({kpi_percent(kpi, 'vi')})" if kpi.kind == "rate"
             else str(kpi.numerator))
    return (f"- {kpi.title_vi} / {kpi.title_en}: {value} · mục tiêu / target {kpi.target} · "
            f"{_STATUS.get(kpi.status, kpi.status)}")


def summary_lines(context: ServiceContext, inventory: Inventory, kind: ReportKind, period: str) -> list[str]:
    """The e-mail's summary: the province's KPIs at the period's last day (the figures of `soc compliance
    --as-of`, which the report's are), each met or not, and how many are met."""
    _first, last = period_bounds(kind, period)
    province = kpis(context, inventory, last).province
    met = sum(kpi.status == "met" for kpi in province.kpis)
    return [f"Chỉ tiêu của tỉnh tại ngày {last.strftime('%d/%m/%Y')} / Province targets on {last.isoformat()}: "
            f"đạt {met}/{len(province.kpis)} / {met} of {len(province.kpis)} met",
            *(kpi_line(kpi) for kpi in province.kpis)]


def subject_of(report: ArchivedReport) -> str:
    """The e-mail subject, naming the period in Vietnamese."""
    first, _last = period_bounds(report.kind, report.period)
    if report.kind is ReportKind.MONTHLY:
        return month_subject(first.year, first.month)
    return quarter_subject(first.year, quarter_of(first))


def send_report(context: ServiceContext, inventory: Inventory, report: ArchivedReport,
                sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """E-mail an archived report (its PDF attached, the province's KPIs in the body) to the report recipients
    (`smtp.report_recipients`, else `smtp.recipients`), with the SMTP retries; audited `notify.report_email`.
    Delivery problems do not raise: the returned report says what failed."""
    settings = report_settings(context.settings.smtp)
    lines = summary_lines(context, inventory, report.kind, report.period)
    message = report_message(subject_of(report), lines, report.pdf, f"bao-cao-{report.period}-{report.lang}.pdf",
                             settings, context.clock.now(), report.id)
    delivery = send_message(message, settings, sleep=sleep)
    context.audit("notify.report_email", report.id, after={
        "delivered": delivery.delivered, "attempts": delivery.attempts, "recipients": len(delivery.recipients),
        "refused": len(delivery.refused), "period": report.period, "message_id": message["Message-ID"],
    }, note="; ".join(delivery.errors) or None)
    return delivery
