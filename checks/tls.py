"""TLS checks: a `TlsObservation` in, findings out. Pure: testable with a literal observation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from checks.catalogue import make_finding
from soc.core.models import Finding
from soc.core.observations import AcceptedCipher, CertificateInfo, RevocationStatus, TlsObservation

MAX_LISTED = 8
"""Evidence lists at most this many items, then says how many more."""

LEGACY_PROTOCOLS = {
    "SSLv2": "tls.protocol.sslv2",
    "SSLv3": "tls.protocol.sslv3",
    "TLSv1.0": "tls.protocol.tls10",
    "TLSv1.1": "tls.protocol.tls11",
}
WEAK_CIPHER_TOKENS = {"NULL": "NULL", "anon": "anonymous", "EXPORT": "EXPORT", "EXPORT40": "EXPORT",
                      "RC4": "RC4", "DES": "DES", "3DES": "3DES", "DES40": "DES", "EDE3": "3DES"}
STATIC_KEX = {"RSA", "DH", "ECDH"}
MIN_DH_BITS = 2048
MIN_ECDH_BITS = 224
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
WEAK_HASHES = {"md5", "sha1"}
ROBOT_VULNERABLE = {"VULNERABLE_WEAK_ORACLE", "VULNERABLE_STRONG_ORACLE"}


@dataclass(frozen=True)
class CheckContext:
    """Inputs of the TLS checks besides the observation."""

    expiry_warning_days: int = 30
    now: datetime | None = None
    """Reference time; the observation's time when None (so re-evaluating old data is reproducible)."""


def listed(items: Iterable[str]) -> str:
    """Comma-separated, bounded list for evidence."""
    values = list(dict.fromkeys(items))
    text = ", ".join(values[:MAX_LISTED])
    return text + (f" (+{len(values) - MAX_LISTED})" if len(values) > MAX_LISTED else "")


def _tokens(cipher_name: str) -> list[str]:
    return cipher_name.replace("-", "_").split("_")


def cipher_weaknesses(cipher_name: str) -> set[str]:
    """Why a suite is weak (NULL, anonymous, EXPORT, RC4, DES, 3DES), from its IANA or SSLv2 name."""
    return {label for token in _tokens(cipher_name) if (label := WEAK_CIPHER_TOKENS.get(token))}


def has_static_key_exchange(cipher_name: str) -> bool:
    """True for suites whose key exchange is static RSA/DH/ECDH (no forward secrecy)."""
    if cipher_name.startswith("SSL_CK_"):
        return True  # every SSL 2.0 suite uses RSA key transport
    tokens = _tokens(cipher_name)
    if "WITH" not in tokens:
        return False  # TLS 1.3 suites are always ephemeral
    kex = tokens[1 : tokens.index("WITH")]
    return bool(kex) and kex[0] in STATIC_KEX and "anon" not in kex


def _weak_kex(cipher: AcceptedCipher) -> bool:
    if cipher.kex_size is None:
        return False
    limit = {"DH": MIN_DH_BITS, "ECDH": MIN_ECDH_BITS}.get(cipher.kex_type or "")
    return limit is not None and cipher.kex_size < limit


def _weak_key(cert: CertificateInfo) -> bool:
    if cert.key_size is None:
        return False
    limit = {"RSA": MIN_RSA_BITS, "DSA": MIN_RSA_BITS, "EC": MIN_EC_BITS}.get(cert.key_type)
    return limit is not None and cert.key_size < limit


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _protocol_findings(obs: TlsObservation) -> list[Finding]:
    findings = []
    for protocol, check_id in LEGACY_PROTOCOLS.items():
        if obs.protocols.get(protocol):
            suites = [c.name for c in obs.accepted_ciphers if c.protocol == protocol]
            findings.append(make_finding(obs.portal_url, check_id, f"{protocol} accepted; suites: {listed(suites)}"))
    if obs.protocols.get("TLSv1.3") is False:
        best = [p for p, ok in obs.protocols.items() if ok]
        findings.append(make_finding(obs.portal_url, "tls.protocol.tls13_missing",
                                     f"TLSv1.3 refused; highest accepted: {best[-1] if best else 'none'}"))
    return findings


