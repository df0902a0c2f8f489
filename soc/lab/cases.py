"""The portal lab's catalogue: each deliberately bad configuration and what a scan must report."""

from __future__ import annotations

import ipaddress
import json
import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from soc.lab.pki import LeafSpec
from soc.lab.web import GOOD_HEADERS, Badge, HttpProfile, Redirect

LAB_DOMAIN = "lab.soc.test"
HOSTS_PER_BLOCK = 249
"""Portal addresses use .1 … .249 of each /24; .250 of the first one is the AIA server."""
AIA_HOST_OCTET = 250
REGISTRY_HOST_OCTET = 251

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
RISKY_LAB_PORTS = (3306, 6379)
UNEXPECTED_LAB_PORT = 8081
LEGACY_CIPHERS = "ECDHE+AES:@SECLEVEL=0"
NULL_ANON_STATIC_RSA_CIPHERS = "ECDHE+AESGCM:NULL-SHA256:AECDH-AES128-SHA:AES128-GCM-SHA256:@SECLEVEL=0"
DHE_CIPHERS = "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0"
MANY_SANS = 500
"""Names in the many_sans certificate (more than the 100 the observation stores)."""
OVERSIZED_SANS = 6000
"""Names in the cert_too_large certificate: a Certificate message of ~330 KB."""
UNREACHABLE = frozenset({"tls.unreachable", "http.unreachable"})
"""A portal that never completes a TLS handshake: neither TLS nor the homepage can be assessed."""


class Behaviour(StrEnum):
    """What a lab server does with a TCP connection."""

    TLS = "tls"
    REFUSED = "refused"
    SILENT = "silent"
    GARBAGE = "garbage"
    RESET = "reset"


@dataclass(frozen=True)
class LabCase:
    """One running lab portal: where it listens and what a scan of it must report."""

    name: str
    host: str
    address: str
    port: int
    expected: frozenset[str]
    description: str
    http_url: str | None = None
    """The case's http:// listener (None when it has none)."""
    slug: str = ""
    """Registry slug of the case's trust label."""

    @property
    def url(self) -> str:
        """The portal URL, e.g. "https://expired.lab.soc.test:8443/" (no port when it is 443)."""
        if self.port == 443:
            return f"https://{self.host}/"
        return f"https://{self.host}:{self.port}/"


@dataclass(frozen=True)
class TLSProfile:
    """Server-side TLS settings of a case."""

    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: str = MODERN_CIPHERS
    send_issuer: bool = True
    """Send the leaf's issuer after the leaf (False: leaf only)."""
    dh1024: bool = False


@dataclass(frozen=True)
class CaseSpec:
    """The definition of a lab case, before it is bound to an address and port."""

    name: str
    expected: frozenset[str]
    description: str
    behaviour: Behaviour = Behaviour.TLS
    leaf: LeafSpec = field(default_factory=LeafSpec)
    tls: TLSProfile = field(default_factory=TLSProfile)
    http: HttpProfile = field(default_factory=HttpProfile)


def _tls(
    name: str,
    expected: set[str],
    description: str,
    leaf: LeafSpec | None = None,
    tls: TLSProfile | None = None,
    http: HttpProfile | None = None,
) -> CaseSpec:
    """A TLS case; the leaf, the server settings and the web behaviour default to the good portal's."""
    return CaseSpec(name, frozenset(expected), description, Behaviour.TLS, leaf or LeafSpec(), tls or TLSProfile(),
                    http or HttpProfile())


def _without(*names: str) -> dict[str, str]:
    return {k: v for k, v in GOOD_HEADERS.items() if k not in names}


SCRIPT_PAYLOAD = "<script>window.__xss=1</script>"
ATTRIBUTE_PAYLOAD = '"><img src=x onerror="window.__xss=2">'
"""Markup a portal controls (hostile_text): a dashboard that shows it as HTML instead of text runs it."""
HOSTILE_SERVER = f"nginx/1.25.3 {SCRIPT_PAYLOAD}{ATTRIBUTE_PAYLOAD}"
"""A Server header with a version (so it is disclosed, payloads and all, in a finding's evidence)."""

