"""The reports to leadership archived, scheduled and e-mailed: the archive keeps each PDF with its HTML and the
figures it was built from; the monthly job (and, at a quarter's start, the quarterly report) is received by a
real SMTP server on loopback (aiosmtpd) with its Vietnamese subject and the PDF byte-identical to the archived
one; a refused SMTP port is a failed job run with the error; the API and the dashboard list and serve them."""

from __future__ import annotations

import email
import hashlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic_core import to_jsonable_python

from checks.catalogue import make_finding
from soc.api import create_app
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.models import JobOutcome, Observation, PortalScan, Role, Severity
from soc.core.report_records import ArchivedReport, ReportKind
from soc.core.settings import Settings, SmtpSettings
from soc.inventory import Inventory, load_inventory
from soc.services import report_archive, reports
from soc.services.context import ServiceContext, ServiceError, open_context
from soc.services.jobs import run_job
from soc.services.users import add_user, create_token
from soc.web import install_dashboard
from tests.integration.api_world import INVENTORY, PORTAL, StoreScheduler

PASSWORD = "mật-khẩu-thử-nghiệm-2026"
ADMIN, OPERATOR, VIEWER = "an.admin", "binh.operator", "dung.viewer"
CHANGE_RECIPIENTS = ["soc@dongnai.gov.vn"]
LEADERS = ["lanh-dao@dongnai.gov.vn", "so-tttt@dongnai.gov.vn"]
DECEMBER_1 = datetime(2026, 12, 1, 7, 0, tzinfo=LOCAL_ZONE)
"""The monthly job's default slot (0 7 1 * *) for November's report."""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    """A port nothing listens on right now (aiosmtpd does not accept port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """The messages the SMTP server was given."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def message(self, index: int = 0) -> EmailMessage:
        content = self.envelopes[index].content
        assert isinstance(content, bytes)
        parsed = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Server:
    received: Received
    port: int

    def settings(self, **values: Any) -> SmtpSettings:
        base: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "starttls": False,
                                "recipients": CHANGE_RECIPIENTS, "report_recipients": LEADERS, "attempts": 1,
                                "retry_seconds": 0}
        return SmtpSettings.model_validate(base | values)


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    received, port = Received(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Server(received, port)
    finally:
        controller.stop()


@pytest.fixture
def inventory() -> Inventory:
    return load_inventory(INVENTORY)


def open_store(directory: Path, moment: datetime, smtp: SmtpSettings | None = None) -> ServiceContext:
    """A store with one November scan of PORTAL (a high finding, grade C), on a clock fixed at `moment`."""
    clock = FixedClock(datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_ZONE))
    settings = Settings(db=directory / "soc.db", inventory=INVENTORY, smtp=smtp or SmtpSettings())
    context = open_context(settings, clock, "tester")
    store = context.backend.findings
    run = store.begin_run(INVENTORY.name, 1)
    now = clock.now()
    findings = [make_finding(PORTAL, "tls.cert.expired", "notAfter 2026-11-01", severity=Severity.HIGH)]
    observation = Observation(collector="tls", portal_url=PORTAL, observed_at=now, complete=True)
    scan = PortalScan(run_id=run.id, portal_url=PORTAL, recorded_at=now, collectors={"tls": True}, tls_grade="C",
                      score=55)
    store.record_portal(run.id, PORTAL, [observation], findings, scan)
    store.finish_run(run.id, complete=True)
    clock.advance(moment - now)
    return context


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ServiceContext]:
    opened = open_store(tmp_path, DECEMBER_1)
    yield opened
    opened.close()


def attachment(message: EmailMessage) -> tuple[str | None, bytes]:
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_filename(), payload


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


# --- the archive ---------------------------------------------------------------------------------------------


def test_the_archive_keeps_the_report_with_the_figures_it_was_built_from(context: ServiceContext,
                                                                         inventory: Inventory) -> None:
    report = report_archive.generate(context, inventory, ReportKind.MONTHLY, "2026-11", "vi")
    kept = context.backend.reports.get(report.id)
    assert kept == report
    assert kept.pdf.startswith(b"%PDF-") and kept.sha256 == hashlib.sha256(kept.pdf).hexdigest()
    assert kept.pdf_size == len(kept.pdf) and "<html" in kept.html
    # the figures are those of the month rebuilt from the same store: a past month gives the same numbers
    rebuilt = reports.figures(reports.monthly_data(context, inventory, datetime(2026, 11, 1).date()))
    assert kept.figures == to_jsonable_python(rebuilt)
    assert kept.figures["end"] == "2026-11-30" and kept.figures["portals"]["total"] == len(inventory.portals)
    assert kept.figures["findings"]["open_critical_high"] == 1
    [entry] = context.backend.audit.entries(action_prefix="report.generate")
    assert entry.subject == report.id and entry.after is not None and entry.after["sha256"] == report.sha256


