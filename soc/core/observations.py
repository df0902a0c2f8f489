"""Typed observations: what a collector saw, before any judgement.

Collectors build these; checks read them; the store keeps their JSON form for audit.
Every string here may come from a hostile server: it is bounded in size by the collector
and escaped by whoever renders it.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


class Unreachable(StrEnum):
    """Why a TLS service could not be assessed; every connectivity failure maps to one of these."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    RESET = "reset"
    NOT_TLS = "not_tls"
    HANDSHAKE = "handshake"
    TOO_SLOW = "too_slow"
    """It answers, but not within the deadline of an exchange or the portal's time budget (it trickles)."""
    NOT_ALLOWED = "not_allowed"
    """Never contacted: its DNS answer is a non-public address outside the inventory's `allowed_networks`."""
    OTHER = "other"


class AcceptedCipher(BaseModel):
    """One cipher suite the server accepted, with the key exchange it negotiated."""

    protocol: str
    name: str
    """IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256."""
    openssl_name: str
    key_size: int
    kex_type: str | None = None
    """Ephemeral key exchange: 'DH', 'ECDH' or None when none was negotiated."""
    kex_size: int | None = None
    kex_curve: str | None = None


class CertificateInfo(BaseModel):
    """One certificate of the chain as the server sent it."""

    subject: str
    issuer: str
    serial: str
    sha256: str
    not_before: datetime
    not_after: datetime
    key_type: str
    """'RSA', 'EC', 'DSA', 'Ed25519', 'Ed448' or 'other'."""
    key_size: int | None
    signature_hash: str | None
    """Hash of the signature algorithm (sha256, sha1, md5…); None for Ed25519 and unknowns."""
    self_signed: bool
    san_dns: list[str] = Field(default_factory=list)
    """The first 100 DNS names of the SAN (storage is bounded; host matching used every name)."""
    san_dns_total: int = 0
    """How many DNS names the SAN carries in all."""
    ca_issuers: list[str] = Field(default_factory=list)
    """AIA caIssuers URLs (untrusted text; fetched only under the collector's rules)."""
    pem: str
    """The certificate in PEM; empty when it is larger than 64 KiB (storage is bounded, `sha256` names it)."""


class ChainTrust(BaseModel):
    """Whether the chain leads to a trust anchor, independent of the date and host name.

    Validation is done at a moment inside the leaf's validity and for a name the leaf carries,
    so that an expired or mismatched certificate is not also reported as untrusted.
    """

    anchored: bool
    """The chain as sent leads to an anchor of a standard store or a configured extra store."""
    anchored_stores: list[str] = Field(default_factory=list)
    error: str | None = None
    aia_urls_fetched: list[str] = Field(default_factory=list)
    aia_error: str | None = None
    anchored_with_aia: bool | None = None
    """None when AIA completion was not attempted (chain already anchored, or no AIA URL)."""


class RevocationStatus(StrEnum):
    """What the revocation check learned about the leaf certificate."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    """A source was tried and gave no usable answer (responder down, bad signature, stale or oversized CRL)."""
    NOT_CHECKED = "not_checked"
    """Nothing to ask, or no point asking (no CRL/OCSP URL, chain not anchored, certificate expired)."""


class RevocationMethod(StrEnum):
    """Where a revocation answer came from."""

    OCSP_STAPLED = "ocsp_stapled"
    CRL = "crl"
    OCSP = "ocsp"


REVOCATION_CHECK = "tls.cert.revoked"
"""The check an unknown revocation status leaves unjudged."""


class Revocation(BaseModel):
    """The revocation status of the leaf and how it was learned (every text bounded by the collector)."""

    status: RevocationStatus
    method: RevocationMethod | None = None
    """The source of a good/revoked verdict; for unknown, the last source tried; None when none was tried."""
    url: str | None = None
    """The CRL or OCSP URL of that source (None for a stapled response)."""
    reason: str | None = None
    """Why the status is unknown or not checked, e.g. 'no CRL or OCSP URL', 'responder unreachable'."""
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    """The CRL/OCSP reason code when the CA gave one, e.g. 'keyCompromise'."""
    attempts: list[str] = Field(default_factory=list)
    """One line per source tried that gave no verdict (method, URL, why), in order."""


class OversizedCertificate(BaseModel):
    """The server's certificate message is larger than common TLS clients accept (OpenSSL, BoringSSL: 100 KiB)."""

    client_limit_bytes: int
    """The limit that refused it (OpenSSL's default max_cert_list, which sslyze's client shares)."""
    message_bytes: int | None = None
    """Size of the Certificate handshake message, read with the collector's own bounded reader; None when unread."""
    read_error: str | None = None
    """Why the certificate could not be read past the limit (e.g. the server speaks only TLS 1.3, where it is
    encrypted)."""


