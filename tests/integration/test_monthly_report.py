"""The monthly / quarterly report: built from the store with the services, its PDF's KPI figures identical to
`soc compliance --as-of <last day> --json`, rebuilt the same, in Vietnamese and English, rendered to PNG pages."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner, Result

from drills.responses import ResponsesFile
from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.models import Finding, FindingStatus, Observation, PortalScan, Severity
from soc.core.observations import CertificateInfo, TlsObservation
from soc.core.settings import Settings
from soc.inventory import Inventory, load_inventory
from soc.services import findings as findings_service
from soc.services import register as register_service
from soc.services import reports
from soc.services.context import ServiceContext, ServiceError, open_context
from soc.services.drills import run_scripted
from soc.services.sla import apply_deadlines

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
INVENTORY = EXAMPLES / "dongnai.yaml"
QLVB = REPO / "playbooks" / "qlvb-ransomware.yaml"
WWW, STP, DVC = "https://www.dongnai.gov.vn/", "https://stp.dongnai.gov.vn/", "https://dichvucong.dongnai.gov.vn/"
GENERATED = datetime(2026, 12, 2, 9, 0, tzinfo=LOCAL_ZONE)
"""When the November report is made."""


def _at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_ZONE)


def _certificate(not_after: datetime) -> CertificateInfo:
    return CertificateInfo(subject="CN=www.dongnai.gov.vn", issuer="CN=Test CA", serial="01", sha256="ab" * 32,
                           not_before=not_after - timedelta(days=365), not_after=not_after, key_type="RSA",
                           key_size=2048, signature_hash="sha256", self_signed=False, pem="-")


def _scan(context: ServiceContext, url: str, grade: str, label: bool, findings: list[Finding],
          expires: datetime) -> None:
    """One complete assessment of `url` at the clock's moment (TLS, HTTP and label answered)."""
    store, at = context.backend.findings, context.clock.now()
    host = url.split("/")[2]
    tls = TlsObservation(portal_url=url, host=host, port=443, address=None, observed_at=at,
                         chain=[_certificate(expires)])
    observations = [Observation(collector="tls", portal_url=url, observed_at=at, complete=True,
                                data=tls.model_dump(mode="json")),
                    Observation(collector="http", portal_url=url, observed_at=at, complete=True),
                    Observation(collector="label", portal_url=url, observed_at=at, complete=True)]
    run = store.begin_run("test", 1)
    store.record_portal(run.id, url, observations, findings,
                        PortalScan(run_id=run.id, portal_url=url, recorded_at=at,
                                   collectors={"tls": True, "http": True, "label": True}, tls_grade=grade,
                                   score=90 if grade.startswith("A") else 40, label_valid=label))
    store.finish_run(run.id, complete=True)


def _finding(url: str, check: str, severity: Severity, title: str) -> Finding:
    return Finding(portal_url=url, check_id=check, severity=severity, title_vi=title, title_en=title + " (en)",
                   evidence="test")