def _cipher_findings(obs: TlsObservation) -> list[Finding]:
    findings = []
    weak = [(c, cipher_weaknesses(c.name)) for c in obs.accepted_ciphers]
    weak = [(c, why) for c, why in weak if why]
    if weak:
        evidence = listed(f"{c.name} [{'/'.join(sorted(why))}, {c.protocol}]" for c, why in weak)
        findings.append(make_finding(obs.portal_url, "tls.cipher.weak", f"weak suites accepted: {evidence}"))
    static = [c for c in obs.accepted_ciphers if has_static_key_exchange(c.name)]
    if static:
        evidence = listed(f"{c.name} [{c.protocol}]" for c in static)
        findings.append(make_finding(obs.portal_url, "tls.cipher.no_forward_secrecy",
                                     f"static key exchange accepted: {evidence}"))
    weak_kex = [c for c in obs.accepted_ciphers if _weak_kex(c)]
    if weak_kex:
        evidence = listed(f"{c.kex_type} {c.kex_size} bits ({c.name}, {c.protocol})" for c in weak_kex)
        findings.append(make_finding(obs.portal_url, "tls.kex.weak_dh", f"weak key exchange: {evidence}"))
    return findings


def _validity_findings(obs: TlsObservation, ctx: CheckContext) -> list[Finding]:
    leaf = obs.chain[0]
    now = ctx.now or obs.observed_at
    url, detail = obs.portal_url, leaf.sha256
    if now > leaf.not_after:
        days = (now - leaf.not_after).days
        return [make_finding(url, "tls.cert.expired", f"expired {_utc(leaf.not_after)} ({days} days ago)", detail)]
    if now < leaf.not_before:
        return [make_finding(url, "tls.cert.not_yet_valid", f"valid from {_utc(leaf.not_before)}", detail)]
    left = leaf.not_after - now
    if left <= timedelta(days=ctx.expiry_warning_days):
        evidence = f"expires {_utc(leaf.not_after)} ({left.days} days left, window {ctx.expiry_warning_days})"
        return [make_finding(url, "tls.cert.expiring_soon", evidence, detail)]
    return []


def _san_names(cert: CertificateInfo) -> str:
    """The certificate's DNS names for evidence, counting those storage left out."""
    if cert.san_dns_total <= len(cert.san_dns):
        return listed(cert.san_dns)
    return ", ".join(cert.san_dns[:MAX_LISTED]) + f" (+{cert.san_dns_total - MAX_LISTED})"


def _oversized_findings(obs: TlsObservation) -> list[Finding]:
    big = obs.oversized_certificate
    if big is None:
        return []
    if big.message_bytes is not None:
        what = f"certificate message of {big.message_bytes} bytes"
    else:
        what = f"a handshake message (the certificate; size unknown: {big.read_error or 'not readable'})"
    evidence = f"{what}; OpenSSL and BoringSSL clients (curl, Python, sslyze…) accept {big.client_limit_bytes} at most"
    return [make_finding(obs.portal_url, "tls.cert.oversized", evidence, obs.chain[0].sha256 if obs.chain else "")]


def _trust_findings(obs: TlsObservation) -> list[Finding]:
    leaf, trust, url = obs.chain[0], obs.trust, obs.portal_url
    findings = []
    if obs.hostname_matches is False:
        names = _san_names(leaf) or "no DNS names"
        findings.append(make_finding(url, "tls.cert.hostname_mismatch",
                                     f"host {obs.host}; certificate names: {names}", leaf.sha256))
    if trust is None or trust.anchored:
        return findings
    if leaf.self_signed:
        findings.append(make_finding(url, "tls.cert.self_signed", f"self-signed: {leaf.subject}", leaf.sha256))
    elif trust.anchored_with_aia:
        evidence = f"server sends {len(obs.chain)} certificate(s); completed from AIA: {listed(trust.aia_urls_fetched)}"
        findings.append(make_finding(url, "tls.cert.chain_incomplete", evidence, leaf.sha256))
    else:
        reason = trust.error or "no path to a trust anchor"
        if trust.aia_error:
            reason += f"; AIA: {trust.aia_error}"
        findings.append(make_finding(url, "tls.cert.untrusted", f"issuer {leaf.issuer}: {reason}", leaf.sha256))
    return findings