def test_list_and_latest_answer_by_kind_period_and_language(context: ServiceContext, inventory: Inventory) -> None:
    october = report_archive.generate(context, inventory, ReportKind.MONTHLY, "2026-10", "vi")
    first = report_archive.generate(context, inventory, ReportKind.MONTHLY, "2026-11", "vi")
    context.clock.advance(datetime(2026, 12, 1, 8, 0, tzinfo=LOCAL_ZONE) - DECEMBER_1)  # type: ignore[attr-defined]
    second = report_archive.generate(context, inventory, ReportKind.MONTHLY, "2026-11", "vi")
    english = report_archive.generate(context, inventory, ReportKind.MONTHLY, "2026-11", "en")
    store = context.backend.reports
    listed = store.list(ReportKind.MONTHLY)
    assert [item.period for item in listed] == ["2026-11", "2026-11", "2026-11", "2026-10"]
    assert {item.id for item in listed[:2]} == {second.id, english.id} and listed[2].id == first.id
    assert [item.id for item in store.list(period="2026-10")] == [october.id]
    assert store.list(ReportKind.QUARTERLY) == []
    latest = store.latest(ReportKind.MONTHLY, "2026-11", "vi")
    assert latest is not None and latest.id == second.id
    assert store.latest(ReportKind.MONTHLY, "2026-09", "vi") is None and store.get("0123456789ab") is None
    assert listed[3] == october.summary()  # a listing carries no content
    with pytest.raises(ValueError, match="already exists"):
        store.add(october)


@pytest.mark.parametrize(("kind", "period", "why"), [
    (ReportKind.MONTHLY, "2026-13", "YYYY-MM"), (ReportKind.MONTHLY, "2026-Q4", "YYYY-MM"),
    (ReportKind.QUARTERLY, "2026-11", "YYYY-Qn"), (ReportKind.QUARTERLY, "2026-Q5", "YYYY-Qn"),
    (ReportKind.MONTHLY, "2027-01", "not begun")])
def test_a_period_written_wrong_or_not_begun_is_refused(context: ServiceContext, inventory: Inventory,
                                                        kind: ReportKind, period: str, why: str) -> None:
    with pytest.raises(ServiceError, match=why):
        report_archive.generate(context, inventory, kind, period, "vi")
    assert context.backend.reports.list() == []


# --- the scheduled job ---------------------------------------------------------------------------------------


def only(context: ServiceContext, kind: ReportKind) -> ArchivedReport:
    [summary] = context.backend.reports.list(kind)
    report = context.backend.reports.get(summary.id)
    assert report is not None
    return report


def test_the_monthly_job_emails_last_months_report_with_the_archived_pdf(tmp_path: Path,
                                                                         smtp_server: Server) -> None:
    with open_store(tmp_path, DECEMBER_1, smtp_server.settings()) as context:
        run = run_job(context, "monthly_report", DECEMBER_1)
        assert (run.outcome, run.error) == (JobOutcome.SUCCESS, None)
        report = only(context, ReportKind.MONTHLY)
        assert (report.period, report.lang, report.created_by) == ("2026-11", "vi", "tester")
        assert context.backend.reports.list(ReportKind.QUARTERLY) == []  # November closes no quarter
        assert run.detail["reports"] == [{"id": report.id, "kind": "monthly", "period": "2026-11",
                                          "sha256": report.sha256}]
        assert run.detail["emails"] == [{"report": report.id, "delivered": True, "attempts": 1, "recipients": 2,
                                         "refused": 0}]
    [envelope] = smtp_server.received.envelopes
    assert envelope.rcpt_tos == LEADERS  # the report's recipients, not the change e-mail's
    message = smtp_server.received.message()
    assert message["Subject"] == "Báo cáo an toàn thông tin tháng 11/2026 — SOC Đồng Nai"
    assert message["To"] == ", ".join(LEADERS) and message["X-SOC-Report"] == report.id
    filename, pdf = attachment(message)
    assert filename == "bao-cao-2026-11-vi.pdf"
    assert pdf == report.pdf and hashlib.sha256(pdf).hexdigest() == report.sha256
    body = body_text(message)
    province = report.figures["province"]["kpis"]
    met = sum(kpi["status"] == "met" for kpi in province)
    assert f"đạt {met}/{len(province)} / {met} of {len(province)} met" in body
    assessed = next(kpi for kpi in province if kpi["id"] == "portals_assessed")
    assert assessed["denominator"] == len(load_inventory(INVENTORY).portals) and assessed["status"] == "not_met"
    shown = assessed["shown"].replace(".", ",")  # the report's own one-decimal figure, with a decimal comma
    assert (f"(30 ngày) / Portals assessed for security (last 30 days): {assessed['numerator']}/"
            f"{assessed['denominator']} ({shown}%) · mục tiêu / target ≥ 100% · Chưa đạt / Not met") in body, body