MANY_HEADERS = 150
"""Harmless headers the many_headers case sends before its security headers."""
FILLER_HEADERS: dict[str, str] = {f"X-Lab-Filler-{i:03d}": f"harmless value {i}" for i in range(MANY_HEADERS)}


def _broken(name: str, behaviour: Behaviour, description: str) -> CaseSpec:
    """A case that never completes a TLS handshake."""
    return CaseSpec(name, UNREACHABLE, description, behaviour)


_LEGACY = f"{MODERN_CIPHERS}:@SECLEVEL=0"

CASE_SPECS: tuple[CaseSpec, ...] = (
    _tls("good", set(), "Good portal: TLS 1.2/1.3, modern suites, valid chain"),
    _tls(
        "expired",
        {"tls.cert.expired"},
        "Expired certificate (expired 30 days ago)",
        leaf=LeafSpec(not_before_days=-400, not_after_days=-30),
    ),
    _tls(
        "expiring_soon",
        {"tls.cert.expiring_soon"},
        "Certificate expiring in 10 days",
        leaf=LeafSpec(not_after_days=10),
    ),
    _tls(
        "wrong_host",
        {"tls.cert.hostname_mismatch"},
        "Certificate for another host (other.lab.soc.test)",
        leaf=LeafSpec(san=f"other.{LAB_DOMAIN}"),
    ),
    _tls(
        "self_signed",
        {"tls.cert.self_signed"},
        "Self-signed certificate",
        leaf=LeafSpec(issuer="self"),
    ),
    _tls(
        "untrusted_root",
        {"tls.cert.untrusted"},
        "Certificate from an untrusted root CA",
        leaf=LeafSpec(issuer="untrusted_root"),
    ),
    _tls(
        "incomplete_chain",
        {"tls.cert.chain_incomplete"},
        "Incomplete chain: intermediate CA not sent (AIA available)",
        tls=TLSProfile(send_issuer=False),
    ),
    _tls(
        "revoked",
        {"tls.cert.revoked"},
        "Certificate revoked by the issuing CA (on the CA's CRL)",
        leaf=LeafSpec(revoked=True),
    ),
    _tls(
        "revoked_ocsp",
        {"tls.cert.revoked"},
        "Certificate revoked, known from the CA's OCSP responder (no CRL distribution point)",
        leaf=LeafSpec(revoked=True, crl=False, ocsp=True),
    ),
    _tls(
        "rsa1024",
        {"tls.cert.weak_key"},
        "Weak 1024-bit RSA key",
        leaf=LeafSpec(key_bits=1024),
        tls=TLSProfile(ciphers=_LEGACY),
    ),
    _tls(
        "sha1_leaf",
        {"tls.cert.weak_signature"},
        "Certificate signed with SHA-1",
        leaf=LeafSpec(hash_name="sha1"),
        tls=TLSProfile(ciphers=_LEGACY),
    ),
    _tls(
        "md5_leaf",
        {"tls.cert.weak_signature"},
        "Certificate signed with MD5 by the trusted issuing CA",
        leaf=LeafSpec(hash_name="md5"),
        tls=TLSProfile(ciphers=_LEGACY),
    ),
    _tls(
        "many_sans",
        set(),
        f"Certificate with {MANY_SANS} names, the portal's own name last",
        leaf=LeafSpec(extra_sans=MANY_SANS - 1),
    ),
    _tls(
        "cert_too_large",
        {"tls.cert.oversized", "http.unreachable"},
        f"Certificate of ~330 KB ({OVERSIZED_SANS} names): over the 100 KiB TLS clients accept",
        leaf=LeafSpec(extra_sans=OVERSIZED_SANS - 1),
    ),
    _tls(
        "legacy_tls",
        {"tls.protocol.tls10", "tls.protocol.tls11"},
        "Legacy protocols TLS 1.0 and 1.1 enabled",
        tls=TLSProfile(minimum=ssl.TLSVersion.TLSv1, ciphers=LEGACY_CIPHERS),
    ),
    _tls(
        "no_tls13",
        {"tls.protocol.tls13_missing"},
        "TLS 1.3 not supported",
        tls=TLSProfile(maximum=ssl.TLSVersion.TLSv1_2),
    ),
    _tls(
        "null_anon_static_rsa",
        {"tls.cipher.weak", "tls.cipher.no_forward_secrecy"},
        "NULL, anonymous and static-RSA cipher suites enabled",
        tls=TLSProfile(ciphers=NULL_ANON_STATIC_RSA_CIPHERS),
    ),
    _tls(
        "dhe1024",
        {"tls.kex.weak_dh"},
        "DHE key exchange with 1024-bit group",
        tls=TLSProfile(ciphers=DHE_CIPHERS, dh1024=True),
    ),
    _tls("http_no_redirect", {"http.no_https_redirect"}, "http:// serves the page instead of redirecting",
         http=HttpProfile(redirect=Redirect.NONE)),
    _tls("http_redirect_metadata", {"http.no_https_redirect"},
         "http:// redirects to the cloud metadata address (must be refused, not followed)",
         http=HttpProfile(redirect=Redirect.METADATA)),
    _tls("http_short_hsts", {"http.hsts.short_max_age"}, "HSTS max-age of one day",
         http=HttpProfile(headers={**_without("Strict-Transport-Security"),
                                   "Strict-Transport-Security": "max-age=86400"})),
    _tls("http_bare",
         {"http.hsts.missing", "http.header.csp_missing", "http.header.frame_options_missing",
          "http.header.content_type_options_missing", "http.header.referrer_policy_missing",
          "http.security_txt_missing"},
         "No security headers and no security.txt",
         http=HttpProfile(headers={"Server": "nginx"}, security_txt=False)),
    _tls("http_server_version", {"http.server_version_disclosed"}, "Server and X-Powered-By reveal versions",
         http=HttpProfile(headers={**_without("Server"), "Server": "Apache/2.4.41 (Ubuntu)",
                                   "X-Powered-By": "PHP/7.4.3"})),
    _tls("http_mixed_content", {"http.mixed_content"}, "HTTPS page loads a script and a stylesheet over http://",
         http=HttpProfile(extra_body='<script src="http://cdn.lab.soc.test/app.js"></script>'
                                     '<link rel="stylesheet" href="http://cdn.lab.soc.test/site.css">')),
    _tls("many_headers", set(), f"{MANY_HEADERS} harmless headers before the (good) security headers",
         http=HttpProfile(headers={**FILLER_HEADERS, **GOOD_HEADERS})),
    _tls("label_missing", {"trustlabel.missing"}, "No Tín nhiệm mạng badge", http=HttpProfile(badge=Badge.NONE)),
    _tls("label_other_domain", {"trustlabel.domain_mismatch"}, "Badge issued for another site",
         http=HttpProfile(badge=Badge.OTHER)),
    _tls("label_expired", {"trustlabel.expired"}, "Badge whose label the registry reports expired",
         http=HttpProfile(badge=Badge.EXPIRED)),
    _tls("label_revoked", {"trustlabel.revoked"}, "Badge whose label the registry reports revoked",
         http=HttpProfile(badge=Badge.REVOKED)),
    _tls("label_unlisted", {"trustlabel.unverified"}, "Badge the registry does not list",
         http=HttpProfile(badge=Badge.UNLISTED)),
    _tls("label_lazy", set(), "Valid badge, lazy-loaded image (data-src), protocol-relative link",
         http=HttpProfile(badge=Badge.LAZY)),
    _tls("label_script", set(), "Valid badge written by a script", http=HttpProfile(badge=Badge.SCRIPT)),
    _tls("ports_exposed", {"ports.risky_open", "ports.unexpected_open"},
         "MySQL and Redis open (risky) and an undeclared web port",
         http=HttpProfile(open_ports=(*RISKY_LAB_PORTS, UNEXPECTED_LAB_PORT))),
    _tls("hostile_text", {"tls.cert.self_signed", "http.server_version_disclosed"},
         "Hostile text: page title, Server header and certificate O/OU carry script and HTML payloads",
         leaf=LeafSpec(issuer="self", organization=SCRIPT_PAYLOAD, unit=ATTRIBUTE_PAYLOAD),
         http=HttpProfile(headers={**_without("Server"), "Server": HOSTILE_SERVER},
                          title=f"{SCRIPT_PAYLOAD}{ATTRIBUTE_PAYLOAD}")),
    _broken("refused", Behaviour.REFUSED, "Nothing listening (connection refused)"),
    _broken("silent", Behaviour.SILENT, "Accepts TCP, never answers"),
    _broken("garbage", Behaviour.GARBAGE, "Answers with non-TLS bytes (SSH banner)"),
    _broken("reset", Behaviour.RESET, "Accepts TCP, then resets the connection"),
)

