"""The findings triage pages: the filtered list (its URL is the filter), bulk acknowledge and risk acceptance
with per-finding outcomes, one finding with its evidence, history and forms, and the refusals (a viewer, a
forged or token-less POST).

Real parts: the app as `soc serve` builds it (create_app + install_dashboard) on a real SQLite store, the
real services, FastAPI's TestClient signing in through the login form. The example inventory's portals are
only names here (nothing is scanned).
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from checks.catalogue import make_finding, spec
from soc.api import create_app
from soc.core.clock import FixedClock, today
from soc.core.models import Finding, FindingStatus, Observation, Role, Severity
from soc.core.settings import AuthSettings, Settings
from soc.services.audit import audit_entries
from soc.services.context import ServiceContext, open_context
from soc.services.sla import apply_deadlines
from soc.services.users import add_user
from soc.web import install_dashboard
from tests.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "examples" / "dongnai.yaml"
STP, SCT = "https://stp.dongnai.gov.vn/", "https://sct.dongnai.gov.vn/"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
HOSTILE = '<script>alert("pwned")</script> Server: nginx/1.0\x1b[2J\u202eevil'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    """The dashboard on a real store, with an operator and a viewer, and the findings of one scan."""

    context: ServiceContext
    clock: FixedClock
    client: TestClient
    findings: dict[str, Finding]

    def fp(self, name: str) -> str:
        return self.findings[name].fingerprint

    def status(self, name: str) -> FindingStatus:
        stored = self.context.backend.findings.finding(self.fp(name))
        assert stored is not None
        return stored.status


def scan(context: ServiceContext, portal: str, findings: list[Finding]) -> None:
    """One complete observation of `portal` seeing `findings`, then the deadlines, as the scan job does."""
    store = context.backend.findings
    run = store.begin_run("dongnai.yaml", 1)
    observation = Observation(collector="tls", portal_url=portal, observed_at=context.clock.now(), complete=True)
    store.record_portal(run.id, portal, [observation], findings)
    store.finish_run(run.id, complete=True)
    apply_deadlines(context, None)


FINDINGS = {"expired": make_finding(STP, "tls.cert.expired", "notAfter 2026-11-01", severity=Severity.CRITICAL),
            "tls10": make_finding(STP, "tls.protocol.tls10", "TLS 1.0 accepted"),
            "hostile": make_finding(STP, "http.server_version_disclosed", HOSTILE),
            "sct": make_finding(SCT, "http.hsts.missing", "no Strict-Transport-Security")}


def settings_in(directory: Path) -> Settings:
    return Settings(db=directory / "soc.db", inventory=INVENTORY,
                    auth=AuthSettings(login_rate_per_minute=1000, session_hours=24 * 30))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the two users and the findings of two scans, made once (password hashes cost seconds)."""
    directory = tmp_path_factory.mktemp("seed")
    with open_context(settings_in(directory), FixedClock(NOW), "tester") as context:
        add_user(context, "binh.operator", Role.OPERATOR, PASSWORD)
        add_user(context, "dung.viewer", Role.VIEWER, PASSWORD)
        scan(context, STP, [FINDINGS["expired"], FINDINGS["tls10"], FINDINGS["hostile"]])
        scan(context, SCT, [FINDINGS["sct"]])
    return directory


@pytest.fixture
def site(seeded: Path, tmp_path: Path) -> Iterator[Site]:
    for part in seeded.glob("soc.db*"):
        shutil.copy2(part, tmp_path / part.name)
    clock = FixedClock(NOW)
    settings = settings_in(tmp_path)
    with open_context(settings, clock, "tester") as context:
        app = create_app(settings, context.backend, clock)
        install_dashboard(app)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield Site(context, clock, client, dict(FINDINGS))


def sign_in(site: Site, user: str) -> str:
    """Sign in through the form; the session's CSRF token (as the pages' forms carry it)."""
    form = site.client.get("/login")
    token = CSRF.search(form.text)
    assert token is not None
    answer = site.client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token[1],
                                              "next": "/findings"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = site.client.get("/findings")
    assert page.status_code == 200
    token = CSRF.search(page.text)
    assert token is not None
    return token[1]


