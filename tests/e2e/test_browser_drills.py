"""Drills in a real browser (Debian's chromium): the facilitator creates a session from the library, runs it from
the console (start, release an inject early, advance, decide, record an action, end), and the participants'
screen, open in another browser context, follows by itself — it shows what is released and never the hints,
the upcoming injects or the expectations. A viewer sees the console without a single form.

Every page is watched (tests/e2e/browser.py): a request to another origin, a console error, a CSP violation or
a dialog fails the test. Screenshots: $SOC_SCREENSHOTS/drills-*.png.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from soc.core.clock import SYSTEM_CLOCK
from soc.core.models import Role
from soc.services.context import open_context
from soc.services.drills import PLAYBOOKS
from soc.services.users import add_user
from tests.e2e.browser import PHONE, Dashboard, live_dashboard, watched_page
from tests.e2e.dashboard_data import PASSWORD, settings_for

FACILITATOR, VIEWER = "hoa.incident", "khanh.viewer"
SCENARIO = "qlvb-ransomware"
BROKEN = """id: broken-drill
title: {vi: "Kịch bản thiếu tình huống phát hiện", en: "Scenario without its detection inject"}
summary: {vi: "x", en: "x"}
target: {system: {vi: "Cổng dịch vụ công", en: "Public service portal"}, level: 2}
duration: 2h
detection: inj-missing
objectives: [{id: o-1, title: {vi: "Mục tiêu", en: "Objective"}}]
roles: [soc_analyst]
injects: [{id: inj-1, phase: detection, title: {vi: "Cảnh báo", en: "Alert"}, at: +10m,
           read_aloud: {vi: "Đọc", en: "Read"}}]
expectations: [{id: e-1, phase: detection, objective: o-1, role: soc_analyst, action: {vi: "Làm", en: "Do"},
                deadline: {after: inj-1, within: +30m}}]