def test_at_a_quarters_start_the_quarterly_report_goes_too(tmp_path: Path, smtp_server: Server) -> None:
    october_1 = datetime(2026, 10, 1, 7, 0, tzinfo=LOCAL_ZONE)
    with open_store(tmp_path, datetime(2026, 11, 20, 9, 0, tzinfo=LOCAL_ZONE), smtp_server.settings()) as context:
        run = run_job(context, "monthly_report", october_1, trigger="manual")
        assert (run.outcome, run.error) == (JobOutcome.SUCCESS, None)
        monthly, quarterly = only(context, ReportKind.MONTHLY), only(context, ReportKind.QUARTERLY)
        assert (monthly.period, quarterly.period) == ("2026-09", "2026-Q3")
        assert quarterly.figures["kind"] == "quarterly" and quarterly.figures["start"] == "2026-07-01"
    subjects = [smtp_server.received.message(i)["Subject"] for i in range(2)]
    assert subjects == ["Báo cáo an toàn thông tin tháng 09/2026 — SOC Đồng Nai",
                        "Báo cáo an toàn thông tin quý III/2026 — SOC Đồng Nai"]
    assert attachment(smtp_server.received.message(1))[1] == quarterly.pdf


def test_a_refused_smtp_port_fails_the_run_with_the_error_after_the_retries(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    smtp = SmtpSettings(host="127.0.0.1", port=port, starttls=False, recipients=LEADERS, attempts=2,
                        retry_seconds=0)
    with open_store(tmp_path, DECEMBER_1, smtp) as context:
        run = run_job(context, "monthly_report", DECEMBER_1)
        assert run.outcome is JobOutcome.FAILED and run.error is not None
        assert run.error.startswith("report 2026-11 not e-mailed: attempt 1/2: cannot connect to smtp "
                                    f"127.0.0.1:{port}: ")
        assert f"attempt 2/2: cannot connect to smtp 127.0.0.1:{port}" in run.error
        [history] = context.backend.jobs.runs(job="monthly_report")
        assert (history.outcome, history.error) == (JobOutcome.FAILED, run.error)
        assert history.detail["emails"][0]["attempts"] == 2 and not history.detail["emails"][0]["delivered"]
        report = only(context, ReportKind.MONTHLY)  # built and kept: a run again (run now, next slot) re-sends
        [sent] = context.backend.audit.entries(action_prefix="notify.report_email")
        assert sent.subject == report.id and sent.after is not None and sent.after["delivered"] is False
        assert sent.note is not None and "cannot connect" in sent.note


def test_without_smtp_the_report_is_archived_and_the_run_says_why_none_was_sent(context: ServiceContext) -> None:
    run = run_job(context, "monthly_report", DECEMBER_1)
    assert run.outcome is JobOutcome.SUCCESS and run.detail["email"] == "SMTP is not configured (SOC_SMTP__HOST)"
    assert only(context, ReportKind.MONTHLY).period == "2026-11"


def test_without_an_inventory_the_run_fails_saying_so(tmp_path: Path) -> None:
    with open_context(Settings(db=tmp_path / "soc.db"), FixedClock(DECEMBER_1), "tester") as context:
        run = run_job(context, "monthly_report", DECEMBER_1)
    assert run.outcome is JobOutcome.FAILED and run.error is not None and "no inventory" in run.error


# --- the API and the dashboard -------------------------------------------------------------------------------


@pytest.fixture
def app(context: ServiceContext) -> FastAPI:
    for name, role in ((ADMIN, Role.ADMIN), (OPERATOR, Role.OPERATOR), (VIEWER, Role.VIEWER)):
        add_user(context, name, role, PASSWORD)
    built = create_app(context.settings, context.backend, context.clock, scheduler=StoreScheduler(context))
    install_dashboard(built)
    return built


def bearer(context: ServiceContext, name: str) -> dict[str, str]:
    _, secret = create_token(context, name)
    return {"Authorization": f"Bearer {secret}"}


def test_the_api_generates_lists_and_serves_reports(app: FastAPI, context: ServiceContext) -> None:
    client = TestClient(app)
    operator, viewer = bearer(context, OPERATOR), bearer(context, VIEWER)
    made = client.post("/api/v1/reports", json={"kind": "monthly", "period": "2026-11", "lang": "en"},
                       headers=operator)
    assert made.status_code == 201, made.text
    item = made.json()
    assert (item["period"], item["lang"], item["created_by"]) == ("2026-11", "en", OPERATOR)
    assert made.headers["location"] == item["pdf_url"] == f"/api/v1/reports/{item['id']}.pdf"
    listed = client.get("/api/v1/reports", headers=viewer)
    assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [item["id"]]
    assert "pdf" not in listed.json()["items"][0]  # the listing carries no content
    archived = context.backend.reports.get(item["id"])
    assert archived is not None
    pdf = client.get(item["pdf_url"], headers=viewer)
    assert pdf.status_code == 200 and pdf.content == archived.pdf
    assert pdf.headers["content-type"] == "application/pdf" and pdf.headers["etag"] == f'"{archived.sha256}"'
    page = client.get(item["html_url"], headers=viewer)
    assert page.status_code == 200 and page.text == archived.html
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert client.get("/api/v1/reports/0123456789ab.pdf", headers=viewer).status_code == 404
    refused = client.post("/api/v1/reports", json={"period": "2026-11"}, headers=viewer)
    assert refused.status_code == 403
    future = client.post("/api/v1/reports", json={"period": "2027-03"}, headers=operator)
    assert future.status_code == 409 and "not begun" in future.json()["detail"]
    wrong = client.post("/api/v1/reports", json={"kind": "quarterly", "period": "2026-11"}, headers=operator)
    assert wrong.status_code == 422 and "YYYY-Qn" in wrong.text
    assert len(context.backend.reports.list()) == 1


def sign_in(app: FastAPI, name: str, language: str = "vi") -> tuple[TestClient, str]:
    """A browser signed in as `name` through the login form, and its session's CSRF token."""
    client = TestClient(app, follow_redirects=False)
    match = CSRF.search(client.get("/login", params={"lang": language}).text)
    assert match is not None
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": match.group(1),
                                           "next": "/reports"})
    assert response.status_code == 303, response.text
    match = CSRF.search(client.get("/reports").text)
    assert match is not None
    return client, match.group(1)


