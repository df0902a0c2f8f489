"""The store the browser tests look at: the example inventory, its register and coverage files, a scan run with
findings on several portals, and one user of each role the dashboard tells apart (operator, viewer, admin).

Everything is written through the services (or the store's own recording calls, as a scan does) on the system
clock: `soc compliance --json` is run on the same store by the tests, and it knows no other clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from checks.catalogue import make_finding
from soc.core.clock import SYSTEM_CLOCK
from soc.core.models import Finding, Observation, PortalScan, Role, Severity
from soc.core.settings import AuthSettings, Settings
from soc.inventory import load_inventory
from soc.services import register as register_service
from soc.services.context import ServiceContext
from soc.services.sla import apply_deadlines
from soc.services.users import add_user

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
INVENTORY = EXAMPLES / "dongnai.yaml"
PASSWORD = "mật-khẩu-trình-duyệt-2026"
OPERATOR, VIEWER, ADMIN = "lan.operator", "minh.viewer", "an.admin"
USERS = {OPERATOR: Role.OPERATOR, VIEWER: Role.VIEWER, ADMIN: Role.ADMIN}

REASONS = {"T": ["grade T: certificate expired", "capped at B: TLS 1.0 enabled"],
           "B": ["capped at B: TLS 1.1 enabled", "capped at B: weak cipher suites (RC4)"]}
PORTALS: dict[str, tuple[str, int, list[Finding]]] = {
    "https://stp.dongnai.gov.vn/": ("T", 40, [
        make_finding("https://stp.dongnai.gov.vn/", "tls.cert.expired", "notAfter 2026-11-01 (31 days ago)"),
        make_finding("https://stp.dongnai.gov.vn/", "tls.protocol.tls10", "TLS 1.0 accepted"),
        make_finding("https://stp.dongnai.gov.vn/", "http.hsts.missing", "no Strict-Transport-Security header"),
    ]),
    "https://syt.dongnai.gov.vn/": ("B", 72, [
        make_finding("https://syt.dongnai.gov.vn/", "tls.protocol.tls11", "TLS 1.1 accepted"),
        make_finding("https://syt.dongnai.gov.vn/", "tls.cipher.weak", "RC4-SHA", severity=Severity.MEDIUM),
        make_finding("https://syt.dongnai.gov.vn/", "http.security_txt_missing", "/.well-known/security.txt: 404"),
    ]),
    "https://www.dongnai.gov.vn/": ("A", 95, [
        make_finding("https://www.dongnai.gov.vn/", "http.server_version_disclosed", "server: nginx/1.18.0"),
    ]),
    "https://sct.dongnai.gov.vn/": ("A+", 100, []),
}
"""Portal → (grade, score, findings) of the seeded run."""


@dataclass(frozen=True)
class Seeded:
    """What the tests need to know about the seeded store."""

    settings: Settings
    run_id: str
    fingerprints: dict[str, str]
    """`portal check_id` → fingerprint."""


def settings_for(directory: Path) -> Settings:
    """The dashboard's settings: the store in `directory`, the example inventory, a sign-in rate tests never hit."""
    return Settings(db=directory / "soc.db", inventory=INVENTORY, auth=AuthSettings(login_rate_per_minute=1000))


def seed(context: ServiceContext) -> Seeded:
    """Users, the register and coverage of the examples, and one complete run (see the module's docstring)."""
    assert context.clock is SYSTEM_CLOCK, "the CLI the tests compare with runs on the system clock"
    for name, role in USERS.items():
        add_user(context, name, role, PASSWORD)
    inventory = load_inventory(INVENTORY)
    register_service.import_systems(context, EXAMPLES / "he-thong-thong-tin.csv", inventory)
    register_service.import_coverage(context, EXAMPLES / "phong-chong-ma-doc.csv", inventory)
    store = context.backend.findings
    run = store.begin_run(INVENTORY.name, len(PORTALS))
    fingerprints: dict[str, str] = {}
    for url, (grade, score, findings) in PORTALS.items():
        now = context.clock.now()
        observation = Observation(collector="tls", portal_url=url, observed_at=now, complete=True,
                                  data={"protocols": ["TLSv1.2", "TLSv1.3"]})
        assessment = PortalScan(run_id=run.id, portal_url=url, recorded_at=now,
                                collectors={"tls": True, "http": True}, tls_grade=grade, score=score,
                                label_valid=grade.startswith("A"), reasons=REASONS.get(grade, []))
        store.record_portal(run.id, url, [observation], findings, assessment)
        fingerprints.update({f"{url} {finding.check_id}": finding.fingerprint for finding in findings})
    store.finish_run(run.id, complete=True)
    apply_deadlines(context, inventory)  # as the scheduled scan does after a run
    return Seeded(context.settings, run.id, fingerprints)
