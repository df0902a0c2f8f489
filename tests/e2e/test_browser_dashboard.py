"""The dashboard in a real browser (Debian's chromium): sign in, the overview's tiles against `soc compliance
--json`, the language switch, what a viewer is not offered and is refused.

One chromium and one served store for the module; every page is watched (tests/e2e/browser.py): a request to
another origin, a console error, a CSP violation or a dialog fails the test. Screenshots go to $SOC_SCREENSHOTS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from soc.core.clock import SYSTEM_CLOCK, today
from soc.services.context import open_context
from tests.e2e.browser import PHONE, Dashboard, Watched, live_dashboard, watched_page
from tests.e2e.dashboard_data import ADMIN, INVENTORY, OPERATOR, PASSWORD, VIEWER, Seeded, seed, settings_for

SOC = str(Path(sys.executable).parent / "soc")
DAY = re.compile(r"\b(\d{2})/(\d{2})/(\d{4})\b")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, Seeded]]:
    """The seeded store, served as `soc serve` serves it, for the whole module."""
    settings = settings_for(tmp_path_factory.mktemp("dashboard"))
    with open_context(settings, SYSTEM_CLOCK, "tester") as context:
        seeded = seed(context)
        with live_dashboard(context, SYSTEM_CLOCK) as dashboard:
            yield dashboard, seeded


@pytest.fixture
def dashboard(served: tuple[Dashboard, Seeded]) -> Dashboard:
    return served[0]


def soc_json(*args: str) -> dict[str, Any]:
    """Run the real `soc` command line and read its JSON (on the same store the dashboard serves)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"} | {
        name: value for name, value in os.environ.items() if name.startswith(("FAKETIME", "LD_PRELOAD"))}
    result = subprocess.run([SOC, *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def shown_number(text: str, language: str) -> float:
    """A number as the page shows it ("1.234,50 %" in Vietnamese, "1,234.50%" in English) as a float."""
    digits = text.replace("%", "").replace("\xa0", "").replace(" ", "").strip()
    thousands, decimal = (".", ",") if language == "vi" else (",", ".")
    return float(digits.replace(thousands, "").replace(decimal, "."))


def test_signing_in_goes_back_where_the_visitor_was_going(browser: Browser, dashboard: Dashboard) -> None:
    with watched_page(browser, dashboard.origin) as watched:
        page = watched.page
        watched.goto("/")  # not signed in: sent to the sign-in form, which remembers where to go back to
        assert page.url == f"{dashboard.origin}/login?next=/"
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.locator("h1").inner_text() == "Đăng nhập"
        watched.shot("login")
        watched.expected_statuses.add(401)
        page.fill("#username", OPERATOR)
        page.fill("#password", "not the password at all")
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        assert page.get_by_role("alert").inner_text() == "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đang bị khóa."
        assert page.input_value("#username") == OPERATOR and page.input_value("#password") == ""
        watched.shot("login-refused")
        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        assert page.url == f"{dashboard.origin}/"
        assert page.locator("h1").inner_text().startswith("Tổng quan")
        assert page.locator(".who").inner_text() == f"{OPERATOR} · vận hành"
        watched.shot("overview")
        page.get_by_role("button", name="Đăng xuất").click()
        page.wait_for_url(f"{dashboard.origin}/login")
        watched.goto("/")
        assert page.url.startswith(f"{dashboard.origin}/login")  # signed out: the session is gone


def test_overview_tiles_match_soc_compliance_json(browser: Browser, served: tuple[Dashboard, Seeded]) -> None:
    dashboard, seeded = served
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(VIEWER, PASSWORD)
        page = watched.page
        as_of = DAY.search(page.locator("h1 small").inner_text())
        assert as_of is not None, page.locator("h1").inner_text()
        tiles: dict[str | None, dict[str, Any]] = {}
        for element in page.locator("[data-kpi]").all():
            tiles[element.get_attribute("data-kpi")] = {
                "classes": set((element.get_attribute("class") or "").split()),
                "title": element.locator("h3").inner_text(),
                "value": element.locator(".value").inner_text(),
                "members": element.locator(".members a").inner_text(),
                "target": element.locator(".target").inner_text(),
                "href": element.locator(".members a").get_attribute("href"),
            }
    day = f"{as_of.group(3)}-{as_of.group(2)}-{as_of.group(1)}"
    document = soc_json("compliance", "--json", "--as-of", day, "--inventory", str(INVENTORY),
                        "--db", str(seeded.settings.db))
    assert document["as_of"] == day
    kpis = document["province"]["kpis"]
    assert list(tiles) == [kpi["id"] for kpi in kpis]
    for kpi in kpis:
        tile = tiles[kpi["id"]]
        assert kpi["status"] in tile["classes"], (kpi["id"], tile["classes"])
        assert tile["title"] == kpi["title_vi"]
        assert kpi["target"] in tile["target"]
        numerator, denominator = (int(shown_number(part, "vi")) for part in tile["members"].split("/"))
        assert (numerator, denominator) == (kpi["numerator"], kpi["denominator"]), kpi["id"]
        assert tile["href"] == f"/compliance#{kpi['id']}"
        if kpi["kind"] == "rate":
            if kpi["percent"] is None:
                assert tile["value"] == "—", kpi["id"]
            else:
                assert shown_number(tile["value"], "vi") == round(kpi["percent"], 2), (kpi["id"], tile["value"])
        else:
            assert shown_number(tile["value"], "vi") == kpi["numerator"], kpi["id"]


def test_the_language_switch_is_kept_from_page_to_page(browser: Browser, dashboard: Dashboard) -> None:
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(OPERATOR, PASSWORD)
        page = watched.page
        assert page.locator("html").get_attribute("lang") == "vi"
        page.get_by_role("link", name="English").click()
        page.wait_for_url(re.compile(r"lang=en"))
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").inner_text().startswith("Overview")
        assert page.get_by_role("navigation").get_by_role("link", name="Findings").count() == 1
        watched.shot("overview-en")
        watched.goto("/")  # no ?lang: the choice is remembered
        assert page.locator("html").get_attribute("lang") == "en"
        page.get_by_role("link", name="Tiếng Việt").click()
        page.wait_for_url(re.compile(r"lang=vi"))
        assert page.locator("h1").inner_text().startswith("Tổng quan")
        watched.goto("/")
        assert page.locator("html").get_attribute("lang") == "vi"


def listed(watched: Watched) -> dict[str, str]:
    """The findings list's rows: fingerprint → the status class shown."""
    rows = {}
    for row in watched.page.locator("table.findings tbody tr").all():
        href = row.locator("a[href^='/findings/']").first.get_attribute("href") or ""
        status = (row.locator("span.status").get_attribute("class") or "").split()
        rows[href.removeprefix("/findings/")] = status[-1]
    return rows


def test_filtering_findings_keeps_the_filter_in_the_address(browser: Browser, served: tuple[Dashboard, Seeded]
                                                            ) -> None:
    dashboard, seeded = served
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(VIEWER, PASSWORD)
        page = watched.page
        page.get_by_role("navigation").get_by_role("link", name="Phát hiện").click()
        page.wait_for_url(f"{dashboard.origin}/findings")
        everything = listed(watched)
        assert set(seeded.fingerprints.values()) <= set(everything)
        watched.shot("findings")
        page.select_option("#f-agency", "stp")
        page.check("#f-sev-high")
        page.check("#f-sev-medium")
        with page.expect_navigation():
            page.get_by_role("button", name="Áp dụng bộ lọc").click()
        assert "agency=stp" in page.url and "severity=high" in page.url and "severity=medium" in page.url
        stp = {key: fp for key, fp in seeded.fingerprints.items() if key.startswith("https://stp.")}
        expected = {stp[f"https://stp.dongnai.gov.vn/ {check}"] for check in
                    ("tls.cert.expired", "tls.protocol.tls10", "http.hsts.missing")}
        api = page.request.get(f"{dashboard.origin}/api/v1/findings?agency=stp&severity=high&severity=medium")
        assert {item["fingerprint"] for item in api.json()["items"]} == expected
        assert set(listed(watched)) == expected
        watched.shot("findings-filtered")
        saved = page.url
        watched.goto(saved.removeprefix(dashboard.origin))  # the address is the saved filter
        assert page.is_checked("#f-sev-high") and page.is_checked("#f-sev-medium")
        assert not page.is_checked("#f-sev-low")
        assert set(listed(watched)) == expected


def test_acknowledge_then_accept_a_risk_seen_in_the_list_the_history_and_the_audit_log(
        browser: Browser, served: tuple[Dashboard, Seeded]) -> None:
    dashboard, seeded = served
    tls11 = seeded.fingerprints["https://syt.dongnai.gov.vn/ tls.protocol.tls11"]
    weak = seeded.fingerprints["https://syt.dongnai.gov.vn/ tls.cipher.weak"]
    expires = today(SYSTEM_CLOCK) + timedelta(days=30)
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(OPERATOR, PASSWORD)
        page = watched.page
        watched.goto("/findings?portal=https://syt.dongnai.gov.vn/")
        assert listed(watched)[tls11] == "open" and listed(watched)[weak] == "open"
        page.check(f"input.pick[value='{tls11}']")
        page.check(f"input.pick[value='{weak}']")
        page.select_option("#b-action", "acknowledge")
        page.fill("#b-comment", "Đã chuyển cho Sở Y tế xử lý")
        with page.expect_navigation():
            page.get_by_role("button", name="Thực hiện với các phát hiện đã chọn").click()
        assert "notice=bulk" in page.url and "portal=" in page.url  # back to the same filtered list
        assert page.get_by_role("status").locator("a").count() == 2
        assert listed(watched)[tls11] == "acknowledged" and listed(watched)[weak] == "acknowledged"
        watched.shot("findings-acknowledged")

        page.click(f"a[href='/findings/{weak}']")
        page.wait_for_url(f"{dashboard.origin}/findings/{weak}")
        page.select_option("#t-status", "risk_accepted")
        page.fill("#t-comment", "Hệ thống cũ, thay thế trong quý 1")
        page.fill("#t-approver", "Phó Giám đốc Sở Y tế")
        page.fill("#t-expires", expires.isoformat())
        with page.expect_navigation():
            page.locator("form[action$='/transition'] button[type=submit]").click()
        assert page.url.endswith("?notice=moved")
        assert page.get_by_role("status").inner_text() == "Đã đổi trạng thái."
        facts = page.locator("dl.facts").inner_text()
        assert "Phó Giám đốc Sở Y tế" in facts and expires.strftime("%d/%m/%Y") in facts
        assert "risk_accepted" in (page.locator("dl.facts span.status").get_attribute("class") or "")
        history = page.locator("table.history tbody tr")
        acknowledged = history.filter(has_text="Đã chuyển cho Sở Y tế xử lý").inner_text()
        accepted = history.filter(has_text="Hệ thống cũ, thay thế trong quý 1").inner_text()
        assert OPERATOR in acknowledged and "đã tiếp nhận" in acknowledged
        assert OPERATOR in accepted and "chấp nhận rủi ro" in accepted and expires.strftime("%d/%m/%Y") in accepted
        watched.shot("finding-risk-accepted")

        watched.goto("/findings?portal=https://syt.dongnai.gov.vn/")
        assert listed(watched)[weak] == "risk_accepted" and listed(watched)[tls11] == "acknowledged"

    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(ADMIN, PASSWORD)
        watched.goto(f"/admin/audit?subject={weak}")
        rows = watched.page.locator("table.audit tbody tr").all_inner_texts()
        assert len(rows) == 2 and all("finding.triage" in row and OPERATOR in row for row in rows), rows
        assert "risk_accepted" in rows[0] and "acknowledged" in rows[1]  # newest first
        watched.shot("audit-finding")


def test_a_viewer_is_offered_no_triage_and_a_forged_triage_is_refused(
        browser: Browser, served: tuple[Dashboard, Seeded]) -> None:
    dashboard, seeded = served
    fingerprint = seeded.fingerprints["https://stp.dongnai.gov.vn/ tls.cert.expired"]
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(VIEWER, PASSWORD)
        page = watched.page
        assert page.get_by_role("navigation").get_by_role("link", name="Quản trị").count() == 0
        watched.goto("/findings")
        assert page.locator("input.pick").count() == 0 and page.locator("form#bulk").count() == 0
        watched.goto(f"/findings/{fingerprint}")
        assert page.locator("form[method=post][action^='/findings/']").count() == 0
        assert page.locator("#t-status, #a-agency, #c-comment").count() == 0
        watched.shot("finding-viewer")
        token = watched.csrf_token()  # the sign-out form's: the viewer's own session, a valid token
        forged = [(f"/findings/{fingerprint}/transition", {"status": "acknowledged", "comment": "forged"}),
                  ("/findings/bulk", {"action": "acknowledge", "fingerprint": fingerprint}),
                  (f"/findings/{fingerprint}/comment", {"comment": "forged"}),
                  (f"/findings/{fingerprint}/assign", {"agency": "syt"})]
        for path, form in forged:
            answer = page.request.post(dashboard.origin + path, form={"csrf_token": token, **form})
            assert answer.status == 403, (path, answer.status)
            assert "Vai trò của bạn không được phép thực hiện thao tác này." in answer.text()
        api = page.request.post(f"{dashboard.origin}/api/v1/findings/{fingerprint}/transitions",
                                data={"status": "acknowledged", "comment": "forged"},
                                headers={"X-CSRF-Token": token})
        assert api.status == 403, api.text()
        detail = page.request.get(f"{dashboard.origin}/api/v1/findings/{fingerprint}").json()
        assert detail["finding"]["status"] == "open" and detail["finding"]["assignee"] is None
        assert [event for event in detail["history"] if event["actor"] == VIEWER] == []
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(ADMIN, PASSWORD)
        assert watched.page.get_by_role("navigation").get_by_role("link", name="Quản trị").count() == 1
        watched.goto(f"/admin/audit?subject={fingerprint}")
        assert watched.page.locator("table.audit").count() == 0  # nothing was done to it, by anyone


def main_pages(watched: Watched, seeded: Seeded) -> dict[str, str]:
    """Screenshot name → path of every main page of the dashboard (the portal's found through the portals list)."""
    watched.goto("/portals")
    portal = watched.page.locator("a[href^='/portals/']", has_text="stp.dongnai.gov.vn").first.get_attribute("href")
    assert portal is not None
    return {"overview": "/", "findings": "/findings",
            "finding": f"/findings/{seeded.fingerprints['https://stp.dongnai.gov.vn/ tls.cert.expired']}",
            "portals": "/portals", "portal": portal, "agency": "/agencies/stp", "compliance": "/compliance",
            "runs": "/runs", "run": f"/runs/{seeded.run_id}", "admin": "/admin", "audit": "/admin/audit"}


def test_every_main_page_renders_cleanly_on_a_desktop_and_a_phone(browser: Browser, served: tuple[Dashboard, Seeded]
                                                                 ) -> None:
    dashboard, seeded = served
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(ADMIN, PASSWORD)
        pages = main_pages(watched, seeded)
        for name, path in pages.items():
            watched.goto(path)
            assert watched.page.locator("h1").count() == 1, path
            watched.shot(f"page-{name}")
        watched.page.set_viewport_size(PHONE)
        too_wide = {}
        for name, path in pages.items():
            watched.goto(path)
            width = watched.page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                too_wide[path] = width
            watched.shot(f"phone-{name}")
        assert not too_wide, f"wider than a {PHONE['width']} px phone: {too_wide}"


BROKEN_REGISTER = """\
STT,Mã hệ thống,Tên hệ thống,Cơ quan chủ quản,Cấp độ đề xuất,Cấp độ được phê duyệt,Trạng thái,Số quyết định,\
Ngày phê duyệt,Đang vận hành,Phục vụ thủ tục hành chính,Đáp ứng yêu cầu,Ngày đánh giá
1,QLVB,Hệ thống Quản lý văn bản và điều hành,vpubnd,3,3,Đã phê duyệt,123/QĐ-UBND,15/03/2024,Có,Không,Đáp ứng,20/03/2025
2,DVC,Hệ thống thông tin giải quyết thủ tục hành chính,"<img src=x onerror=""window.__xss=3"">",3,,Đã trình,,,Có,Có,,
3,CTTDT,Cổng thông tin điện tử tỉnh,ubnd,9,2,Đã phê duyệt,45/QĐ-UBND,31/02/2025,Có,Không,Đáp ứng một phần,
4,HSSK,Hệ thống hồ sơ sức khỏe điện tử,syt,3,,Không rõ,,,Không,Không,,
"""
"""A register with four problems in three rows (one of them markup), and one good row that must not be applied."""


def test_a_broken_spreadsheet_is_refused_whole_with_every_problem_listed(
        browser: Browser, served: tuple[Dashboard, Seeded], tmp_path: Path) -> None:
    dashboard, seeded = served
    broken = tmp_path / "so-dang-ky-loi.csv"
    broken.write_text(BROKEN_REGISTER, encoding="utf-8")
    cli = subprocess.run([SOC, "systems", "import", str(broken), "--inventory", str(INVENTORY),
                          "--db", str(seeded.settings.db)], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "COLUMNS": "500"})
    assert cli.returncode == 2, cli.stdout + cli.stderr
    expected = [line.removeprefix("Lỗi / Error: ") for line in cli.stderr.splitlines() if line.strip()]
    assert len(expected) == 4, expected
    with watched_page(browser, dashboard.origin) as watched:
        watched.sign_in(OPERATOR, PASSWORD)
        page = watched.page
        before = page.request.get(f"{dashboard.origin}/api/v1/systems").json()
        watched.goto("/compliance")
        register = page.locator("section", has=page.locator("h2", has_text="Sổ đăng ký")).first.inner_text()
        page.select_option("#import-kind", "systems")
        page.set_input_files("#import-file", str(broken))
        watched.expected_statuses.add(422)
        with page.expect_navigation():
            page.locator("form.import button[type=submit]").click()
        problems = page.locator("#import-problems li").all_inner_texts()
        assert problems == expected  # every problem, as the command line lists them, the markup as text
        assert any('<img src=x onerror="window.__xss=3">' in problem for problem in problems)
        assert page.evaluate("window.__xss") is None
        assert page.locator("#import-problems").get_attribute("role") == "alert"
        watched.shot("compliance-import-refused")
        assert page.request.get(f"{dashboard.origin}/api/v1/systems").json() == before  # nothing changed
        watched.goto("/compliance")
        assert page.locator("section", has=page.locator("h2", has_text="Sổ đăng ký")).first.inner_text() == register
    assert not [url for url in watched.requests if url.endswith("/x")]