def build_world(db: Path, scratch: Path) -> tuple[FixedClock, Inventory]:
    """The example register from 1 October and coverage from 31 October, DVC approved on 5 November, portal
    assessments in October and November (grades that move, findings, an expiring certificate), a drill on
    20 November."""
    inventory = load_inventory(INVENTORY)
    clock = FixedClock(_at(date(2026, 10, 1)))
    with open_context(Settings(db=db), clock, "tester") as context:
        register_service.import_systems(context, EXAMPLES / "he-thong-thong-tin.csv", inventory, _at(date(2026, 10, 1)))
        clock.advance(timedelta(days=19))  # 20/10
        _scan(context, WWW, "B", True, [], _at(date(2027, 6, 1)))
        _scan(context, STP, "A", True, [], _at(date(2027, 6, 1)))
        clock.advance(timedelta(days=21))  # 10/11
        text = (EXAMPLES / "he-thong-thong-tin.csv").read_text(encoding="utf-8")
        approved = text.replace("vpubnd,3,,Đã trình,,,Có,Có,,", "vpubnd,3,3,Đã phê duyệt,(ví dụ) 9/QĐ-UBND,05/11/2026,"
                                                                 "Có,Có,,")
        assert approved != text
        november = scratch / "he-thong-thong-tin-11.csv"
        november.write_text(approved, encoding="utf-8")
        register_service.import_systems(context, november, inventory, _at(date(2026, 11, 10)))
        register_service.import_coverage(context, EXAMPLES / "phong-chong-ma-doc.csv", inventory, None)  # 31/10
        clock.advance(timedelta(days=10))  # 20/11
        _scan(context, WWW, "A", True, [], _at(date(2026, 12, 15)))
        _scan(context, STP, "F", False, [_finding(STP, "tls.protocol_tls10", Severity.HIGH, "Còn bật TLS 1.0")],
              _at(date(2027, 6, 1)))
        _scan(context, DVC, "B", True, [_finding(DVC, "http.no_hsts", Severity.CRITICAL, "Lỗ hổng nghiêm trọng"),
                                        _finding(DVC, "http.server_banner", Severity.HIGH, "Lộ phiên bản máy chủ")],
              _at(date(2027, 6, 1)))
        apply_deadlines(context, inventory)
        banner = next(f for f in context.backend.findings.list_findings(portal_url=DVC)
                      if f.check_id == "http.server_banner")
        findings_service.triage(context, banner.fingerprint, FindingStatus.RISK_ACCEPTED, "Chờ nâng cấp máy chủ",
                                expires=date(2027, 3, 1), approver="Giám đốc Sở")
        run_scripted(context, QLVB, ResponsesFile(), drill_date=date(2026, 11, 20))
    clock.advance(GENERATED - clock.now())
    return clock, inventory


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FixedClock, Inventory]:
    scratch = tmp_path_factory.mktemp("monthly")
    db = scratch / "soc.db"
    clock, inventory = build_world(db, scratch)
    return db, clock, inventory


