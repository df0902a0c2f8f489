"""HTTP security checks: an `HttpObservation` in, findings out. Pure.

A header sent more than once counts as browsers count it: HSTS by its first field only (RFC 6797 §8.1),
every Content-Security-Policy together (each is enforced), X-Content-Type-Options by the first value of
its fields combined (Fetch), X-Frame-Options by all its values together (HTML's algorithm).
"""

from __future__ import annotations

import re

from checks.catalogue import make_finding
from checks.grading import hsts_min_age
from checks.tls import listed
from soc.core.models import Finding
from soc.core.observations import JUDGED_HEADERS, HttpObservation

VERSION_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
VERSION_PATTERN = re.compile(r"\d+(\.\d+)+|/\s*\d")
MAX_AGE_PATTERN = re.compile(r"max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
FRAME_BLOCKING = frozenset({"deny", "sameorigin"})


def values(obs: HttpObservation, header: str) -> list[str]:
    """Every value of a judged response header, in the order sent (the collector keeps these whole)."""
    if header not in JUDGED_HEADERS:
        raise KeyError(f"{header!r} is not in JUDGED_HEADERS: the collector does not keep it whole")
    return obs.headers.get(header, [])


def first(obs: HttpObservation, header: str) -> str | None:
    """The first value of a judged response header, or None."""
    found = values(obs, header)
    return found[0] if found else None


def _split(obs: HttpObservation, header: str) -> list[str]:
    """The header's fields combined and split on commas, as Fetch's "get, decode, and split" does; [] if absent."""
    found = values(obs, header)
    return [part.strip() for part in ", ".join(found).split(",")] if found else []


def frame_options_protect(obs: HttpObservation) -> bool:
    """X-Frame-Options stops other sites framing the page, as HTML reads all its values together: several
    distinct values block framing when one of them is deny, sameorigin or allowall; a single one must be deny
    or sameorigin (ALLOW-FROM and unknown values are ignored by browsers)."""
    options = {option.lower() for option in _split(obs, "x-frame-options")}
    if len(options) > 1:
        return bool(options & (FRAME_BLOCKING | {"allowall"}))
    return bool(options & FRAME_BLOCKING)


def hsts_max_age(obs: HttpObservation) -> int | None:
    """max-age of the HSTS header; None when the header is absent or unparsable."""
    value = first(obs, "strict-transport-security")
    match = MAX_AGE_PATTERN.search(value or "")
    return int(match.group(1)) if match else None


def _csp_directives(obs: HttpObservation) -> set[str]:
    """Directive names of every policy sent (each Content-Security-Policy field, and each policy in a field)."""
    return {directive.split()[0].lower() for value in values(obs, "content-security-policy")
            for directive in re.split(r"[;,]", value) if directive.strip()}


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
    directives = _csp_directives(obs)
    if not directives:
        findings.append(make_finding(url, "http.header.csp_missing", "no Content-Security-Policy header"))
    if "frame-ancestors" not in directives and not frame_options_protect(obs):
        sent = values(obs, "x-frame-options")
        evidence = (f"X-Frame-Options: {', '.join(sent)[:200]} does not stop framing, and no CSP frame-ancestors"
                    if sent else "neither X-Frame-Options nor CSP frame-ancestors")
        findings.append(make_finding(url, "http.header.frame_options_missing", evidence))
    nosniff = _split(obs, "x-content-type-options")
    if not nosniff or nosniff[0].lower() != "nosniff":
        findings.append(make_finding(url, "http.header.content_type_options_missing",
                                     f"X-Content-Type-Options: {', '.join(nosniff)[:200] or 'absent'}"))
    if first(obs, "referrer-policy") is None:
        findings.append(make_finding(url, "http.header.referrer_policy_missing", "no Referrer-Policy header"))
    disclosed = [f"{name}: {value[:120]}" for name in VERSION_HEADERS for value in values(obs, name)
                 if VERSION_PATTERN.search(value)]
    if disclosed:
        findings.append(make_finding(url, "http.server_version_disclosed", listed(disclosed)))
    return findings


def evaluate_http(obs: HttpObservation) -> list[Finding]:
    """All HTTP findings for one observation."""
    findings = _redirect_findings(obs)
    if obs.error is not None:
        if obs.headers_error is not None:  # the collector's size limit, not the portal's silence: no verdict
            return findings
        return [*findings, make_finding(obs.portal_url, "http.unreachable", obs.error)]
    if obs.headers_error is None:
        findings += _header_findings(obs)
    if obs.mixed_content:
        findings.append(make_finding(obs.portal_url, "http.mixed_content",
                                     f"loaded over http: {listed(obs.mixed_content)}"))
    if obs.security_txt is False:
        findings.append(make_finding(obs.portal_url, "http.security_txt_missing",
                                     "/.well-known/security.txt absent or without Contact:"))
    return findings
