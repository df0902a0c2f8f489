"""HTTP, trust-label and ports checks and the grading rubric, on literal observations (pure code)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from checks import catalogue, make_finding
from checks.grading import annotate_evidence, portal_score, rubric, tls_grade
from checks.http import evaluate_http, hsts_max_age
from checks.ports import evaluate_ports
from checks.trustlabel import badge_matches_host, evaluate_label
from soc.core.observations import (
    HttpObservation,
    LabelObservation,
    OpenPort,
    PortsObservation,
    RedirectHop,
    TrustBadge,
    TrustLabelStatus,
)

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
URL = "https://stp.dongnai.gov.vn/"
HOST = "stp.dongnai.gov.vn"
GOOD_HEADERS = {
    "strict-transport-security": ["max-age=31536000; includeSubDomains"],
    "content-security-policy": ["default-src 'self'; frame-ancestors 'self'"],
    "x-content-type-options": ["nosniff"],
    "referrer-policy": ["no-referrer"],
    "server": ["nginx"],
}
REPO = Path(__file__).resolve().parents[2]


def http(**changes: object) -> HttpObservation:
    base: dict[str, object] = dict(
        portal_url=URL, host=HOST, address="127.0.0.1", observed_at=NOW, start_url=f"http://{HOST}/",
        redirects=[RedirectHop(url=f"http://{HOST}/", status=301, location=URL), RedirectHop(url=URL)],
        reaches_https=True, final_url=URL, status=200, headers=GOOD_HEADERS, security_txt=True,
    )
    base.update(changes)
    return HttpObservation.model_validate(base)


def ids(findings: list) -> set[str]:  # type: ignore[type-arg]
    return {f.check_id for f in findings}


def without(*names: str) -> dict[str, list[str]]:
    return {k: v for k, v in GOOD_HEADERS.items() if k not in names}


def test_clean_http_observation_has_no_findings() -> None:
    assert evaluate_http(http()) == []
    assert http().complete


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"reaches_https": False}, {"http.no_https_redirect"}),
        ({"reaches_https": None}, set()),  # no HTTP service at all: nothing to redirect
        ({"headers": without("strict-transport-security")}, {"http.hsts.missing"}),
        ({"headers": {**GOOD_HEADERS, "strict-transport-security": ["max-age=86400"]}}, {"http.hsts.short_max_age"}),
        ({"headers": {**GOOD_HEADERS, "strict-transport-security": ["includeSubDomains"]}},
         {"http.hsts.short_max_age"}),
        ({"headers": without("content-security-policy")},
         {"http.header.csp_missing", "http.header.frame_options_missing"}),
        ({"headers": {**without("content-security-policy"), "x-frame-options": ["DENY"]}},
         {"http.header.csp_missing"}),
        ({"headers": {**GOOD_HEADERS, "x-content-type-options": ["sniff"]}},
         {"http.header.content_type_options_missing"}),
        ({"headers": without("referrer-policy")}, {"http.header.referrer_policy_missing"}),
        ({"headers": {**GOOD_HEADERS, "server": ["Microsoft-IIS/10.0"]}}, {"http.server_version_disclosed"}),
        ({"headers": {**GOOD_HEADERS, "x-aspnet-version": ["4.0.30319"]}}, {"http.server_version_disclosed"}),
        ({"headers": {**GOOD_HEADERS, "server": ["cloudflare"]}}, set()),
        ({"mixed_content": ["http://cdn.example/app.js"]}, {"http.mixed_content"}),
        ({"security_txt": False}, {"http.security_txt_missing"}),
        ({"security_txt": None, "security_txt_error": "timeout"}, set()),
    ],
)
def test_http_checks(changes: dict[str, object], expected: set[str]) -> None:
    assert ids(evaluate_http(http(**changes))) == expected


def test_unreadable_homepage_gives_only_http_unreachable_and_the_redirect_verdict() -> None:
    obs = http(error="ConnectTimeout", status=None, headers={}, reaches_https=False)
    assert ids(evaluate_http(obs)) == {"http.unreachable", "http.no_https_redirect"}
    assert not obs.complete


def test_hsts_max_age_parsing() -> None:
    assert hsts_max_age(http(headers={"strict-transport-security": ['max-age="15552000"; preload']})) == 15552000
    assert hsts_max_age(http(headers={})) is None


def badge(**changes: object) -> TrustBadge:
    base: dict[str, object] = dict(how="link+img", image_host=HOST, slug="stpdongnaigovvn-1700000001",
                                   slug_domain="stpdongnaigovvn", label_number="1700000001")
    base.update(changes)
    return TrustBadge.model_validate(base)


def status(**changes: object) -> TrustLabelStatus:
    base: dict[str, object] = dict(domain=HOST, source="registry", found=True, status="valid", level="basic",
                                   issued=date(2024, 3, 12), label_id="1700000001")
    base.update(changes)
    return TrustLabelStatus.model_validate(base)


def label(**changes: object) -> LabelObservation:
    base: dict[str, object] = dict(portal_url=URL, host=HOST, observed_at=NOW, page_read=True, badges=[badge()],
                                   registry=status())
    base.update(changes)
    return LabelObservation.model_validate(base)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, set()),
        ({"badges": []}, {"trustlabel.missing"}),
        ({"badges": [badge(image_host="other.gov.vn", slug="othergovvn-1", slug_domain="othergovvn")]},
         {"trustlabel.domain_mismatch"}),
        ({"badges": [badge(slug_domain="othergovvn")]}, {"trustlabel.domain_mismatch"}),
        ({"registry": status(status="revoked")}, {"trustlabel.revoked"}),
        ({"registry": status(status="expired")}, {"trustlabel.expired"}),
        ({"registry": status(expires=date(2026, 1, 1))}, {"trustlabel.expired"}),
        ({"registry": status(found=False)}, {"trustlabel.unverified"}),
        ({"registry": status(found=None, error="registry unreachable")}, {"trustlabel.unverified"}),
        ({"registry": None}, {"trustlabel.unverified"}),
        ({"page_read": False, "badges": []}, set()),  # the page could not be read: the label is unknown
    ],
)
def test_label_checks(changes: dict[str, object], expected: set[str]) -> None:
    assert ids(evaluate_label(label(**changes))) == expected


def test_label_completeness_needs_the_registry_only_when_a_badge_is_shown() -> None:
    assert label().complete
    assert not label(registry=status(found=None)).complete
    assert not label(page_read=False).complete
    assert label(badges=[], badge_for_host=False, registry=status(found=None)).complete  # certainly missing
    assert label(badge_for_host=False, registry=None).complete  # another site's badge: certainly a mismatch


@pytest.mark.parametrize(
    ("candidate", "host", "matches"),
    [
        (badge(), HOST, True),
        (badge(image_host="www.dongnai.gov.vn", slug_domain="dongnaigovvn"), "www.dongnai.gov.vn", True),
        (badge(image_host="dongnai.gov.vn", slug_domain="dongnaigovvn"), "www.dongnai.gov.vn", True),
        (badge(image_host=None), HOST, True),
        (badge(slug_domain=None, slug=None), HOST, True),
        (badge(image_host=None, slug_domain=None, slug=None), HOST, False),  # self-hosted image, no link
        (badge(image_host="evil.vn"), HOST, False),
    ],
)
def test_badge_must_name_the_portal(candidate: TrustBadge, host: str, matches: bool) -> None:
    assert badge_matches_host(candidate, host) is matches


def ports(*open_ports: OpenPort) -> PortsObservation:
    return PortsObservation(portal_url=URL, address="127.0.0.1", observed_at=NOW, ports_scanned="1-1024",
                            open_ports=list(open_ports))


def test_ports_checks_one_finding_per_port() -> None:
    obs = ports(OpenPort(port=443, service="https"), OpenPort(port=3306, service="mysql"),
                OpenPort(port=23, service="telnet"), OpenPort(port=8081, service="blackice-icecap"))
    findings = evaluate_ports(obs, expected={443, 80}, risky={23: "telnet: clear-text logins", 3306: "MySQL"})
    assert sorted((f.check_id, f.detail) for f in findings) == [
        ("ports.risky_open", "23"), ("ports.risky_open", "3306"), ("ports.unexpected_open", "8081")]
    assert "127.0.0.1:3306/tcp open — mysql" in findings[1].evidence


def test_a_declared_risky_port_is_still_risky() -> None:
    findings = evaluate_ports(ports(OpenPort(port=5432)), expected={5432}, risky={5432: "PostgreSQL"})
    assert ids(findings) == {"ports.risky_open"}


def finding(check_id: str) -> object:
    return make_finding(URL, check_id, "evidence")


@pytest.mark.parametrize(
    ("check_ids", "hsts", "grade", "without_trust"),
    [
        ([], 31536000, "A+", None),
        ([], 86400, "A", None),
        ([], None, "A", None),
        (["tls.cert.expiring_soon"], 31536000, "A", None),  # a warning forbids A+
        (["tls.protocol.tls13_missing"], 31536000, "A-", None),
        (["tls.protocol.tls10", "tls.protocol.tls11"], 31536000, "B", None),
        (["tls.protocol.tls10", "tls.vuln.compression"], 31536000, "C", None),
        (["tls.protocol.sslv3"], 31536000, "C", None),
        (["tls.protocol.sslv2", "tls.protocol.tls10"], 31536000, "F", None),
        (["tls.vuln.heartbleed"], 31536000, "F", None),
        (["tls.cert.expired"], 31536000, "T", "A"),
        (["tls.cert.untrusted", "tls.protocol.tls10"], 31536000, "T", "B"),
        (["tls.cert.revoked"], 31536000, "T", "A"),  # as expired: T, and a finding forbids A+
        (["tls.cert.revoked", "tls.protocol.tls13_missing"], 31536000, "T", "A-"),
    ],
)
def test_tls_grade(check_ids: list[str], hsts: int | None, grade: str, without_trust: str | None) -> None:
    result = tls_grade([make_finding(URL, c, "e") for c in check_ids], True, hsts)
    assert (result.tls_grade, result.grade_without_trust) == (grade, without_trust)


def test_unassessed_tls_has_no_grade_and_no_score() -> None:
    result = portal_score(tls_grade([], False, None), [], ["tls", "http"])
    assert (result.tls_grade, result.score) == (None, None)


def test_score_weights_the_assessed_categories() -> None:
    findings = [make_finding(URL, "http.hsts.missing", "e"), make_finding(URL, "ports.risky_open", "e", "23")]
    grade = portal_score(tls_grade(findings, True, None), findings, ["tls", "http", "ports"])
    assert grade.category_scores == {"tls": 95, "http": 85, "ports": 70}
    assert grade.score == round((0.4 * 95 + 0.2 * 85 + 0.2 * 70) / 0.8)


def test_capping_findings_carry_the_rubric_reason() -> None:
    annotated = annotate_evidence([make_finding(URL, "tls.protocol.tls10", "TLSv1.0 accepted")])
    assert annotated[0].evidence.endswith("capped at B: TLS 1.0 enabled")
    assert annotated[0].fingerprint == make_finding(URL, "tls.protocol.tls10", "x").fingerprint


def test_rubric_names_only_catalogued_checks_and_is_documented() -> None:
    rules = rubric()
    assert set(rules.caps) | set(rules.trust_caps) <= set(catalogue())
    docs = (REPO / "docs" / "grading.md").read_text(encoding="utf-8")
    for check_id, cap in rules.caps.items():
        assert f"`{check_id}`" in docs and cap.reason.en in docs, check_id
    for check_id in rules.trust_caps:
        assert f"`{check_id}`" in docs, check_id