def run(clock: FixedClock, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliState(clock))


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def one_decimal(numerator: int, denominator: int, separator: str) -> str:
    value = (Decimal(100 * numerator) / Decimal(denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{value}".replace(".", separator) + "%"


SUMMARY_ROW = re.compile(r"(?m)^(\S+) (\d+)/(\d+) ([>≥] \d+%?) ")
"""A row of the summary table as pypdf reads it: value, numerator/denominator, target, then status and change."""


def summary_rows(text: str) -> list[tuple[str, int, int, str]]:
    """The summary table's rows in order: the table between section 1's heading and the note under it."""
    start = text.index("1. ")
    end = min(i for i in (text.find("Tỷ lệ làm tròn", start), text.find("Rates rounded", start)) if i > 0)
    return [(m[1], int(m[2]), int(m[3]), m[4]) for m in SUMMARY_ROW.finditer(text[start:end])]


def screenshots(pdf: bytes, name: str) -> list[Path]:
    directory = Path(os.environ.get("SOC_SCREENSHOTS") or REPO / ".soc" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"{name}.pdf"
    source.write_bytes(pdf)
    for old in directory.glob(f"{name}-[0-9]*.png"):
        old.unlink()
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(source), str(directory / name)], check=True, timeout=120)
    return sorted(directory.glob(f"{name}-[0-9]*.png"))


def check_kpis_match(pdf: bytes, compliance_json: dict[str, Any], separator: str) -> None:
    """Every province KPI's numerator/denominator and one-decimal percent in the PDF's summary table is the
    one `soc compliance --json` gives, row by row (in the plan's order)."""
    rows = summary_rows(pdf_text(pdf))
    kpis = compliance_json["province"]["kpis"]
    assert len(rows) == len(kpis) == 7, rows
    for (value, numerator, denominator, target), kpi in zip(rows, kpis, strict=True):
        assert (numerator, denominator, target) == (kpi["numerator"], kpi["denominator"], kpi["target"]), kpi["id"]
        if kpi["kind"] == "rate" and kpi["denominator"]:
            assert value == one_decimal(kpi["numerator"], kpi["denominator"], separator), (kpi["id"], value)
            assert abs(Decimal(value[:-1].replace(separator, ".")) - Decimal(str(kpi["percent"]))) <= Decimal("0.05")
        elif kpi["kind"] == "rate":
            assert value == "—", (kpi["id"], value)
        else:
            assert value == str(kpi["numerator"]), (kpi["id"], value)


def test_the_monthly_pdf_agrees_with_soc_compliance_json(world: tuple[Path, FixedClock, Inventory],
                                                       tmp_path: Path) -> None:
    db, clock, _ = world
    out = tmp_path / "nov.pdf"
    made = run(clock, "report", "monthly", "--month", "2026-11", "--out", str(out), "--db", str(db),
               "-i", str(INVENTORY))
    assert made.exit_code == 0, made.output
    compliance = run(clock, "compliance", "--as-of", "2026-11-30", "--json", "--db", str(db), "-i", str(INVENTORY))
    assert compliance.exit_code == 0, compliance.output
    expected = json.loads(compliance.output)
    pdf = out.read_bytes()
    check_kpis_match(pdf, expected, ",")
    approved = next(k for k in expected["province"]["kpis"] if k["id"] == "systems_approved")
    assert (approved["numerator"], approved["denominator"]) == (3, 4)  # DVC approved in November
    text = pdf_text(pdf)
    for words in ("Số: ", "/BC-SOC", "Đồng Nai, ngày 02 tháng 12 năm 2026", "tháng 11 năm 2026", "Nơi nhận",
                  "Lỗ hổng nghiêm trọng", "Còn bật TLS 1.0", "Lộ phiên bản máy chủ",
                  "Trang 1/"):
        assert words in text, words
    assert screenshots(pdf, "monthly-nov")


def test_the_report_data_holds_the_period_and_its_movers(world: tuple[Path, FixedClock, Inventory]) -> None:
    db, clock, inventory = world
    with open_context(Settings(db=db), clock, "tester", writes=False) as context:
        data = reports.monthly_data(context, inventory, date(2026, 11, 1))
    assert (data.start, data.end, data.previous.as_of, data.to_date) == (date(2026, 11, 1), date(2026, 11, 30),
                                                                          date(2026, 10, 31), False)
    assert dict(data.portals.grades)["A"] == 1 and dict(data.portals.grades)["F"] == 1
    assert [c.url for c in data.portals.expiring] == [WWW]  # 15/12: next month
    assert data.portals.top_risks[0].url == DVC  # the critical finding
    portals = {(f.subject, f.severity) for f in data.findings if not f.subject.startswith("drill:")}
    assert portals == {(STP, "high"), (DVC, "critical")}
    assert {f.subject for f in data.findings} - {STP, DVC} == {f"drill:{d.session}" for d in data.drills}
    assert [f.subject for f in data.accepted] == [DVC]  # accepted apart, not among the open ones
    assert data.breached == 2  # opened 20/11, due within 3 / 7 days (level unknown: high_level)
    assert [d.day for d in data.drills] == [date(2026, 11, 20)] and data.drills_in_year == 1
    portal_moves = {(m.name, m.before, m.after, m.improved) for m in data.movers if m.kind == "portal"}
    assert {(n, b, a, i) for n, b, a, i in portal_moves if b in ("A", "B")} >= {
        (next(p.name or p.url for p in inventory.portals if p.url == WWW), "B", "A", True),
        (next(p.name or p.url for p in inventory.portals if p.url == STP), "A", "F", False)}
    agency_moves = [m for m in data.movers if m.kind == "agency" and m.improved]
    assert any(m.measure.en.startswith("Information systems with an approved") for m in agency_moves)
    syt = next(r for r in data.recommendations if r.agency == "syt" and r.kpi == "systems_approved")
    assert syt.needed == 1 and syt.candidates == ("Hệ thống hồ sơ sức khỏe điện tử (HSSK)",)
    unassessed = next(r for r in data.recommendations if r.kpi == "portals_assessed")
    assert unassessed.agency == "province" and unassessed.needed == len(inventory.portals) - 3  # three assessed
    assert len(unassessed.candidates) + unassessed.more == unassessed.needed
    assert next(a for a in data.approvals if a.agency == "syt").missing[0].status == "dossier_drafted"


def test_a_past_month_rebuilt_gives_the_same_figures(world: tuple[Path, FixedClock, Inventory]) -> None:
    db, clock, inventory = world
    with open_context(Settings(db=db), clock, "tester", writes=False) as context:
        first = reports.figures(reports.monthly_data(context, inventory, date(2026, 10, 1)))
    later = FixedClock(GENERATED + timedelta(days=40))
    with open_context(Settings(db=db), later, "tester", writes=False) as context:
        again = reports.figures(reports.monthly_data(context, inventory, date(2026, 10, 1)))
    assert again == first
    assert json.loads(json.dumps(first)) == first  # JSON-able as it is
    approved = next(k for k in first["province"]["kpis"] if k["id"] == "systems_approved")
    assert (approved["numerator"], approved["denominator"], approved["shown"]) == (2, 4, "50.0")


def test_an_empty_month_still_makes_a_report(world: tuple[Path, FixedClock, Inventory], tmp_path: Path) -> None:
    _, clock, _ = world
    empty = tmp_path / "empty.db"
    out = tmp_path / "empty.pdf"
    made = run(clock, "report", "monthly", "--month", "2026-09", "--out", str(out), "--db", str(empty),
               "-i", str(INVENTORY))
    assert made.exit_code == 0, made.output
    compliance = run(clock, "compliance", "--as-of", "2026-09-30", "--json", "--db", str(empty), "-i", str(INVENTORY))
    pdf = out.read_bytes()
    check_kpis_match(pdf, json.loads(compliance.output), ",")
    text = pdf_text(pdf)
    assert "Không có cuộc diễn tập nào trong kỳ" in text and "Chưa có số liệu phòng chống mã độc" in text
    screenshots(pdf, "monthly-empty")


def test_quarterly_in_english(world: tuple[Path, FixedClock, Inventory], tmp_path: Path) -> None:
    db, clock, _ = world
    out = tmp_path / "q4.pdf"
    made = run(clock, "report", "quarterly", "--quarter", "2026-Q4", "--lang", "en", "--out", str(out),
               "--db", str(db), "-i", str(INVENTORY))
    assert made.exit_code == 0, made.output
    compliance = run(clock, "compliance", "--as-of", "2026-12-02", "--json", "--db", str(db), "-i", str(INVENTORY))
    pdf = out.read_bytes()
    check_kpis_match(pdf, json.loads(compliance.output), ".")
    text = pdf_text(pdf)
    assert "Q4 2026" in text and "Page 1/" in text and "Figures up to the end of 02/12/2026" in text
    screenshots(pdf, "monthly-q4-en")


def test_html_is_escaped_and_bad_periods_exit_2(world: tuple[Path, FixedClock, Inventory], tmp_path: Path) -> None:
    db, clock, _ = world
    out = tmp_path / "nov.html"
    made = run(clock, "report", "monthly", "--month", "2026-11", "--format", "html", "--out", str(out),
               "--db", str(db), "-i", str(INVENTORY))
    assert made.exit_code == 0, made.output
    html = out.read_text(encoding="utf-8")
    assert html.count("<svg") == 3 and "<script" not in html
    for bad in ("2026-13", "11/2026", "2026-1"):
        result = run(clock, "report", "monthly", "--month", bad, "--db", str(db), "-i", str(INVENTORY))
        assert result.exit_code == 2 and "YYYY-MM" in result.output, (bad, result.output)
    assert run(clock, "report", "quarterly", "--quarter", "2026-Q5", "--db", str(db)).exit_code == 2
    future = run(clock, "report", "monthly", "--month", "2027-01", "--db", str(db), "-i", str(INVENTORY))
    assert future.exit_code == 2 and "has not begun" in future.output


def test_hostile_names_are_escaped(world: tuple[Path, FixedClock, Inventory]) -> None:
    db, clock, inventory = world
    hostile = inventory.model_copy(update={"agencies": [a.model_copy(update={"name": "<b>Sở</b>\u202e"})
                                                        if a.id == "syt" else a for a in inventory.agencies]})
    with open_context(Settings(db=db), clock, "tester", writes=False) as context:
        html = reports.render_html(reports.monthly_data(context, hostile, date(2026, 11, 1)))
        with pytest.raises(ServiceError, match="first day"):
            reports.monthly_data(context, inventory, date(2026, 11, 2))
    assert "<b>Sở</b>" not in html and "&lt;b&gt;Sở&lt;/b&gt;" in html and "\u202e" not in html