CASES_BY_NAME: dict[str, CaseSpec] = {spec.name: spec for spec in CASE_SPECS}
CASE_NAMES: tuple[str, ...] = tuple(CASES_BY_NAME)


def select_cases(names: list[str] | None) -> list[CaseSpec]:
    """The specs for `names` (all cases when None), in catalogue order; unknown names raise."""
    if names is None:
        return list(CASE_SPECS)
    unknown = sorted(set(names) - set(CASES_BY_NAME))
    if unknown:
        raise ValueError(f"unknown lab case(s): {', '.join(unknown)}; known: {', '.join(CASE_NAMES)}")
    wanted = set(names)
    return [spec for spec in CASE_SPECS if spec.name in wanted]


def case_host(name: str, replica: int) -> str:
    """DNS name of replica `replica` (1-based) of a case: "good.lab…", then "good-2.lab…"."""
    label = name.replace("_", "-")
    suffix = "" if replica == 1 else f"-{replica}"
    return f"{label}{suffix}.{LAB_DOMAIN}"


def _prefix(base_address: str) -> tuple[str, int]:
    """Split "127.0.10." into ("127.0", 10), checking that it is a loopback /24 prefix."""
    parts = base_address.rstrip(".").split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError(f"base_address must look like '127.0.10.', got {base_address!r}")
    if not ipaddress.ip_address(f"{base_address.rstrip('.')}.1").is_loopback:
        raise ValueError(f"the lab only listens on loopback (127.0.0.0/8), got {base_address!r}")
    return ".".join(parts[:2]), int(parts[2])


