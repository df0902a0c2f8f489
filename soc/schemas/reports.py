"""The reports part of the REST API (`/api/v1/reports`): the archive of generated reports to leadership and the
request that generates one."""

from __future__ import annotations

import re
from typing import Self

from pydantic import BaseModel, Field, model_validator

from soc.core.report_records import (
    MONTH_PATTERN,
    PERIOD_PATTERN,
    QUARTER_PATTERN,
    ReportKind,
    ReportLang,
    ReportSummary,
)
from soc.schemas.api import Request


class ReportCreate(Request):
    """Generate (and archive) the report of one period that has ended."""

    kind: ReportKind = ReportKind.MONTHLY
    period: str = Field(min_length=6, max_length=8, pattern=PERIOD_PATTERN, examples=["2026-11"],
                        description="YYYY-MM for a monthly report, YYYY-Qn for a quarterly one (e.g. 2026-11, "
                        "2026-Q4).")
    lang: ReportLang = "vi"

    @model_validator(mode="after")
    def _period_of_kind(self) -> Self:
        pattern = MONTH_PATTERN if self.kind is ReportKind.MONTHLY else QUARTER_PATTERN
        if not re.fullmatch(pattern, self.period):
            shape = "YYYY-MM" if self.kind is ReportKind.MONTHLY else "YYYY-Qn"
            raise ValueError(f"period {self.period!r}: a {self.kind.value} report's period is {shape}")
        return self


class ReportItem(ReportSummary):
    """An archived report, with where to get it."""

    pdf_url: str
    html_url: str


class ReportList(BaseModel):
    """Archived reports, newest period first."""

    items: list[ReportItem]