def rows(page: Response) -> list[str]:
    """The fingerprints of the list's rows, in order (each row links to its finding)."""
    body = page.text.split('<table class="findings stack">', 1)
    if len(body) == 1:
        return []
    return re.findall(r'<a href="/findings/([0-9a-f]{32})">', body[1].split("</table>", 1)[0])


def test_the_list_filters_by_the_url_and_shows_hostile_evidence_as_text(site: Site) -> None:
    sign_in(site, "binh.operator")
    everything = site.client.get("/findings")
    assert set(rows(everything)) == {finding.fingerprint for finding in FINDINGS.values()}
    assert rows(everything)[0] == site.fp("expired")  # worst first: the expired certificate is critical
    text = everything.text
    assert "<script>alert" not in text and "\x1b" not in text and "\u202e" not in text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in text and "\\x1b[2J\\u202eevil" in text
    assert 'href="https://stp' not in text  # the portal is shown as text, never as a link to the scanned site

    assert rows(site.client.get("/findings?agency=sct")) == [site.fp("sct")]
    by_check = site.client.get("/findings", params={"check": "tls.protocol.tls10, tls.cert.expired"})
    assert set(rows(by_check)) == {site.fp("tls10"), site.fp("expired")}
    assert 'value="tls.protocol.tls10, tls.cert.expired"' in by_check.text  # the filter stays in the form
    critical = site.client.get("/findings?severity=critical&status=open&sort=first_seen")
    assert rows(critical) == [site.fp("expired")]
    assert 'value="critical" checked' in critical.text and 'value="first_seen" selected' in critical.text
    assert rows(site.client.get(f"/findings?portal={SCT}")) == [site.fp("sct")]
    sent = site.client.get("/findings?agency=&portal=&check=&first_seen_from=&sort=severity&severity=high",
                           follow_redirects=False)  # what the filter form sends: to the short address
    assert sent.status_code == 303 and sent.headers["location"] == "/findings?severity=high"
    assert rows(site.client.get("/findings?first_seen_from=2026-11-28")) == []
    assert len(rows(site.client.get("/findings?first_seen_from=2026-11-27&first_seen_until=2026-11-27"))) == 4
    assert len(rows(site.client.get("/findings?sla=within"))) == 4
    assert rows(site.client.get("/findings?sla=breached")) == []

    wrong = site.client.get("/findings?severity=urgent&first_seen_from=27/11/2026&agency=nobody")
    assert wrong.status_code == 200 and rows(wrong) == []
    assert "severity: &#39;urgent&#39; is not one of critical" in wrong.text
    assert "first seen from: &#39;27/11/2026&#39; is not a date (YYYY-MM-DD)" in wrong.text
    assert 'value="27/11/2026"' in wrong.text and 'role="alert"' in wrong.text
    unknown_agency = site.client.get("/findings?agency=nobody")
    assert "agency nobody: not an agency of the inventory" in unknown_agency.text

    site.clock.advance(timedelta(days=4))  # past the 3 days of a critical finding, within the others' days
    breached = site.client.get("/findings?sla=breached")
    assert rows(breached) == [site.fp("expired")] and 'class="sla breached"' in breached.text


def test_pages_follow_the_cursor_and_keep_the_filter(site: Site) -> None:
    sign_in(site, "binh.operator")
    extra = [make_finding(STP, "tls.cert.weak_key", "RSA 1024", detail=f"key-{i}") for i in range(55)]
    scan(site.context, STP, [site.findings[name] for name in ("expired", "tls10", "hostile")] + extra)
    first = site.client.get("/findings?agency=stp")
    assert len(rows(first)) == 50 and "1–50" in first.text
    link = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert link is not None
    second = site.client.get(html.unescape(link[1]))
    assert "agency=stp" in html.unescape(link[1]) and len(rows(second)) == 8 and "51–58" in second.text
    assert not set(rows(first)) & set(rows(second))
    assert 'rel="next"' not in second.text and 'href="/findings?agency=stp">« ' in second.text
    assert "not a valid cursor" in site.client.get("/findings?cursor=garbage").text


