"""HTTP security checks: an `HttpObservation` in, findings out. Pure."""

from __future__ import annotations

import re

from checks.catalogue import make_finding
from checks.grading import hsts_min_age
from checks.tls import listed
from soc.core.models import Finding
from soc.core.observations import HttpObservation

VERSION_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
VERSION_PATTERN = re.compile(r"\d+(\.\d+)+|/\s*\d")
MAX_AGE_PATTERN = re.compile(r"max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def first(obs: HttpObservation, header: str) -> str | None:
    """The first value of a response header, or None."""
    values = obs.headers.get(header)
    return values[0] if values else None


def hsts_max_age(obs: HttpObservation) -> int | None:
    """max-age of the HSTS header; None when the header is absent or unparsable."""
    value = first(obs, "strict-transport-security")
    match = MAX_AGE_PATTERN.search(value or "")
    return int(match.group(1)) if match else None


def _csp(obs: HttpObservation) -> str:
    return " ".join(obs.headers.get("content-security-policy", [])).lower()


def _redirect_findings(obs: HttpObservation) -> list[Finding]:
    if obs.reaches_https is not False:
        return []
    chain = " → ".join(f"{hop.url} [{hop.status or hop.refused}]" for hop in obs.redirects)
    return [make_finding(obs.portal_url, "http.no_https_redirect", f"http chain: {chain}")]


def _header_findings(obs: HttpObservation) -> list[Finding]:
    url, findings = obs.portal_url, []
    hsts = first(obs, "strict-transport-security")
    age, minimum = hsts_max_age(obs), hsts_min_age()
    if hsts is None:
        findings.append(make_finding(url, "http.hsts.missing", "no Strict-Transport-Security header"))
    elif age is None or age < minimum:
        findings.append(make_finding(url, "http.hsts.short_max_age",
                                     f"Strict-Transport-Security: {hsts[:200]} (needs max-age >= {minimum})"))
    csp = _csp(obs)
    if not csp:
        findings.append(make_finding(url, "http.header.csp_missing", "no Content-Security-Policy header"))
    if first(obs, "x-frame-options") is None and "frame-ancestors" not in csp:
        findings.append(make_finding(url, "http.header.frame_options_missing",
                                     "neither X-Frame-Options nor CSP frame-ancestors"))
    if (first(obs, "x-content-type-options") or "").strip().lower() != "nosniff":
        findings.append(make_finding(url, "http.header.content_type_options_missing",
                                     f"X-Content-Type-Options: {first(obs, 'x-content-type-options') or 'absent'}"))
    if first(obs, "referrer-policy") is None:
        findings.append(make_finding(url, "http.header.referrer_policy_missing", "no Referrer-Policy header"))
    disclosed = [f"{name}: {value[:120]}" for name in VERSION_HEADERS for value in obs.headers.get(name, [])
                 if VERSION_PATTERN.search(value)]
    if disclosed:
        findings.append(make_finding(url, "http.server_version_disclosed", listed(disclosed)))
    return findings


def evaluate_http(obs: HttpObservation) -> list[Finding]:
    """All HTTP findings for one observation."""
    findings = _redirect_findings(obs)
    if obs.error is not None:
        return [*findings, make_finding(obs.portal_url, "http.unreachable", obs.error)]
    findings += _header_findings(obs)
    if obs.mixed_content:
        findings.append(make_finding(obs.portal_url, "http.mixed_content",
                                     f"loaded over http: {listed(obs.mixed_content)}"))
    if obs.security_txt is False:
        findings.append(make_finding(obs.portal_url, "http.security_txt_missing",
                                     "/.well-known/security.txt absent or without Contact:"))
    return findings
