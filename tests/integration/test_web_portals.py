"""The portal, agency and compliance pages of the dashboard, on a real SQLite store through the real app: hostile
text from a portal shown as text, the agency's figures those of the KPI service, the spreadsheet import all or
nothing with every problem listed, and the import refused to a viewer and to a forged form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from markupsafe import escape

from checks.catalogue import make_finding
from soc.api import create_app
from soc.api.routes.portals import portal_id
from soc.compliance.models import SystemRecord
from soc.compliance.sheets import SheetError, read_systems
from soc.core.clock import FixedClock
from soc.core.models import Observation, PortalScan, Role, Severity
from soc.core.observations import (
    AcceptedCipher,
    CertificateInfo,
    ChainTrust,
    HttpObservation,
    LabelObservation,
    OpenPort,
    PortsObservation,
    RedirectHop,
    TlsObservation,
    TrustBadge,
    TrustLabelStatus,
)
from soc.core.settings import AuthSettings, Settings
from soc.inventory import Inventory, load_inventory
from soc.services import compliance as compliance_service
from soc.services.context import ServiceContext, open_context
from soc.services.register import agencies_of, import_systems, vocabulary_of
from soc.services.users import add_user
from soc.web import i18n, install_dashboard
from soc.web.pages.compliance import sparklines
from tests.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "examples" / "dongnai.yaml"
REGISTER = REPO / "examples" / "he-thong-thong-tin.csv"
STP = "https://stp.dongnai.gov.vn/"
DVC = "https://dichvucong.dongnai.gov.vn/"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"
OPERATOR, VIEWER = "lan.operator", "minh.viewer"
SCRIPT = "<script>window.pwned=1</script>"
IMG = '"><img src=x onerror=alert(1)>'
CLEAR = "\x1b[2J"
SLUG = "stpdongnaigovvn-1635823490"


@dataclass
class World:
    """The app on a seeded store, and the context the tests use to look into it."""

    client: TestClient
    context: ServiceContext
    inventory: Inventory
    clock: FixedClock

    def systems(self) -> list[SystemRecord]:
        """The register as it stands now."""
        return self.context.backend.register.systems_as_of(self.clock.now())


def _observations(moment: datetime) -> list[Observation]:
    """What a scan of STP saw at `moment`, with hostile text where the portal controls it."""
    leaf = CertificateInfo(
        subject=f"CN=stp.dongnai.gov.vn,O={IMG},OU={SCRIPT}", issuer="CN=Hostile CA,O=<b>bold</b>",
        serial="0A1B", sha256="ab" * 32, not_before=moment - timedelta(days=400),
        not_after=moment - timedelta(days=26), key_type="RSA", key_size=1024, signature_hash="sha1",
        self_signed=False, san_dns=["stp.dongnai.gov.vn", f"{SCRIPT}.example"], san_dns_total=2, pem="")
    tls = TlsObservation(
        portal_url=STP, host="stp.dongnai.gov.vn", port=443, address="203.0.113.7", observed_at=moment,
        protocols={"TLSv1.0": True, "TLSv1.2": True, "TLSv1.3": False},
        accepted_ciphers=[AcceptedCipher(protocol="TLSv1.2", name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                         openssl_name="ECDHE-RSA-AES128-GCM-SHA256", key_size=128, kex_type="ECDH",
                                         kex_size=256, kex_curve="X25519"),
                          AcceptedCipher(protocol="TLSv1.0", name="TLS_RSA_WITH_AES_128_CBC_SHA",
                                         openssl_name="AES128-SHA", key_size=128)],
        chain=[leaf], hostname_matches=True, trust=ChainTrust(anchored=True, anchored_stores=["mozilla"]),
        heartbleed=False, ccs_injection=False, compression=False, secure_renegotiation=True, fallback_scsv=True)
    http = HttpObservation(
        portal_url=STP, host="stp.dongnai.gov.vn", address="203.0.113.7", observed_at=moment,
        start_url="http://stp.dongnai.gov.vn/",
        redirects=[RedirectHop(url="http://stp.dongnai.gov.vn/", status=301, location=f"https://stp/{IMG}")],
        reaches_https=True, final_url=STP, status=200, title=f"Sở Tư pháp {SCRIPT}{CLEAR}",
        headers={"server": [f"nginx {SCRIPT}"], "x-powered-by": [IMG]}, header_count=2, security_txt=False)
    label = LabelObservation(
        portal_url=STP, host="stp.dongnai.gov.vn", observed_at=moment, page_read=True,
        badges=[TrustBadge(how="link+img", link_url="javascript:alert(1)", image_url=f"https://x/{IMG}",
                           image_host="stp.dongnai.gov.vn", slug=SLUG, slug_domain="stpdongnaigovvn")],
        registry=TrustLabelStatus(domain="stp.dongnai.gov.vn", source="registry", found=True, label_id=SLUG,
                                  status="valid", owner=f"Sở {SCRIPT}"))
    ports = PortsObservation(portal_url=STP, address="203.0.113.7", observed_at=moment, ports_scanned="21-23,80,443",
                             open_ports=[OpenPort(port=443, service="https", product=SCRIPT)])
    return [Observation(collector=name, portal_url=STP, observed_at=moment, complete=True,
                        data=item.model_dump(mode="json"))
            for name, item in (("tls", tls), ("http", http), ("label", label), ("ports", ports))]


def _scan(context: ServiceContext, grade: str, days_ago: int, with_observations: bool) -> None:
    """One run over STP (and DVC), graded `grade`, `days_ago` days before NOW."""
    store = context.backend.findings
    run = store.begin_run(INVENTORY.name, 2)
    moment = NOW - timedelta(days=days_ago)
    findings = [make_finding(STP, "tls.cert.expired", f"notAfter {SCRIPT}"),
                make_finding(STP, "tls.protocol.tls10", "TLS 1.0 accepted"),
                make_finding(STP, "tls.cipher.no_forward_secrecy", "AES128-SHA", severity=Severity.MEDIUM)]
    store.record_portal(run.id, STP, _observations(moment) if with_observations else [], findings,
                        PortalScan(run_id=run.id, portal_url=STP, recorded_at=moment,
                                   collectors={"tls": True, "http": True}, tls_grade=grade,
                                   grade_without_trust="B", score=40,
                                   reasons=["hạng T: chứng thư hết hạn / grade T: certificate expired"]))
    store.record_portal(run.id, DVC, [], [make_finding(DVC, "http.header.csp_missing", "no CSP")],
                        PortalScan(run_id=run.id, portal_url=DVC, recorded_at=moment,
                                   collectors={"tls": True, "http": True}, tls_grade="A", score=90))
    store.finish_run(run.id, complete=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FixedClock(NOW - timedelta(days=30))
    settings = Settings(db=tmp_path / "soc.db", inventory=INVENTORY, sheet_max_bytes=4096,
                        auth=AuthSettings(login_rate_per_minute=1000))
    context = open_context(settings, clock, "tester")
    try:
        _scan(context, "B", 30, with_observations=False)
        clock.advance(timedelta(days=30))
        _scan(context, "T", 0, with_observations=True)
        add_user(context, OPERATOR, Role.OPERATOR, PASSWORD)
        add_user(context, VIEWER, Role.VIEWER, PASSWORD)
        app = create_app(settings, context.backend, clock)
        install_dashboard(app)
        with TestClient(app) as client:
            yield World(client, context, load_inventory(INVENTORY), clock)
    finally:
        context.close()


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no csrf_token in the page"
    return match.group(1)


def sign_in(client: TestClient, user: str) -> None:
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


def upload(client: TestClient, path: Path, token: str | None, kind: str = "systems") -> Response:
    data = {"kind": kind} | ({"csrf_token": token} if token is not None else {})
    with path.open("rb") as file:
        return client.post("/compliance/import", data=data, files={"file": (path.name, file, "text/csv")},
                           follow_redirects=False)


def test_the_portal_list_shows_each_portal_with_its_grade_and_open_findings(world: World) -> None:
    sign_in(world.client, VIEWER)
    page = world.client.get("/portals")
    assert page.status_code == 200
    row = re.search(rf'<a href="/portals/{portal_id(STP)}">.*?</tr>', page.text, re.S)
    assert row, "STP is not listed"
    assert '<span class="grade bad">T</span>' in row.group(0) and "40" in row.group(0)
    assert '&amp;severity=high&amp;status=open&amp;status=acknowledged" aria-label="1 ' in row.group(0)
    assert "https://www.dongnai.gov.vn/" in page.text  # a portal never scanned is listed too
    assert world.client.get("/portals?agency=stp").text.count('<a href="/portals/') == 1
    assert "not an agency of the inventory" in world.client.get("/portals?agency=nobody").text


def test_the_portal_page_shows_what_the_portal_sent_as_text(world: World) -> None:
    sign_in(world.client, VIEWER)
    page = world.client.get(f"/portals/{portal_id(STP)}")
    assert page.status_code == 200
    text = page.text
    for payload in (SCRIPT, IMG, "<b>bold</b>", "<img src=x"):
        assert payload not in text
    escaped_script, escaped_img = escape(SCRIPT), escape(IMG)
    assert f"OU={escaped_script}" in text and f"O={escaped_img}" in text  # certificate subject
    assert f"Sở Tư pháp {escaped_script}\\x1b[2J" in text  # page title, its control character made visible
    assert f"nginx {escaped_script}" in text  # Server header
    assert 'href="javascript:' not in text and "javascript:alert(1)" in text  # the badge's link, as text only
    assert f'<a href="https://tinnhiemmang.vn/danh-ba-tin-nhiem/{SLUG}" rel="noopener noreferrer">' in text
    assert f'<a href="{STP}" rel="noopener noreferrer">' in text
    # certificate, protocols and cipher suites with their key exchange, ports, grade and what capped it
    assert "RSA 1024" in text and "sha1" in text and "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in text
    assert "ECDH X25519 256" in text and "TLS_RSA_WITH_AES_128_CBC_SHA" in text
    assert "hạng T: chứng thư hết hạn" in text and "grade T" not in text  # our bilingual reason, in Vietnamese
    assert '<span class="grade bad">T</span>' in text
    # the grade history: both runs, as a chart with its title, and as a table
    chart = re.search(r"<svg .*?</svg>", text, re.S)
    assert chart and 'role="img"' in chart.group(0) and "<title>" in chart.group(0)
    assert chart.group(0).count("<circle") == 2
    assert f"/findings/{make_finding(STP, 'tls.protocol.tls10', '').fingerprint}" in text


def test_an_unknown_portal_or_agency_is_a_404_page(world: World) -> None:
    sign_in(world.client, VIEWER)
    assert world.client.get("/portals/0123456789abcdef").status_code == 404
    assert world.client.get("/agencies/nobody").status_code == 404


def test_pages_need_a_session(world: World) -> None:
    for path in ("/portals", f"/portals/{portal_id(STP)}", "/agencies/stp", "/compliance"):
        response = world.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_the_agency_page_shows_the_figures_of_the_kpi_service(world: World) -> None:
    import_systems(world.context, REGISTER, world.inventory)
    sign_in(world.client, VIEWER)
    page = world.client.get("/agencies/vpubnd")
    assert page.status_code == 200
    scope = compliance_service.kpis(world.context, world.inventory, agency="vpubnd").agencies[0]
    i18n.use("vi")
    for kpi in scope.kpis:
        tile = re.search(rf'<li class="tile (\w+)" data-kpi="{kpi.id}".*?</li>', page.text, re.S)
        assert tile, kpi.id
        assert f"<p>{kpi.numerator}/{kpi.denominator}</p>" in tile.group(0) and tile.group(1) == kpi.status
        value = i18n.percent(kpi.percent, 2) if kpi.kind == "rate" else str(kpi.numerator)
        assert f'<p class="value">{value}</p>' in tile.group(0)
    assert next(k for k in scope.kpis if k.id == "systems_approved").numerator == 1  # QLVB of the two
    assert "QLVB" in page.text and "DVC" in page.text and "HSSK" not in page.text
    assert scope.sla is not None
    assert f"({scope.sla.closed_within}/{scope.sla.closed_within + scope.sla.closed_after})" in page.text
    # open findings by severity: those of its portal and its systems, as the findings API counts them
    api = world.client.get("/api/v1/findings", params={"agency": "vpubnd", "status": ["open", "acknowledged"]})
    counted = [item["severity"] for item in api.json()["items"]]
    assert len(counted) >= 2  # the portal's missing CSP and the compliance findings of DVC (not approved)
    for severity in Severity:
        link = re.search(rf'severity={severity.value}&amp;status=open&amp;status=acknowledged">(\d+)</a>', page.text)
        assert link and int(link.group(1)) == counted.count(severity.value), severity


def test_the_compliance_page_shows_the_register_kpis_and_charts(world: World) -> None:
    import_systems(world.context, REGISTER, world.inventory)
    sign_in(world.client, VIEWER)
    page = world.client.get("/compliance").text
    report = compliance_service.kpis(world.context, world.inventory)
    for kpi in report.province.kpis:
        assert f'id="{kpi.id}"' in page and f"<p>{kpi.numerator}/{kpi.denominator}</p>" in page
    approved = next(k for k in report.province.kpis if k.id == "systems_approved")
    assert approved.included == ["CTTDT", "QLVB"] and "<li>QLVB</li>" in page and "<li>DVC</li>" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') == len(report.province.kpis) + 1  # trend + bars
    assert page.count("<circle") >= 12  # the trend has a point a month where the plan was in force
    lines = sparklines(world.context, world.inventory)  # the overview's tiles
    assert set(lines) == {k.id for k in report.province.kpis} and all('role="img"' in s for s in lines.values())
    filtered = world.client.get("/compliance", params={"agency": "vpubnd", "level": "3", "status": "approved"}).text
    register = filtered[filtered.index('id="register"'):filtered.index('id="coverage"')]
    assert "QLVB" in register and "DVC" not in register and "CTTDT" not in register
    bad = world.client.get("/compliance", params={"level": "9", "as_of": "27/11/2026"})
    assert bad.status_code == 200 and 'role="alert"' in bad.text
    assert "1 đến 5" in bad.text and "YYYY-MM-DD" in bad.text
    chosen = world.client.get("/compliance", params={"kpi": "computers_antimalware"}).text
    assert '<option value="computers_antimalware" selected>' in chosen


def test_the_example_register_imports_from_the_browser(world: World) -> None:
    sign_in(world.client, OPERATOR)
    page = world.client.get("/compliance").text
    assert 'action="/compliance/import"' in page and 'enctype="multipart/form-data"' in page
    response = upload(world.client, REGISTER, csrf_of(page))
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/compliance?imported=1")
    shown = world.client.get(response.headers["location"]).text
    assert "he-thong-thong-tin.csv" in shown and "4 thêm mới" in shown
    assert sorted(r.id for r in world.systems()) == ["CTTDT", "DVC", "HSSK", "QLVB"]
    assert world.context.backend.audit.entries("register.systems.import")[0].actor == OPERATOR
    assert "he-thong-thong-tin.csv" not in world.client.get("/compliance").text  # the summary is shown once


BROKEN = """STT,Mã hệ thống,Tên hệ thống,Cơ quan chủ quản,Cấp độ đề xuất,Cấp độ được phê duyệt,Trạng thái,\
Số quyết định,Ngày phê duyệt
1,QLVB,Quản lý văn bản (đổi tên),vpubnd,3,3,Đã phê duyệt,123/QĐ-UBND,15/03/2024
2,HT02,Hệ thống của cơ quan lạ,khongcoquannay,2,,Đã trình,,
3,HT03,<script>alert(1)</script>,syt,9,,Đã trình,,
4,HT04,Ngày sai,stp,2,2,Đã phê duyệt,9/QĐ,31/02/2025
5,HT05,Trạng thái lạ,sct,2,,Đang bay,,
"""


def test_a_broken_spreadsheet_lists_every_problem_and_changes_nothing(world: World, tmp_path: Path) -> None:
    import_systems(world.context, REGISTER, world.inventory)
    before = world.systems()
    broken = tmp_path / "so-dang-ky-loi.csv"
    broken.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(SheetError) as refused:  # what the CLI would list
        read_systems(broken, agencies_of(world.inventory), vocabulary_of(world.context))
    assert len(refused.value.problems) >= 4
    sign_in(world.client, OPERATOR)
    response = upload(world.client, broken, csrf_of(world.client.get("/compliance").text))
    assert response.status_code == 422
    page = response.text
    listed = re.search(r'<ul class="problem-list">(.*?)</ul>', page, re.S)
    assert listed and listed.group(1).count("<li>") == len(refused.value.problems)
    for problem in refused.value.problems:
        assert escape(problem) in listed.group(1)
    assert "<script>alert(1)</script>" not in page
    assert world.systems() == before
    assert len(world.context.backend.audit.entries("register.systems.import")) == 1
    assert '<option value="systems" selected>' in page  # the form keeps what was chosen


def test_a_viewer_gets_no_import_form_and_forged_imports_are_refused(world: World) -> None:
    before = world.systems()
    sign_in(world.client, VIEWER)
    page = world.client.get("/compliance").text
    assert "/compliance/import" not in page and 'type="file"' not in page
    assert upload(world.client, REGISTER, csrf_of(page)).status_code == 403
    world.client.post("/logout", data={"csrf_token": csrf_of(page)})
    sign_in(world.client, OPERATOR)
    assert upload(world.client, REGISTER, None).status_code == 403
    assert upload(world.client, REGISTER, "forged-token").status_code == 403
    assert world.systems() == before == []


def test_an_upload_over_the_size_limit_is_refused(world: World, tmp_path: Path) -> None:
    sign_in(world.client, OPERATOR)
    token = csrf_of(world.client.get("/compliance").text)
    large = tmp_path / "lon.csv"
    large.write_text(REGISTER.read_text(encoding="utf-8") + "\n" * 5000, encoding="utf-8")  # over 4 KiB once read
    response = upload(world.client, large, token)
    assert response.status_code == 422 and "4.096" in response.text
    huge = tmp_path / "rat-lon.csv"
    huge.write_bytes(b"x" * (200 * 1024))  # its declared length alone refuses it
    response = upload(world.client, huge, token)
    assert response.status_code == 413 and "4.096" in response.text
    assert world.systems() == []