def test_the_reports_page_lists_the_archive_and_generates_for_an_operator(app: FastAPI,
                                                                          context: ServiceContext) -> None:
    client, csrf = sign_in(app, OPERATOR)
    empty = client.get("/reports")
    assert empty.status_code == 200 and "Báo cáo gửi lãnh đạo" in empty.text
    assert "Chưa có báo cáo nào được lập." in empty.text and 'value="2026-11"' in empty.text  # last month
    bad = client.post("/reports", data={"csrf_token": csrf, "kind": "monthly", "period": "11/2026", "lang": "vi"})
    assert bad.status_code == 400 and "YYYY-MM" in bad.text and 'value="11/2026"' in bad.text
    forged = client.post("/reports", data={"kind": "monthly", "period": "2026-11", "lang": "vi"})
    assert forged.status_code in (400, 403) and context.backend.reports.list() == []
    made = client.post("/reports", data={"csrf_token": csrf, "kind": "monthly", "period": "2026-11", "lang": "vi"})
    assert made.status_code == 303 and made.headers["location"] == "/reports?notice=created"
    [report] = context.backend.reports.list()
    page = client.get("/reports?notice=created")
    assert "Báo cáo đã được lập và lưu trữ." in page.text
    assert f'href="/api/v1/reports/{report.id}.pdf"' in page.text
    assert f'href="/api/v1/reports/{report.id}.html"' in page.text and report.sha256[:16] in page.text
    pdf = client.get(f"/api/v1/reports/{report.id}.pdf")  # the same session reads the API
    archived = context.backend.reports.get(report.id)
    assert pdf.status_code == 200 and archived is not None and pdf.content == archived.pdf
    viewer, viewer_csrf = sign_in(app, VIEWER, "en")
    listing = viewer.get("/reports")
    assert "Reports to leadership" in listing.text and report.id in listing.text
    assert 'action="/reports"' not in listing.text  # no form for a viewer
    refused = viewer.post("/reports", data={"csrf_token": viewer_csrf, "kind": "monthly", "period": "2026-10"})
    assert refused.status_code == 403 and len(context.backend.reports.list()) == 1
