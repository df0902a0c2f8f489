"""Triage through the API as a SOC defends it: transitions with their rules, comments and assignment in the
finding's history, every change in the audit log with the fingerprint, a risk acceptance that expires and
reopens by itself (the scheduler's health check), and the SLA clock from opening to breach.

Real parts: a real SQLite store, the real services and jobs, FastAPI's TestClient; the example inventory's
portal `https://stp.dongnai.gov.vn/` is only a name here (nothing is scanned).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checks.catalogue import make_finding
from soc.api import create_app
from soc.core.clock import FixedClock, local_date
from soc.core.models import Finding, Observation, Role
from soc.core.settings import Settings
from soc.services.context import ServiceContext, open_context
from soc.services.jobs import run_job
from soc.services.sla import apply_deadlines
from soc.services.users import add_user, create_token
from tests.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "examples" / "dongnai.yaml"
PORTAL = "https://stp.dongnai.gov.vn/"
PASSWORD = "mật-khẩu-thử-nghiệm-2026"


class Api:
    """The app on a real store, with a token per role."""

    def __init__(self, context: ServiceContext, clock: FixedClock) -> None:
        self.context, self.clock = context, clock
        self.client = TestClient(create_app(context.settings, context.backend, clock))
        self.tokens: dict[Role, str] = {}
        for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER):
            add_user(context, f"{role.value}.user", role, PASSWORD)
            self.tokens[role] = create_token(context, f"{role.value}.user")[1]

    def call(self, method: str, path: str, role: Role = Role.OPERATOR, **kwargs: Any) -> Any:
        return self.client.request(method, f"/api/v1{path}", headers={"Authorization": f"Bearer {self.tokens[role]}"},
                                   **kwargs)

    def move(self, fingerprint: str, role: Role = Role.OPERATOR, **body: Any) -> Any:
        return self.call("POST", f"/findings/{fingerprint}/transitions", role, json=body)


def scan(context: ServiceContext, findings: list[Finding]) -> None:
    """One complete TLS observation of the portal seeing `findings`, then the deadlines, as the scan job does."""
    store = context.backend.findings
    run = store.begin_run("dongnai.yaml", 1)
    observation = Observation(collector="tls", portal_url=PORTAL, observed_at=context.clock.now(), complete=True)
    store.record_portal(run.id, PORTAL, [observation], findings)
    store.finish_run(run.id, complete=True)
    apply_deadlines(context, None)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    clock = FixedClock(NOW)
    with open_context(Settings(db=tmp_path / "soc.db", inventory=INVENTORY), clock, "tester") as context:
        yield Api(context, clock)


def test_transitions_follow_the_rules_and_every_change_is_audited_with_the_fingerprint(api: Api) -> None:
    expired, tls10 = (make_finding(PORTAL, "tls.cert.expired", "notAfter 2026-11-01"),
                      make_finding(PORTAL, "tls.protocol.tls10", "TLS 1.0"))
    scan(api.context, [expired, tls10])
    page = api.call("GET", "/findings").json()
    assert {item["fingerprint"] for item in page["items"]} == {expired.fingerprint, tls10.fingerprint}
    assert page["next"] is None and all(item["agency"] == "stp" for item in page["items"])

    assert api.move(expired.fingerprint, Role.VIEWER, status="acknowledged").status_code == 403
    assert api.move(expired.fingerprint, status="acknowledged").json()["finding"]["status"] == "acknowledged"
    refused = api.move(expired.fingerprint, status="false_positive")
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert "comment saying why is required" in refused.json()["detail"]
    no_approver = api.move(tls10.fingerprint, status="risk_accepted", comment="legacy clients", expires="2027-01-15")
    assert "approver" in no_approver.json()["detail"]
    past = api.move(tls10.fingerprint, status="risk_accepted", comment="c", approver="PGĐ Sở", expires="2026-11-01")
    assert past.status_code == 422 and "must be after today" in past.json()["detail"]
    by_hand = api.move(tls10.fingerprint, status="resolved", comment="fixed, I promise")
    assert by_hand.status_code == 422 and "cannot be resolved by hand" in by_hand.json()["detail"]
    accepted = api.move(tls10.fingerprint, status="risk_accepted", comment="máy trạm cũ / legacy clients",
                        approver="Phó Giám đốc Sở", expires="2027-01-15").json()["finding"]
    assert (accepted["status"], accepted["risk_approver"], accepted["sla_state"]) == ("risk_accepted",
                                                                                       "Phó Giám đốc Sở", "none")
    assert accepted["risk_expires"] == "2027-01-14T17:00:00Z"  # 15/01/2027 00:00 in Asia/Ho_Chi_Minh

    audit = api.call("GET", "/audit?action=finding.", Role.ADMIN).json()["items"]
    assert [(entry["action"], entry["subject"], entry["after"]["status"]) for entry in reversed(audit)] == [
        ("finding.triage", expired.fingerprint, "acknowledged"),
        ("finding.triage", tls10.fingerprint, "risk_accepted"),
    ]
    assert all(entry["actor"] == "operator.user" for entry in audit)
    assert api.call("GET", "/audit", Role.OPERATOR).status_code == 403


def test_comments_and_assignment_are_kept_and_the_agency_filter_follows_the_assignment(api: Api) -> None:
    finding = make_finding(PORTAL, "tls.cert.expired", "notAfter 2026-11-01")
    scan(api.context, [finding])
    api.call("POST", f"/findings/{finding.fingerprint}/comments", json={"comment": "đã gọi / phoned the admin"})
    assigned = api.call("POST", f"/findings/{finding.fingerprint}/assignment", json={"agency": "sct"})
    assert assigned.status_code == 200, assigned.json()
    notes = [event["note"] for event in assigned.json()["history"]]
    assert notes == ["opened", "đã gọi / phoned the admin", "assigned to sct"]
    assert api.call("GET", "/findings?agency=sct").json()["items"][0]["fingerprint"] == finding.fingerprint
    assert api.call("GET", "/findings?agency=stp").json()["items"] == []
    unknown = api.call("POST", f"/findings/{finding.fingerprint}/assignment", json={"agency": "nowhere"})
    assert unknown.status_code == 422 and "not an agency" in unknown.json()["detail"]


def test_a_risk_acceptance_expires_and_the_finding_reopens_with_a_new_deadline(api: Api) -> None:
    finding = make_finding(PORTAL, "tls.cert.expired", "notAfter 2026-11-01")  # high: 7 days (level unknown)
    scan(api.context, [finding])
    expires = local_date(api.clock.now()) + timedelta(days=10)
    api.move(finding.fingerprint, status="risk_accepted", comment="renewal ordered", approver="PGĐ",
             expires=expires.isoformat())
    api.clock.advance(timedelta(days=9))
    run_job(api.context, "freshness", api.clock.now())
    assert api.call("GET", f"/findings/{finding.fingerprint}").json()["finding"]["status"] == "risk_accepted"

    api.clock.advance(timedelta(days=1))  # the expiry day has come
    as_scheduler = ServiceContext(api.context.settings, api.context.backend, api.clock, "scheduler")
    run = run_job(as_scheduler, "freshness", api.clock.now())
    assert run.outcome.value == "success", run.error
    detail = api.call("GET", f"/findings/{finding.fingerprint}").json()
    reopened = detail["finding"]
    assert reopened["status"] == "open" and reopened["sla_state"] == "within"
    assert datetime.fromisoformat(reopened["opened_at"]) == api.clock.now()
    assert date.fromisoformat(reopened["due_at"][:10]) == local_date(api.clock.now() + timedelta(days=7))
    assert detail["history"][-1]["actor"] == "scheduler" and "risk acceptance expired" in detail["history"][-1]["note"]
    audit = api.call("GET", "/audit?action=finding.risk_expired", Role.ADMIN).json()["items"]
    assert [entry["subject"] for entry in audit] == [finding.fingerprint]


def test_the_sla_clock_runs_from_opening_to_pre_breach_to_breach_and_is_kept_on_resolution(api: Api) -> None:
    critical = make_finding(PORTAL, "tls.vuln.heartbleed", "heartbleed")  # critical, level unknown: 3 days
    low = make_finding(PORTAL, "tls.protocol.tls13_missing", "no TLS 1.3")  # low: 90 days
    scan(api.context, [critical, low])

    def states() -> dict[str, str]:
        return {item["check_id"]: item["sla_state"] for item in api.call("GET", "/findings").json()["items"]}

    assert states() == {"tls.vuln.heartbleed": "within", "tls.protocol.tls13_missing": "within"}
    api.clock.advance(timedelta(days=2, hours=6))  # past 75% of 3 days
    assert states()["tls.vuln.heartbleed"] == "pre_breach"
    api.clock.advance(timedelta(days=1))
    assert states() == {"tls.vuln.heartbleed": "breached", "tls.protocol.tls13_missing": "within"}
    breached = api.call("GET", "/findings?sla=breached").json()["items"]
    assert [item["check_id"] for item in breached] == ["tls.vuln.heartbleed"]
    kpis = api.call("GET", f"/kpis?as_of={local_date(api.clock.now())}").json()
    stp = next(scope for scope in kpis["agencies"] if scope["id"] == "stp")
    assert stp["sla"]["breached_open"] == 1

    scan(api.context, [low])  # the heartbleed is gone: resolved after its deadline
    resolved = api.call("GET", "/findings?status=resolved").json()["items"]
    assert [(item["check_id"], item["sla_state"]) for item in resolved] == [("tls.vuln.heartbleed", "missed")]
    kpis = api.call("GET", f"/kpis?as_of={local_date(api.clock.now())}").json()
    assert kpis["province"]["sla"] == {"closed_within": 0, "closed_after": 1, "percent": 0.0, "breached_open": 0}


def test_the_security_level_of_the_portal_s_system_chooses_the_deadline(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("""
agencies: [{id: stp, name: Sở Tư pháp}]
portals:
  - {url: "https://a.dongnai.gov.vn/", agency: stp, system: HT-A}
  - {url: "https://b.dongnai.gov.vn/", agency: stp, system: HT-B}
  - {url: "https://c.dongnai.gov.vn/", agency: stp}
systems:
  - {id: HT-A, name: Cổng A, agency: stp, level: 2}
  - {id: HT-B, name: Cổng B, agency: stp, level: 3}
""", encoding="utf-8")
    from soc.inventory import load_inventory

    loaded = load_inventory(inventory)
    clock = FixedClock(NOW)
    with open_context(Settings(db=tmp_path / "soc.db"), clock, "tester") as context:
        store = context.backend.findings
        run = store.begin_run("inventory.yaml", 3)
        for portal in loaded.portals:
            store.record_portal(run.id, portal.url, [Observation(collector="tls", portal_url=portal.url,
                                                                 observed_at=clock.now(), complete=True)],
                                [make_finding(portal.url, "tls.cert.expired", "x")])
        assert apply_deadlines(context, loaded) == 3
        days = {f.portal_url: (f.due_at - clock.now()).days for f in store.list_findings() if f.due_at is not None}
    # high: 15 days on a level-2 system, 7 on level 3, 7 when the level is not known (docs/sla.md)
    assert days == {"https://a.dongnai.gov.vn/": 15, "https://b.dongnai.gov.vn/": 7, "https://c.dongnai.gov.vn/": 7}