class TlsObservation(BaseModel):
    """Everything the TLS collector saw of one portal."""

    portal_url: str
    host: str
    port: int
    address: str | None
    observed_at: datetime
    duration_s: float = 0.0
    unreachable: Unreachable | None = None
    error: str | None = None
    protocols: dict[str, bool] = Field(default_factory=dict)
    """Protocol name (see PROTOCOLS) → accepted; a protocol absent from the map was not tested."""
    accepted_ciphers: list[AcceptedCipher] = Field(default_factory=list)
    chain: list[CertificateInfo] = Field(default_factory=list)
    hostname_matches: bool | None = None
    trusted_stores: list[str] = Field(default_factory=list)
    """Stores that validated the chain as browsers do (now, for this host name)."""
    trust: ChainTrust | None = None
    heartbleed: bool | None = None
    ccs_injection: bool | None = None
    robot: str | None = None
    """sslyze's RobotScanResultEnum name."""
    compression: bool | None = None
    secure_renegotiation: bool | None = None
    fallback_scsv: bool | None = None
    oversized_certificate: OversizedCertificate | None = None
    """Set when the certificate exceeds the client's limit: sslyze cannot scan such a server at all."""
    revocation: Revocation | None = None
    """None when no certificate was received."""
    command_errors: dict[str, str] = Field(default_factory=dict)
    """Probe name → error, for probes that did not give an answer."""

    @property
    def complete(self) -> bool:
        """Reachable and every probe answered: only then may absent findings be resolved."""
        return self.unreachable is None and not self.command_errors

    @property
    def unjudged(self) -> tuple[str, ...]:
        """Checks this observation cannot judge even when complete: an unknown revocation status resolves nothing."""
        if self.revocation is not None and self.revocation.status is RevocationStatus.UNKNOWN:
            return (REVOCATION_CHECK,)
        return ()


MIXED_CONTENT_CHECK = "http.mixed_content"
"""The check a homepage read in part leaves unjudged."""
LABEL_CHECKS = "trustlabel."
"""The checks a homepage searched in part, without a badge for the portal, leaves unjudged."""


class RedirectHop(BaseModel):
    """One response on the way from http:// to the final page."""

    url: str
    status: int | None = None
    location: str | None = None
    refused: str | None = None
    """Why this hop's target was not followed (outside the allowed addresses, bad scheme, too many hops)."""


class TrustBadge(BaseModel):
    """A Tín nhiệm mạng badge found in a homepage (all text from the page: untrusted, bounded)."""

    how: str
    """How it is embedded: 'link+img', 'link+data-src', 'img', 'data-src', 'link+self-hosted', 'script'."""
    image_url: str | None = None
    link_url: str | None = None
    image_host: str | None = None
    """The domain named by the badge image (`handle_cert?id=<domain>`), lower-case."""
    slug: str | None = None
    """The registry slug of the link (`danh-ba-tin-nhiem/<slug>`), e.g. 'topzonevn-1635823490'."""
    slug_domain: str | None = None
    """The slug's domain part (the domain without dots), e.g. 'topzonevn'."""
    label_number: str | None = None


class TrustLabelStatus(BaseModel):
    """What the registry (or the SOC's snapshot of it) says about one domain's label."""

    domain: str
    source: str
    """'snapshot', 'registry' or 'none' (no source could answer)."""
    found: bool | None = None
    """True listed, False not listed, None the source could not be asked."""
    label_id: str | None = None
    status: str | None = None
    """'valid', 'expired', 'revoked' or None when the source does not say."""
    level: str | None = None
    """'basic' or 'advanced' when known."""
    owner: str | None = None
    issued: date | None = None
    expires: date | None = None
    checked_at: datetime | None = None
    error: str | None = None


JUDGED_HEADERS: frozenset[str] = frozenset({
    "strict-transport-security", "content-security-policy", "x-frame-options", "x-content-type-options",
    "referrer-policy", "server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator",
})
"""Response headers the HTTP checks read. The collector keeps every value of these whole, wherever they come in
the response (bounded only by the whole head's size limit); a check may read no other header."""


