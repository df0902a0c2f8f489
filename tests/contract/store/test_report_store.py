"""The ReportStore contract: the archive of reports to leadership, kept as generated, on every backend."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from soc.core.clock import FixedClock
from soc.core.report_records import ArchivedReport, ReportKind, ReportLang
from soc.store import Backend

PDF = b"%PDF-1.7\n\x00\xff\xfe\x80\x81 binary \xe2\x28\xa1 not UTF-8\n%%EOF\n"


def report(key: str, kind: ReportKind, period: str, lang: ReportLang, created: datetime,
           pdf: bytes = PDF) -> ArchivedReport:
    return ArchivedReport(id=key, kind=kind, period=period, lang=lang, created_at=created, created_by="lan",
                          sha256=hashlib.sha256(pdf).hexdigest(), pdf_size=len(pdf), pdf=pdf,
                          html=f"<h1>Báo cáo {period}</h1>",
                          figures={"kpis": [{"id": "systems_approved", "value": 0.75}], "period": period})


def test_add_and_get_byte_exact(backend: Backend, clock: FixedClock) -> None:
    reports = backend.reports
    every_byte = bytes(range(256)) * 3
    kept = reports.add(report("r1", ReportKind.MONTHLY, "2026-11", "vi", clock.now(), pdf=every_byte))
    assert reports.get("r1") == kept
    got = reports.get("r1")
    assert got is not None and got.pdf == every_byte and len(got.pdf) == 768
    reports.add(report("r2", ReportKind.MONTHLY, "2026-11", "en", clock.now()))
    assert reports.get("r2").pdf == PDF  # type: ignore[union-attr]
    assert reports.get("r3") is None
    with pytest.raises(ValueError):
        reports.add(report("r1", ReportKind.QUARTERLY, "2026-Q4", "en", clock.now(), pdf=b"other"))
    assert reports.get("r1") == kept


def test_list_filters_order_and_limit(backend: Backend, clock: FixedClock) -> None:
    reports = backend.reports
    now = clock.now()
    kept = [
        report("a", ReportKind.MONTHLY, "2026-10", "vi", now),
        report("b", ReportKind.MONTHLY, "2026-11", "vi", now),
        report("c", ReportKind.MONTHLY, "2026-11", "en", now + timedelta(minutes=1)),
        report("d", ReportKind.QUARTERLY, "2026-Q3", "vi", now - timedelta(days=30)),
        report("e", ReportKind.MONTHLY, "2026-11", "vi", now + timedelta(minutes=2)),
    ]
    for item in kept:
        reports.add(item)
    summaries = reports.list()
    # newest first by period (text order: '2026-Q3' after '2026-11'), then by creation
    assert [s.id for s in summaries] == ["d", "e", "c", "b", "a"]
    assert summaries[1] == kept[4].summary()
    assert [s.id for s in reports.list(limit=2)] == ["d", "e"]
    assert [s.id for s in reports.list(kind=ReportKind.MONTHLY)] == ["e", "c", "b", "a"]
    assert [s.id for s in reports.list(period="2026-11")] == ["e", "c", "b"]
    assert [s.id for s in reports.list(kind=ReportKind.QUARTERLY, period="2026-11")] == []
    assert reports.list(period="2025-01") == []


def test_latest(backend: Backend, clock: FixedClock) -> None:
    reports = backend.reports
    now = clock.now()
    assert reports.latest(ReportKind.MONTHLY, "2026-11", "vi") is None
    reports.add(report("first", ReportKind.MONTHLY, "2026-11", "vi", now))
    newer = reports.add(report("second", ReportKind.MONTHLY, "2026-11", "vi", now + timedelta(hours=1)))
    reports.add(report("english", ReportKind.MONTHLY, "2026-11", "en", now + timedelta(hours=2)))
    reports.add(report("quarter", ReportKind.QUARTERLY, "2026-Q4", "vi", now + timedelta(hours=3)))
    assert reports.latest(ReportKind.MONTHLY, "2026-11", "vi") == newer
    assert reports.latest(ReportKind.MONTHLY, "2026-11", "en").id == "english"  # type: ignore[union-attr]
    assert reports.latest(ReportKind.QUARTERLY, "2026-11", "vi") is None
    assert reports.latest(ReportKind.QUARTERLY, "2026-Q4", "vi").pdf == PDF  # type: ignore[union-attr]
