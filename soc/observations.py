"""Typed observations: what a collector saw, before any judgement.

Collectors build these; checks read them; the store keeps their JSON form for audit.
Every string here may come from a hostile server: it is bounded in size by the collector
and escaped by whoever renders it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

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
    ca_issuers: list[str] = Field(default_factory=list)
    """AIA caIssuers URLs (untrusted text; fetched only under the collector's rules)."""
    pem: str


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
    command_errors: dict[str, str] = Field(default_factory=dict)
    """Probe name → error, for probes that did not give an answer."""

    @property
    def complete(self) -> bool:
        """Reachable and every probe answered: only then may absent findings be resolved."""
        return self.unreachable is None and not self.command_errors