def slot_address(base_address: str, slot: int) -> str:
    """Address of portal number `slot` (1-based): base .1 … .249, then the next /24, and so on."""
    head, third = _prefix(base_address)
    block, index = divmod(slot - 1, HOSTS_PER_BLOCK)
    if third + block > 255:
        raise ValueError(f"too many lab portals for base address {base_address!r}")
    return f"{head}.{third + block}.{index + 1}"


def aia_address(base_address: str) -> str:
    """Address of the lab's AIA (caIssuers) HTTP server: base_address + "250"."""
    head, third = _prefix(base_address)
    return f"{head}.{third}.{AIA_HOST_OCTET}"


def registry_address(base_address: str) -> str:
    """Address of the lab's trust-label registry (a registry-shaped HTTP server): base_address + "251"."""
    head, third = _prefix(base_address)
    return f"{head}.{third}.{REGISTRY_HOST_OCTET}"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def inventory_yaml(cases: list[LabCase], trust_store: Path, registry_url: str | None = None) -> str:
    """The lab's scan inventory: one agency, one portal per case, lab trust store, loopback allowed."""
    lines = [
        "agencies:",
        "  - id: lab",
        "    name: Phòng thí nghiệm cổng thông tin (lab)",
        "portals:",
    ]
    for case in cases:
        lines += [
            f"  - url: {case.url}",
            "    agency: lab",
            f"    address: {case.address}",
            f"    name: {_quoted(case.description)}",
        ]
        if case.http_url:
            lines.append(f"    http_url: {case.http_url}")
    lines += [
        "settings:",
        f"  trust_stores: [{_quoted(str(trust_store.resolve()))}]",
        "  expiry_warning_days: 30",
        '  allowed_networks: ["127.0.0.0/8"]',
        "  trustlabel:",
        f"    registry_url: {_quoted(registry_url) if registry_url else 'null'}",
        "    min_interval_s: 0",
        "    cache_hours: 0",
    ]
    return "\n".join(lines) + "\n"
