"""What a scanned portal controls never runs in the dashboard: the lab's `hostile_text` portal (page title, `Server`
header and certificate O/OU carrying `<script>` and `"><img src=x onerror=…>` payloads) is really scanned, then every
page that shows it is opened in chromium.

Proof that nothing ran: `window.__xss` (what both payloads would set) stays undefined, no dialog opened, no request
for `x` (the image the second payload names) was made, the browser reported no CSP violation (the page watcher
fails on any), and the pages hold no element the payloads would create. Proof that it is shown as text: the
payloads are there, character for character, in the text a person reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser

from soc.core.clock import SYSTEM_CLOCK
from soc.core.models import Role, StoredFinding
from soc.core.settings import AuthSettings, Settings
from soc.inventory import load_inventory
from soc.lab import PortalLab
from soc.lab.cases import ATTRIBUTE_PAYLOAD, HOSTILE_SERVER, SCRIPT_PAYLOAD
from soc.services.context import open_context
from soc.services.scans import plan_scan, scan_portals
from soc.services.users import add_user
from tests.e2e.browser import Dashboard, Watched, live_dashboard, watched_page

pytestmark = [pytest.mark.lab,
              # The standard root stores hold old roots with negative serials (the `soc` command hides this too).
              pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")]
LAB_BASE = "127.0.21."
"""Away from the shared lab (127.0.20.x) and the demo (127.0.10.x)."""
USER, PASSWORD = "hoa.operator", "mật-khẩu-xss-2026-dài"
MARKUP = "main script, main img, main [onerror], main iframe, main svg script"
"""Elements none of our pages has in its main part, and each payload would create."""


@dataclass(frozen=True)
class Scanned:
    """The served dashboard over one real scan of the hostile portal."""

    dashboard: Dashboard
    url: str
    run_id: str
    findings: dict[str, StoredFinding]
    """check id → the stored finding."""


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    work = tmp_path_factory.mktemp("xss")
    with PortalLab(work / "lab", cases=["hostile_text"], base_address=LAB_BASE) as lab:
        settings = Settings(db=work / "soc.db", inventory=lab.inventory_path,
                            auth=AuthSettings(login_rate_per_minute=1000))
        context = open_context(settings, SYSTEM_CLOCK, "tester")
        inventory = load_inventory(lab.inventory_path)
        portals, collectors = plan_scan(inventory, lab.inventory_path.name, [], None)
        report = scan_portals(context, inventory, lab.inventory_path.name, portals, collectors)
        url = lab.case("hostile_text").url
    # The lab is stopped: the dashboard shows what was stored and never contacts a portal.
    with context:
        add_user(context, USER, Role.OPERATOR, PASSWORD)
        stored = {finding.check_id: finding for finding in context.backend.findings.run_findings(report.run.id)}
        assert set(stored) == {"tls.cert.self_signed", "http.server_version_disclosed"}
        with live_dashboard(context, SYSTEM_CLOCK) as dashboard:
            yield Scanned(dashboard, url, report.run.id, stored)


def nothing_ran(watched: Watched, page_name: str) -> None:
    """No payload ran or made an element on the page now open (the watcher checks dialogs and CSP at the end)."""
    page = watched.page
    assert page.evaluate("typeof window.__xss") == "undefined", page_name
    assert page.locator(MARKUP).count() == 0, page_name
    assert not [url for url in watched.requests if url.rstrip("/").endswith("/x")], page_name


def text_of(watched: Watched) -> str:
    """What a person reads in the page's main part."""
    return watched.page.locator("main").inner_text()


def test_no_payload_runs_and_every_payload_reads_as_text(browser: Browser, scanned: Scanned) -> None:
    self_signed = scanned.findings["tls.cert.self_signed"]
    disclosed = scanned.findings["http.server_version_disclosed"]
    assert SCRIPT_PAYLOAD in disclosed.evidence and ATTRIBUTE_PAYLOAD in disclosed.evidence
    with watched_page(browser, scanned.dashboard.origin) as watched:
        page = watched.page
        watched.sign_in(USER, PASSWORD)
        nothing_ran(watched, "overview")

        watched.goto("/findings")
        nothing_ran(watched, "findings")
        listed = text_of(watched)
        assert f"server: {HOSTILE_SERVER}" in listed  # the evidence's first line, as text
        watched.shot("xss-findings")

        watched.goto(f"/findings/{disclosed.fingerprint}")
        nothing_ran(watched, "finding (Server header)")
        assert page.locator("pre.evidence").inner_text() == disclosed.evidence
        watched.shot("xss-finding-server")

        watched.goto(f"/findings/{self_signed.fingerprint}")
        nothing_ran(watched, "finding (certificate)")
        evidence = page.locator("pre.evidence").inner_text()
        assert evidence == self_signed.evidence
        assert "O=\\<script\\>window.__xss=1\\</script\\>" in evidence  # RFC 4514 escapes '<', '>' and '"'
        assert 'OU=\\"\\>\\<img src=x onerror=\\"window.__xss=2\\"\\>' in evidence

        watched.goto("/portals")
        nothing_ran(watched, "portals")
        page.locator("tr", has_text=scanned.url).locator("a[href^='/portals/']").first.click()
        page.wait_for_load_state()
        nothing_ran(watched, "portal")
        shown = text_of(watched)
        assert SCRIPT_PAYLOAD + ATTRIBUTE_PAYLOAD in shown  # the page title
        assert HOSTILE_SERVER in shown  # the Server header
        assert "O=\\<script\\>window.__xss=1\\</script\\>" in shown  # the certificate's subject
        watched.shot("xss-portal")

        watched.goto("/agencies/lab")
        nothing_ran(watched, "agency")
        watched.goto(f"/runs/{scanned.run_id}")
        nothing_ran(watched, "run")
        watched.goto("/?lang=en")
        nothing_ran(watched, "overview (English)")
    assert watched.dialogs == [] and watched.csp_violations == [] and watched.blocked == []


def test_the_dashboard_sends_its_strict_headers_with_the_hostile_pages(browser: Browser, scanned: Scanned) -> None:
    with watched_page(browser, scanned.dashboard.origin) as watched:
        watched.sign_in(USER, PASSWORD)
        fingerprint = scanned.findings["tls.cert.self_signed"].fingerprint
        response = watched.page.goto(f"{scanned.dashboard.origin}/findings/{fingerprint}")
        assert response is not None and response.status == 200
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        links = watched.page.locator(f"a[href^='{scanned.url}']").all()
        for link in links:  # a link to the scanned site, if any, gives it nothing
            assert set((link.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}