"""
HINTS = ("Yêu cầu GET tới cv.aspx với tham số cmd là dấu hiệu webshell.",
         "Kết nối SMB hàng loạt thường đi trước mã hoá dữ liệu.")
"""The facilitator's hints of the first injects (never on the participants' screen)."""
PEOPLE = "Nguyễn Văn An, incident_commander\nTrần Thị Bình, soc_analyst\nLê Văn Cường, system_owner\n" \
         "Phạm Thu Dung, communications\nHoàng Minh Em, leadership\nVũ Thị Giang, authority_liaison"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A store with a facilitator (incident role) and a viewer, served with a library of the shipped ransomware
    scenario and a broken one."""
    directory = tmp_path_factory.mktemp("drills")
    library = directory / "library"
    library.mkdir()
    shutil.copy(PLAYBOOKS / f"{SCENARIO}.yaml", library / f"{SCENARIO}.yaml")
    (library / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    with open_context(settings_for(directory), SYSTEM_CLOCK, "tester") as context:
        add_user(context, FACILITATOR, Role.INCIDENT, PASSWORD)
        add_user(context, VIEWER, Role.VIEWER, PASSWORD)
        with live_dashboard(context, SYSTEM_CLOCK) as served:
            served.app.state.drill_library = library
            yield served


def test_the_console_releases_an_inject_early_and_the_participants_screen_follows(
        browser: Browser, dashboard: Dashboard) -> None:
    with watched_page(browser, dashboard.origin) as facilitator, watched_page(browser, dashboard.origin) as screen:
        facilitator.sign_in(FACILITATOR, PASSWORD)
        page = facilitator.page
        page.get_by_role("link", name="Diễn tập").click()
        expect(page.locator("h1")).to_have_text("Diễn tập ứng cứu sự cố")
        broken = page.locator("#scenario-broken-drill")
        expect(broken).to_contain_text("Không hợp lệ")
        expect(broken).to_contain_text("broken.yaml:6: detection: no inject 'inj-missing'")
        assert page.locator("#c-scenario option").all_inner_texts() == [
            "Khai thác lỗ hổng Hệ thống Quản lý văn bản dẫn tới mã độc tống tiền"]  # the broken one is not offered
        page.fill("#c-people", PEOPLE)
        facilitator.shot("drills-library")
        with page.expect_navigation():
            page.get_by_role("button", name="Tạo phiên diễn tập").click()
        expect(page.get_by_role("status")).to_have_text("Đã tạo phiên diễn tập.")
        session = re.search(r"/drills/sessions/([0-9a-f]+)", page.url)
        assert session is not None, page.url
        console = f"/drills/sessions/{session.group(1)}"
        with page.expect_navigation():
            page.get_by_role("button", name="Bắt đầu diễn tập").click()
        expect(page.locator("#inject-inj-alert summary")).to_contain_text("Cảnh báo tải tệp bất thường")
        expect(page.locator("#inject-inj-alert .hint-box")).to_contain_text(HINTS[0])  # the facilitator's own

        screen.sign_in(VIEWER, PASSWORD)
        screen.goto(f"{console}/participant")
        shown = screen.page
        expect(shown.locator("h1")).to_have_text("Khai thác lỗ hổng Hệ thống Quản lý văn bản dẫn tới mã độc tống tiền")
        expect(shown.locator("article.screen-inject")).to_have_count(1)
        expect(shown.locator("#inject-inj-alert .read-aloud")).to_contain_text("08:15 thứ Hai")
        expect(shown.locator("#inject-inj-alert pre.evidence")).to_contain_text("cv.aspx?cmd=whoami")
        expect(shown.locator("#inject-inj-alert .questions li")).to_have_count(2)
        first_clock = shown.locator("[data-drill-clock]").inner_text()
        assert re.fullmatch(r"\+00:0\d:\d\d", first_clock), first_clock

        row = page.locator("#upcoming-inj-press")  # the press enquiry, due at +5h: released now
        expect(row).to_contain_text("Báo chí hỏi")
        with page.expect_navigation():
            row.get_by_role("button", name="Phát ngay").click()
        expect(page.get_by_role("status")).to_have_text("Đã phát tình huống.")
        expect(page.locator("#inject-inj-press summary")).to_contain_text("phát sớm")
        facilitator.shot("drills-console")

        # The screen polls its JSON and reloads on the new event: the inject appears without anyone touching it.
        expect(shown.locator("#inject-inj-press")).to_be_visible(timeout=15_000)
        expect(shown.locator("article.screen-inject").first).to_have_id("inject-inj-press")
        expect(shown.locator("#inject-inj-press .read-aloud")).to_contain_text("Phóng viên một báo điện tử gọi")
        body = shown.locator("body").inner_text()
        for hidden in (*HINTS, "Xác nhận webshell", "Dò quét mạng nội bộ", "Gợi ý", "Yêu cầu cần đạt",
                       "Xác minh cảnh báo, mở phiếu sự cố"):
            assert hidden not in body, hidden
        assert shown.locator("form").count() == 0
        screen.shot("drills-participant")

        with page.expect_navigation():
            page.get_by_role("button", name=re.compile(r"^Tiến tới tình huống kế tiếp")).click()
        expect(page.locator("#inject-inj-webshell")).to_be_visible()
        page.fill("#advance-by", "+1h15m")
        with page.expect_navigation():
            page.get_by_role("button", name="Tiến", exact=True).click()
        expect(page.locator("#decisions .decision.open h3")).to_have_text(
            "Cô lập Hệ thống Quản lý văn bản ngay bây giờ?")
        with page.expect_navigation():
            page.get_by_role("button", name="Cô lập ngay, chuyển sang gửi văn bản giấy/thư điện tử công vụ").click()
        expect(page.get_by_role("status")).to_have_text("Đã ghi nhận quyết định.")
        page.select_option("#act-expectation", "e-contain")
        page.select_option("#act-participant", "Nguyễn Văn An")
        page.fill("#act-note", "Đã tách QLVB-WEB01 khỏi mạng")
        with page.expect_navigation():
            page.get_by_role("button", name="Ghi nhận", exact=True).click()
        expect(page.locator("#expectation-e-contain")).to_contain_text("đã thực hiện")
        expect(page.locator("#expectation-e-contain")).to_contain_text("Nguyễn Văn An")
        page.fill("#note-text", "Đội thống nhất cô lập sau 5 phút")
        with page.expect_navigation():
            page.get_by_role("button", name="Lưu ghi chú").click()
        expect(page.locator("#notes .note")).to_contain_text("Đội thống nhất cô lập sau 5 phút")
        facilitator.shot("drills-console-running")

        expect(shown.locator(".screen-decision")).to_have_count(0, timeout=15_000)  # taken: gone from the screen
        expect(shown.locator("#inject-inj-lateral")).to_be_visible()
        screen.shot("drills-participant-later")

        page.check("#end-confirm")
        with page.expect_navigation():
            page.get_by_role("button", name="Kết thúc diễn tập").click()
        expect(page.get_by_role("status")).to_have_text("Diễn tập đã kết thúc và được chấm điểm.")
        result = page.locator("#result")
        expect(result.locator(".score strong")).to_have_text(re.compile(r"^\d+(,\d)?$"))
        expect(result.locator("table.phases tbody tr").first).to_contain_text("Phát hiện và tiếp nhận")
        expect(result.locator("table.actions tbody tr").first).to_be_visible()
        assert page.locator("form[action$='/command']").count() == 0  # nothing to command once ended
        report = f"/api/v1/drills/sessions/{session.group(1)}/report"
        html_link = result.get_by_role("link", name="Báo cáo sau diễn tập (HTML)")
        assert html_link.get_attribute("href") == f"{report}?format=html&lang=vi"
        pdf_link = result.get_by_role("link", name="Báo cáo sau diễn tập (PDF)")
        assert pdf_link.get_attribute("href") == f"{report}?format=pdf&lang=vi"
        first = result.locator("table.actions tbody tr").first
        first.locator("input[name=note]").fill("Đã bổ sung quy trình")
        with page.expect_navigation():
            first.get_by_role("button", name="Đánh dấu đã khắc phục").click()
        expect(page.get_by_role("status")).to_have_text("Đã đánh dấu hành động khắc phục là đã thực hiện.")
        expect(result.locator(".action-status.done")).to_have_count(1)
        facilitator.shot("drills-console-ended")

        facilitator.goto(html_link.get_attribute("href") or "")
        expect(page.locator("body")).to_contain_text("Khai thác lỗ hổng Hệ thống Quản lý văn bản")
        facilitator.shot("drills-report")

        # The participants' screen opened earlier reloads itself when the session changes (the end, an action
        # marked done): navigating it now could race that reload, so the phone views load in a page opened after.
        for watched, path, name in ((facilitator, f"{console}/participant", "drills-participant-phone"),
                                    (facilitator, console, "drills-console-phone")):
            watched.page.set_viewport_size(PHONE)
            watched.goto(path)
            width = watched.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (path, width)
            watched.shot(name)


def test_a_viewer_sees_the_console_without_a_form(browser: Browser, dashboard: Dashboard) -> None:
    with watched_page(browser, dashboard.origin) as facilitator:
        facilitator.sign_in(FACILITATOR, PASSWORD)
        facilitator.goto("/drills")
        page = facilitator.page
        with page.expect_navigation():
            page.get_by_role("button", name="Tạo phiên diễn tập").click()
        console = page.url.split("?")[0].removeprefix(dashboard.origin)
    with watched_page(browser, dashboard.origin) as viewer:
        viewer.sign_in(VIEWER, PASSWORD)
        viewer.goto("/drills")
        assert viewer.page.locator("form[action='/drills/sessions']").count() == 0
        viewer.goto(console)
        expect(viewer.page.locator("h1")).to_contain_text("Khai thác lỗ hổng")
        assert viewer.page.locator("main form").count() == 0
        viewer.shot("drills-console-viewer")
        viewer.expected_statuses.add(403)
        forged = viewer.page.request.post(f"{dashboard.origin}{console}/command",
                                          form={"csrf_token": viewer.csrf_token(), "command": "start"})
        assert forged.status == 403  # the viewer's own session and token: the role refuses it
    with watched_page(browser, dashboard.origin) as facilitator:
        facilitator.sign_in(FACILITATOR, PASSWORD)
        facilitator.goto(console)
        expect(facilitator.page.locator("h1 .drill-status")).to_have_text("đã lên kế hoạch")  # nothing started
