"""The reports page in a real browser (Debian's chromium): an operator generates this month's report (to date)
from the form, finds it in the archive, opens the same document as HTML and downloads the PDF exactly as
archived; a viewer sees the archive without the form.

Every page is watched (tests/e2e/browser.py): a request to another origin, a console error, a CSP violation or
a dialog fails the test — the report's HTML included, under its own CSP. Screenshots:
$SOC_SCREENSHOTS/reports-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from soc.core.clock import SYSTEM_CLOCK, today
from soc.core.report_records import month_period
from soc.services.context import open_context
from tests.e2e.browser import Dashboard, live_dashboard, watched_page
from tests.e2e.dashboard_data import OPERATOR, PASSWORD, VIEWER, seed, settings_for


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The example register and coverage and one complete scan, served."""
    with open_context(settings_for(tmp_path_factory.mktemp("reports")), SYSTEM_CLOCK, "tester") as context:
        seed(context)
        with live_dashboard(context, SYSTEM_CLOCK) as served:
            yield served


def test_an_operator_generates_a_report_and_reads_it_as_html_and_pdf(browser: Browser,
                                                                      dashboard: Dashboard) -> None:
    period = month_period(today(SYSTEM_CLOCK))  # this month, to date: the seeded scan is in it
    with watched_page(browser, dashboard.origin) as operator:
        operator.sign_in(OPERATOR, PASSWORD)
        page = operator.page
        page.get_by_role("link", name="Báo cáo", exact=True).click()
        expect(page.locator("h1")).to_have_text("Báo cáo gửi lãnh đạo")
        expect(page.get_by_text("Chưa có báo cáo nào được lập.")).to_be_visible()
        page.fill("#g-period", period)
        with page.expect_navigation():
            page.get_by_role("button", name="Lập báo cáo").click()
        expect(page.get_by_role("status")).to_have_text("Báo cáo đã được lập và lưu trữ.")
        [report] = dashboard.context.backend.reports.list()
        row = page.locator("table tbody tr").first
        expect(row).to_contain_text(period)
        expect(row).to_contain_text("tháng")
        expect(row).to_contain_text(OPERATOR)
        expect(row).to_contain_text(report.sha256[:16])
        operator.shot("reports-list")
        link = row.get_by_role("link", name="HTML")
        html_url = f"/api/v1/reports/{report.id}.html"
        assert link.get_attribute("href") == html_url and link.get_attribute("target") == "_blank"
        operator.goto(html_url)  # in the watched page: a CSP violation of the report's own page fails the test
        expect(page.locator("body")).to_contain_text("SOC")
        operator.shot("reports-html")
        operator.goto("/reports")
        with page.expect_download() as download:
            row.get_by_role("link", name="PDF").click()
        archived = dashboard.context.backend.reports.get(report.id)
        saved = download.value.path()
        assert archived is not None and saved.read_bytes() == archived.pdf


def test_a_viewer_sees_the_archive_without_the_form(browser: Browser, dashboard: Dashboard) -> None:
    with watched_page(browser, dashboard.origin) as viewer:
        viewer.sign_in(VIEWER, PASSWORD)
        viewer.goto("/reports?lang=en")
        page = viewer.page
        expect(page.locator("h1")).to_have_text("Reports to leadership")
        assert page.locator("form[action='/reports']").count() == 0
        viewer.shot("reports-viewer")
