"""The archive of generated reports on SQLite."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Engine, insert, select

from soc.core.report_records import ArchivedReport, ReportKind, ReportSummary
from soc.store.sqlite.schema import BEGIN_OPTION, reports

_SUMMARY_COLUMNS = [reports.c[name] for name in ReportSummary.model_fields]


class SqliteReportStore:
    """The `ReportStore` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})

    def add(self, report: ArchivedReport) -> ArchivedReport:
        """Keep a generated report (ValueError: the id is taken)."""
        with self._writer.begin() as conn:
            if conn.execute(select(reports.c.id).where(reports.c.id == report.id)).first():
                raise ValueError(f"report {report.id} already exists")
            conn.execute(insert(reports).values(report.model_dump(mode="python") | {"kind": report.kind.value}))
        return report

    def get(self, report_id: str) -> ArchivedReport | None:
        """One report with its PDF, HTML and figures, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(reports).where(reports.c.id == report_id)).mappings().first()
        return None if row is None else _report(row)

    def list(self, kind: ReportKind | None = None, period: str | None = None,
             limit: int = 200) -> builtins.list[ReportSummary]:
        """Reports newest first (by period, then by creation), optionally of one kind and one period."""
        stmt = select(*_SUMMARY_COLUMNS)
        if kind is not None:
            stmt = stmt.where(reports.c.kind == kind.value)
        if period is not None:
            stmt = stmt.where(reports.c.period == period)
        stmt = stmt.order_by(reports.c.period.desc(), reports.c.created_at.desc(), reports.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [ReportSummary.model_validate(dict(row)) for row in conn.execute(stmt).mappings()]

    def latest(self, kind: ReportKind, period: str, lang: str) -> ArchivedReport | None:
        """The newest report of one kind, period and language, or None."""
        stmt = (select(reports).where(reports.c.kind == kind.value, reports.c.period == period,
                                      reports.c.lang == lang)
                .order_by(reports.c.created_at.desc(), reports.c.id.desc()).limit(1))
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else _report(row)


def _report(row: Any) -> ArchivedReport:
    return ArchivedReport.model_validate(dict(row))