def _revocation_findings(obs: TlsObservation) -> list[Finding]:
    """Revoked only: an unknown status is no verdict (the observation leaves the check unjudged)."""
    revocation, leaf = obs.revocation, obs.chain[0]
    if revocation is None or revocation.status is not RevocationStatus.REVOKED:
        return []
    when = f" on {_utc(revocation.revoked_at)}" if revocation.revoked_at else ""
    why = f" ({revocation.revocation_reason})" if revocation.revocation_reason else ""
    source = (revocation.method.value if revocation.method else "?") + (f" {revocation.url}" if revocation.url else "")
    evidence = f"serial {leaf.serial} revoked{when}{why}, per {source}"
    return [make_finding(obs.portal_url, "tls.cert.revoked", evidence, leaf.sha256)]


def _below_anchor(chain: list[CertificateInfo]) -> list[CertificateInfo]:
    """The leaf and the intermediates: self-signed roots sent along are not judged."""
    return chain[:1] + [c for c in chain[1:] if not c.self_signed]


def _key_and_signature_findings(obs: TlsObservation) -> list[Finding]:
    findings = []
    for position, cert in enumerate(_below_anchor(obs.chain)):
        role = "leaf" if position == 0 else "intermediate"
        if _weak_key(cert):
            findings.append(make_finding(obs.portal_url, "tls.cert.weak_key",
                                         f"{role} {cert.subject}: {cert.key_type} {cert.key_size} bits", cert.sha256))
        if cert.signature_hash in WEAK_HASHES and not cert.self_signed:
            findings.append(make_finding(obs.portal_url, "tls.cert.weak_signature",
                                         f"{role} {cert.subject}: signed with {cert.signature_hash}", cert.sha256))
    return findings


def _vulnerability_findings(obs: TlsObservation) -> list[Finding]:
    url = obs.portal_url
    accepted = [p for p, ok in obs.protocols.items() if ok]
    rules: list[tuple[bool, str, str]] = [
        (obs.heartbleed is True, "tls.vuln.heartbleed", "server answered a malformed heartbeat"),
        (obs.ccs_injection is True, "tls.vuln.ccs_injection", "server accepted an early ChangeCipherSpec"),
        (obs.robot in ROBOT_VULNERABLE, "tls.vuln.robot", f"ROBOT: {obs.robot}"),
        (obs.compression is True, "tls.vuln.compression", "TLS compression negotiated"),
        (obs.secure_renegotiation is False, "tls.vuln.insecure_renegotiation", "no RFC 5746 renegotiation_info"),
        (obs.fallback_scsv is False and len(accepted) > 1, "tls.vuln.no_fallback_scsv",
         f"downgrade not refused; protocols: {listed(accepted)}"),
    ]
    return [make_finding(url, check_id, evidence) for hit, check_id, evidence in rules if hit]


CertCheck = Callable[[TlsObservation], list[Finding]]


def evaluate_tls(obs: TlsObservation, ctx: CheckContext | None = None) -> list[Finding]:
    """All TLS findings for one observation."""
    ctx = ctx or CheckContext()
    if obs.unreachable is not None:
        evidence = f"{obs.unreachable.value}: {obs.error or 'no answer'}"
        return [make_finding(obs.portal_url, "tls.unreachable", evidence)]
    findings = _protocol_findings(obs) + _cipher_findings(obs) + _vulnerability_findings(obs) + _oversized_findings(obs)
    if obs.chain:
        findings += _validity_findings(obs, ctx) + _trust_findings(obs) + _key_and_signature_findings(obs)
        findings += _revocation_findings(obs)
    return findings