def test_bulk_acknowledge_and_risk_acceptance_show_in_the_list_the_history_and_the_audit(site: Site) -> None:
    token = sign_in(site, "binh.operator")
    site.context.backend.findings.set_status(site.fp("tls10"), FindingStatus.ACKNOWLEDGED, "tester", None)
    back = "agency=stp&sort=first_seen"
    done = site.client.post("/findings/bulk", data={
        "csrf_token": token, "action": "acknowledge", "comment": "đang xử lý", "back": back,
        "fingerprint": [site.fp("expired"), site.fp("tls10")]}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/findings?{back}&notice=bulk"
    assert site.status("expired") is FindingStatus.ACKNOWLEDGED
    report = site.client.get(done.headers["location"]).text
    assert f'<a href="/findings/{site.fp("expired")[:12]}">' in report  # done, with a link to it
    assert site.client.get(f"/findings/{site.fp('expired')[:12]}").status_code == 200  # the short id leads to it
    refusal = "đã ở trạng thái “đã tiếp nhận”, giữ nguyên (1):"  # the other one refused, and why
    assert refusal in report and site.fp("tls10")[:12] in report.split(refusal, 1)[1]
    assert refusal not in site.client.get(done.headers["location"]).text  # shown once

    expiry = today(site.clock) + timedelta(days=90)
    accepted = site.client.post("/findings/bulk", data={
        "csrf_token": token, "action": "risk_accepted", "comment": "hệ thống thay thế tháng 3",
        "approver": "Giám đốc Sở Tư pháp", "expires": expiry.isoformat(), "back": back,
        "fingerprint": [site.fp("expired"), site.fp("hostile")]}, follow_redirects=False)
    assert accepted.status_code == 303
    assert site.status("expired") is FindingStatus.RISK_ACCEPTED is site.status("hostile")
    listing = site.client.get("/findings?status=risk_accepted")
    assert set(rows(listing)) == {site.fp("expired"), site.fp("hostile")}
    shown = expiry.strftime("%d/%m/%Y")
    assert listing.text.count('class="status risk_accepted"') == 2 and listing.text.count(shown) == 2

    detail = site.client.get(f"/findings/{site.fp('expired')}?lang=en")
    assert detail.status_code == 200
    page = detail.text
    assert "Giám đốc Sở Tư pháp" in page and shown in page
    history = page.split('id="history-title"', 1)[1]
    assert history.index("đang xử lý") < history.index("hệ thống thay thế tháng 3")
    assert "binh.operator" in history and "risk_accepted" in history
    assert f"until {shown} · approved by Giám đốc Sở Tư pháp" in history
    assert spec("tls.cert.expired").risk.en in page and site.findings["expired"].remediation_en in page

    entries = audit_entries(site.context, "finding.triage", subject=site.fp("expired"))
    assert [entry.after["status"] for entry in reversed(entries) if entry.after] == ["acknowledged", "risk_accepted"]
    assert entries[0].actor == "binh.operator" and entries[0].after is not None
    assert entries[0].after["expires"].startswith((expiry - timedelta(days=1)).isoformat())  # 00:00 +07:00 in UTC
    assert entries[0].after["approver"] == "Giám đốc Sở Tư pháp"


def test_a_bulk_action_nothing_can_do_keeps_the_form_and_says_why(site: Site) -> None:
    token = sign_in(site, "binh.operator")
    refused = site.client.post("/findings/bulk", data={
        "csrf_token": token, "action": "risk_accepted", "comment": "tạm chấp nhận", "back": "status=open",
        "fingerprint": [site.fp("expired"), site.fp("sct")]})
    assert refused.status_code == 400
    assert "risk_accepted: an expiry date (YYYY-MM-DD) is required" in refused.text
    assert "tạm chấp nhận" in refused.text and refused.text.count(" checked>") >= 2  # ticks and comment kept
    assert site.status("expired") is FindingStatus.OPEN is site.status("sct")
    none_ticked = site.client.post("/findings/bulk", data={"csrf_token": token, "action": "acknowledge"})
    assert none_ticked.status_code == 400 and "no finding ticked" in none_ticked.text
    past = site.client.post("/findings/bulk", data={
        "csrf_token": token, "action": "risk_accepted", "comment": "x", "approver": "A",
        "expires": date(2026, 11, 1).isoformat(), "fingerprint": [site.fp("expired")]})
    assert "expires 2026-11-01: must be after today" in past.text


def test_one_finding_can_be_moved_assigned_and_commented_on_its_page(site: Site) -> None:
    token = sign_in(site, "binh.operator")
    url = f"/findings/{site.fp('hostile')}"
    page = site.client.get(url).text
    assert '<pre class="evidence">&lt;script&gt;alert(&#34;pwned&#34;)' in page and "\x1b" not in page
    moves = re.findall(r'<option value="(\w+)"', page.split('id="t-status"', 1)[1].split("</select>", 1)[0])
    assert moves == ["acknowledged", "false_positive", "resolved", "risk_accepted"]  # what ALLOWED permits from open

    assert site.client.post(f"{url}/assign", data={"csrf_token": token, "agency": "sct"},
                            follow_redirects=False).headers["location"] == f"{url}?notice=assigned"
    assert site.client.post(f"{url}/comment", data={"csrf_token": token, "comment": "<b>gọi</b> anh Nam"},
                            follow_redirects=False).status_code == 303
    wrong = site.client.post(f"{url}/transition", data={"csrf_token": token, "status": "false_positive"})
    assert wrong.status_code == 400 and "false_positive: a comment saying why is required" in wrong.text
    assert 'value="false_positive" selected' in wrong.text
    moved = site.client.post(f"{url}/transition", data={"csrf_token": token, "status": "false_positive",
                                                        "comment": "banner giả"}, follow_redirects=False)
    assert moved.status_code == 303
    after = site.client.get(moved.headers["location"]).text
    assert "&lt;b&gt;gọi&lt;/b&gt; anh Nam" in after and "banner giả" in after
    assert rows(site.client.get("/findings?agency=sct&status=false_positive")) == [site.fp("hostile")]
    moves = re.findall(r'<option value="(\w+)"', after.split('id="t-status"', 1)[1].split("</select>", 1)[0])
    assert moves == ["open"]
    assert [entry.action for entry in audit_entries(site.context, "finding.", subject=site.fp("hostile"))] == [
        "finding.triage", "finding.comment", "finding.assign"]
    assert site.client.get("/findings/0123456789abcdef").status_code == 404


def test_a_viewer_is_offered_nothing_and_a_forged_post_changes_nothing(site: Site) -> None:
    token = sign_in(site, "dung.viewer")
    listing = site.client.get("/findings")
    assert len(rows(listing)) == 4
    assert 'type="checkbox" class="pick"' not in listing.text and "/findings/bulk" not in listing.text
    detail = site.client.get(f"/findings/{site.fp('expired')}").text
    assert "/transition" not in detail and "/assign" not in detail and "/comment" not in detail
    before = len(audit_entries(site.context, "finding."))
    forged = [("/findings/bulk", {"action": "acknowledge", "fingerprint": site.fp("expired")}),
              (f"/findings/{site.fp('expired')}/transition", {"status": "acknowledged"}),
              (f"/findings/{site.fp('expired')}/comment", {"comment": "x"}),
              (f"/findings/{site.fp('expired')}/assign", {"agency": "sct"})]
    for path, data in forged:
        answer = site.client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)
        assert answer.status_code == 403, path
    assert site.status("expired") is FindingStatus.OPEN
    assert len(audit_entries(site.context, "finding.")) == before
    assert len(site.context.backend.findings.events(site.fp("expired"))) == 1


def test_a_post_without_the_csrf_token_is_refused(site: Site) -> None:
    token = sign_in(site, "binh.operator")
    for data in ({}, {"csrf_token": "not-the-token"}):
        answer = site.client.post("/findings/bulk", data={**data, "action": "acknowledge",
                                                          "fingerprint": site.fp("expired")})
        assert answer.status_code == 403
        moved = site.client.post(f"/findings/{site.fp('expired')}/transition", data={**data, "status": "acknowledged"})
        assert moved.status_code == 403
    assert site.status("expired") is FindingStatus.OPEN and audit_entries(site.context, "finding.") == []
    assert site.client.post(f"/findings/{site.fp('expired')}/transition",
                            data={"csrf_token": token, "status": "acknowledged"},
                            follow_redirects=False).status_code == 303  # the same form with its token works


def test_signed_out_the_pages_send_to_the_sign_in_form(site: Site) -> None:
    answer = site.client.get("/findings?severity=high", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/findings%3Fseverity%3Dhigh"
    assert site.findings["expired"].severity is Severity.CRITICAL