class HttpObservation(BaseModel):
    """What the HTTP collector saw of one portal: the redirect chain, the homepage, security.txt."""

    portal_url: str
    host: str
    address: str | None
    observed_at: datetime
    duration_s: float = 0.0
    start_url: str
    """The http:// URL the redirect check starts from."""
    redirects: list[RedirectHop] = Field(default_factory=list)
    redirect_error: str | None = None
    reaches_https: bool | None = None
    """The http:// chain leads (within the hop limit) to an https:// URL; None when there is no HTTP service."""
    final_url: str | None = None
    status: int | None = None
    headers: dict[str, list[str]] = Field(default_factory=dict)
    """Response headers of the https homepage, lower-case names: every value of the `JUDGED_HEADERS` whole,
    then the first other fields with bounded values (for the record; no check reads those)."""
    header_count: int = 0
    """How many header fields the homepage sent (all judged, however few `headers` keeps)."""
    headers_error: str | None = None
    """Why the homepage's headers were not judged (a response head over the collector's size limit)."""
    error: str | None = None
    """Why the https homepage could not be read (then the page checks cannot run)."""
    charset: str | None = None
    body_bytes: int = 0
    body_sha256: str | None = None
    title: str | None = None
    mixed_content: list[str] = Field(default_factory=list)
    """http:// URLs of scripts, styles or frames loaded by the https page."""
    badges: list[TrustBadge] = Field(default_factory=list)
    page_cut: str | None = None
    """Why only part of the homepage was read (a body of max_body bytes, a page over the parser's bounds: tokens,
    characters, attributes of one tag, links…). What needs the whole page then has no verdict of absence: no
    mixed content here, no badge in the label observation."""
    security_txt: bool | None = None
    security_txt_error: str | None = None

    @property
    def complete(self) -> bool:
        """The homepage was read and its headers judged, and the redirect and security.txt probes answered."""
        return (self.error is None and self.headers_error is None and self.redirect_error is None
                and self.security_txt is not None)

    @property
    def unjudged(self) -> tuple[str, ...]:
        """A page read in part does not show that it loads nothing over http://: such a finding stays as it is."""
        return (MIXED_CONTENT_CHECK,) if self.page_cut is not None else ()


class LabelObservation(BaseModel):
    """Trust-label evidence for one portal: the badges on its homepage and the registry's word."""

    portal_url: str
    host: str
    observed_at: datetime
    page_read: bool
    badges: list[TrustBadge] = Field(default_factory=list)
    badge_for_host: bool = True
    """Some badge names this portal, so only the registry can settle the label's status."""
    registry: TrustLabelStatus | None = None
    page_cut: str | None = None
    """Why only part of the homepage was searched for badges (`HttpObservation.page_cut`)."""

    @property
    def complete(self) -> bool:
        """The page was read and, when a badge for this portal is shown, a registry source answered.

        No badge, or only another site's badge, is a certain verdict (missing / mismatch) on its own.
        """
        if not self.page_read:
            return False
        return not self.badge_for_host or (self.registry is not None and self.registry.found is not None)

    @property
    def unjudged(self) -> tuple[str, ...]:
        """A page searched in part without a badge for this portal settles nothing: the badge may be in the part
        not read, so no label finding is resolved (nor missing / mismatch raised)."""
        return (LABEL_CHECKS,) if self.page_read and self.page_cut is not None and not self.badge_for_host else ()


class OpenPort(BaseModel):
    """One open TCP port as nmap reported it."""

    port: int
    service: str | None = None
    product: str | None = None


class PortsObservation(BaseModel):
    """What the ports collector saw on one portal's address."""

    portal_url: str
    address: str | None
    observed_at: datetime
    duration_s: float = 0.0
    ports_scanned: str
    """The port specification given to nmap, e.g. '21-23,80,443'."""
    open_ports: list[OpenPort] = Field(default_factory=list)
    error: str | None = None

    @property
    def complete(self) -> bool:
        """nmap ran and reported the host."""
        return self.error is None


class FailedObservation(BaseModel):
    """A collector that gave no observation for a portal (it died, or could not even start): never complete.

    Like sslyze's failed `ScanCommandAttempt`, the failure is part of the result rather than an exception.
    """

    portal_url: str
    observed_at: datetime
    error: str
    """What went wrong (bounded)."""

    @property
    def complete(self) -> bool:
        """Never: a failure resolves nothing."""
        return False


class OpsObservation(BaseModel):
    """The scheduler's health evidence about one subject (`job:<name>` or a portal URL) at one moment:
    the job's expected slots and its history, or the portal's latest complete scan."""

    portal_url: str
    """The subject key (`job:<name>` or a portal URL)."""
    observed_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Always: the history and the schedule are read whole."""
        return True


class DrillObservation(BaseModel):
    """The corrective actions of one drill session as they stand (`drill:<session id>`)."""

    portal_url: str
    """The subject key `drill:<session id>`."""
    observed_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Always: the session's actions are read whole."""
        return True


class ComplianceObservation(BaseModel):
    """The register evidence of one subject (system or agency) on one day, under one rule set."""

    portal_url: str
    """The subject key (`system:<id>` / `agency:<id>`), where a portal's URL goes."""
    observed_at: datetime
    as_of: date
    ruleset: str

    @property
    def complete(self) -> bool:
        """Always: the register is read whole."""
        return True
