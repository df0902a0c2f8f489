"""What the store keeps of the reports to leadership: each generated document with the figures it was built from.

A period is written `YYYY-MM` for a monthly report and `YYYY-Qn` for a quarterly one; `period_bounds` reads it.
An archived report is never changed: generating the same period again adds a new one (the latest is served).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ReportLang = Literal["vi", "en"]
MONTH_PATTERN = r"^20\d\d-(0[1-9]|1[0-2])$"
QUARTER_PATTERN = r"^20\d\d-Q[1-4]$"
PERIOD_PATTERN = r"^20\d\d-(0[1-9]|1[0-2]|Q[1-4])$"
"""Either kind's period, in this century (the plans start in 2024)."""


class ReportKind(StrEnum):
    """Which report."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class ReportSummary(BaseModel):
    """An archived report without its content: what a listing shows."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=32)
    kind: ReportKind
    period: str = Field(min_length=6, max_length=8)
    lang: ReportLang
    created_at: datetime
    created_by: str = Field(max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Of the PDF: what a recipient compares the attachment with."""
    pdf_size: int = Field(ge=0)


class ArchivedReport(ReportSummary):
    """A generated report as delivered: the PDF, the same document as HTML, and the figures behind it."""

    pdf: bytes
    html: str
    figures: dict[str, Any]

    def summary(self) -> ReportSummary:
        """The listing entry of this report."""
        return ReportSummary.model_validate(self.model_dump(include=set(ReportSummary.model_fields)))


def month_period(month: date) -> str:
    """'2026-11' for any day of November 2026."""
    return f"{month.year:04d}-{month.month:02d}"


def quarter_period(year: int, quarter: int) -> str:
    """'2026-Q4'."""
    return f"{year:04d}-Q{quarter}"


def quarter_of(day: date) -> int:
    """1…4."""
    return (day.month - 1) // 3 + 1


def period_bounds(kind: ReportKind, period: str) -> tuple[date, date]:
    """The first and the last day of a period (ValueError: not written as its kind's periods are)."""
    if kind is ReportKind.MONTHLY:
        if not re.fullmatch(MONTH_PATTERN, period):
            raise ValueError(f"{period!r}: a monthly report's period is YYYY-MM (e.g. 2026-11)")
        first = date(int(period[:4]), int(period[5:7]), 1)
        months = 1
    else:
        if not re.fullmatch(QUARTER_PATTERN, period):
            raise ValueError(f"{period!r}: a quarterly report's period is YYYY-Qn (e.g. 2026-Q4)")
        first = date(int(period[:4]), 3 * (int(period[6]) - 1) + 1, 1)
        months = 3
    year, month = divmod(first.month - 1 + months, 12)
    return first, date(first.year + year, month + 1, 1) - timedelta(days=1)


def previous_month(day: date) -> date:
    """The first day of the month before the one `day` is in."""
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1)
