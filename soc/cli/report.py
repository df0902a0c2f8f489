"""`soc report monthly|quarterly`: the compliance report to the province's leaders, as a PDF or HTML file."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reports.monthly import ReportData
from soc.cli.common import DbOption, InventoryOption, console, fail, load_inventory_or_fail, service_context, shown
from soc.services import reports as report_service

report_app = typer.Typer(help="Báo cáo định kỳ / Periodic compliance reports.", no_args_is_help=True)
MONTH = re.compile(r"(\d{4})-(\d{2})")
QUARTER = re.compile(r"(\d{4})-Q([1-4])", re.IGNORECASE)


class Lang(StrEnum):
    """The report's language."""

    VI = "vi"
    EN = "en"


class Format(StrEnum):
    """The file written."""

    PDF = "pdf"
    HTML = "html"


LangOption = Annotated[Lang, typer.Option("--lang", help="Tiếng Việt (mặc định) / English.")]
FormatOption = Annotated[Format, typer.Option("--format", help="pdf (default) or html.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="File to write (default: bao-cao-<period>.<format>).")]


def parse_month(text: str) -> date:
    """'2026-11' → 2026-11-01; exits 2 naming the expected form otherwise."""
    match = MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1970:
        fail(f"--month {text!r}: viết dạng YYYY-MM, ví dụ 2026-11 / write it as YYYY-MM, e.g. 2026-11")
    return date(int(match[1]), int(match[2]), 1)


def parse_quarter(text: str) -> tuple[int, int]:
    """'2026-Q4' → (2026, 4); exits 2 otherwise."""
    match = QUARTER.fullmatch(text.strip())
    if match is None or int(match[1]) < 1970:
        fail(f"--quarter {text!r}: viết dạng YYYY-Qn, ví dụ 2026-Q4 / write it as YYYY-Qn, e.g. 2026-Q4")
    return int(match[1]), int(match[2])


def _write(data: ReportData, lang: Lang, kind: Format, out: Path | None, name: str) -> None:
    path = out or Path(f"bao-cao-{name}.{kind.value}")
    if kind is Format.PDF:
        path.write_bytes(report_service.render_pdf(data, lang.value))
    else:
        path.write_text(report_service.render_html(data, lang.value), encoding="utf-8")
    met = sum(k.status == "met" for k in data.current.province.kpis)
    console.print(f"{shown(path)}: {met}/{len(data.current.province.kpis)} chỉ tiêu đạt / targets met "
                  f"({data.start:%d/%m/%Y}–{data.end:%d/%m/%Y})")


@report_app.command("monthly")
def monthly(
    ctx: typer.Context,
    month: Annotated[str, typer.Option("--month", help="YYYY-MM, e.g. 2026-11.")],
    lang: LangOption = Lang.VI, kind: FormatOption = Format.PDF, out: OutOption = None,
    db: DbOption = None, inventory: InventoryOption = None,
) -> None:
    """Báo cáo tháng / The monthly report (KPIs as of the month's last day)."""
    first = parse_month(month)
    inv = load_inventory_or_fail(inventory)
    with service_context(ctx, db, writes=False) as context:
        data = report_service.monthly_data(context, inv, first)
    _write(data, lang, kind, out, f"{first:%Y-%m}")


@report_app.command("quarterly")
def quarterly(
    ctx: typer.Context,
    quarter: Annotated[str, typer.Option("--quarter", help="YYYY-Qn, e.g. 2026-Q4.")],
    lang: LangOption = Lang.VI, kind: FormatOption = Format.PDF, out: OutOption = None,
    db: DbOption = None, inventory: InventoryOption = None,
) -> None:
    """Báo cáo quý / The quarterly report to the provincial People's Committee."""
    year, number = parse_quarter(quarter)
    inv = load_inventory_or_fail(inventory)
    with service_context(ctx, db, writes=False) as context:
        data = report_service.quarterly_data(context, inv, year, number)
    _write(data, lang, kind, out, f"{year}-q{number}")
