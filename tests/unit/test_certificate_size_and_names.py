"""Certificates as they really are: hundreds of SANs are judged on every name (storage alone is bounded), a
certificate too large for TLS clients is reported as such, and a chain past the search bounds is "cannot tell"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from checks import evaluate_tls
from collectors.certificates import (
    MAX_NAMES,
    MAX_PEM_DER_BYTES,
    MAX_POOL,
    AnchorSet,
    SignatureCheckError,
    anchoring_stores,
    describe,
    hostname_matches,
)
from soc.core.observations import CertificateInfo, ChainTrust, OversizedCertificate, TlsObservation

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
URL = "https://portal.example.gov.vn/"
HOST = "portal.example.gov.vn"
KEY = ec.generate_private_key(ec.SECP256R1())


def name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def certificate(subject: str, issuer: str, sans: list[str] | None = None, ca: bool = False) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    return builder.sign(KEY, hashes.SHA256())


def shared_hosting(count: int, own_name_last: str) -> x509.Certificate:
    others = [f"site-{i:05d}.shared-hosting.example.com" for i in range(count - 1)]
    return certificate(own_name_last, own_name_last, [*others, own_name_last])


def test_the_host_name_is_matched_against_every_san_even_past_the_stored_ones() -> None:
    leaf = shared_hosting(500, HOST)
    assert hostname_matches(leaf, HOST)
    assert hostname_matches(shared_hosting(500, "*.example.gov.vn"), HOST)
    assert not hostname_matches(leaf, "other.example.gov.vn")
    info = describe(leaf)
    assert len(info.san_dns) == MAX_NAMES and info.san_dns_total == 500
    assert HOST not in info.san_dns  # not stored, yet matched: storage is bounded, judgement is not


def test_a_mismatch_evidence_counts_the_names_storage_left_out() -> None:
    info = describe(shared_hosting(500, "other.example.gov.vn"))
    obs = oversized(chain=[info], hostname_matches=False, oversized_certificate=None, observed_at=datetime.now(UTC))
    findings = evaluate_tls(obs)
    assert [f.check_id for f in findings] == ["tls.cert.hostname_mismatch"]
    assert "(+492)" in findings[0].evidence


def test_a_huge_certificate_is_described_without_keeping_its_pem() -> None:
    big = shared_hosting(3000, HOST)
    assert len(big.public_bytes(Encoding.DER)) > MAX_PEM_DER_BYTES
    info = describe(big)
    assert info.pem == "" and info.san_dns_total == 3000 and info.sha256
    assert describe(shared_hosting(3, HOST)).pem.startswith("-----BEGIN CERTIFICATE-----")


def cert(**changes: object) -> CertificateInfo:
    base: dict[str, object] = dict(
        subject=f"CN={HOST}", issuer="CN=Issuing CA", serial="1", sha256="aa" * 32, not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=300), key_type="RSA", key_size=2048, signature_hash="sha256",
        self_signed=False, san_dns=[HOST], san_dns_total=1, pem="",
    )
    base.update(changes)
    return CertificateInfo.model_validate(base)


def oversized(**changes: object) -> TlsObservation:
    """What the collector records of a server whose certificate message is ~330 KB (read past the limit)."""
    base: dict[str, object] = dict(
        portal_url=URL, host=HOST, port=443, address="127.0.0.1", observed_at=NOW, protocols={"TLSv1.2": True},
        chain=[cert()], hostname_matches=True, trust=ChainTrust(anchored=True, anchored_stores=["Mozilla"]),
        oversized_certificate=OversizedCertificate(client_limit_bytes=102400, message_bytes=331810),
        command_errors={"sslyze": "not scanned: the server's certificate exceeds the 102400 bytes TLS clients accept"},
    )
    base.update(changes)
    return TlsObservation.model_validate(base)


def test_an_oversized_certificate_is_its_own_finding_and_an_incomplete_observation() -> None:
    obs = oversized()
    findings = evaluate_tls(obs)
    assert [f.check_id for f in findings] == ["tls.cert.oversized"]
    assert "331810 bytes" in findings[0].evidence and "102400" in findings[0].evidence
    assert findings[0].detail == cert().sha256
    assert not obs.complete  # sslyze could not scan it: nothing else may be resolved


def test_an_oversized_certificate_that_could_not_be_read_still_says_what_happened() -> None:
    unread = OversizedCertificate(client_limit_bytes=102400, read_error="the server refused a TLS 1.2 handshake")
    obs = oversized(chain=[], protocols={}, trust=None, hostname_matches=None, oversized_certificate=unread)
    findings = evaluate_tls(obs)
    assert [f.check_id for f in findings] == ["tls.cert.oversized"]
    assert "size unknown: the server refused a TLS 1.2 handshake" in findings[0].evidence


def test_the_certificate_checks_still_judge_an_oversized_certificate() -> None:
    expired = cert(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
    assert {f.check_id for f in evaluate_tls(oversized(chain=[expired]))} == {"tls.cert.oversized",
                                                                             "tls.cert.expired"}


def chain_of(length: int) -> tuple[list[x509.Certificate], x509.Certificate]:
    """leaf ← i1 ← … ← i(length-1) ← root: the leaf, the intermediates (in order) and the root."""
    root = certificate("Root", "Root", ca=True)
    names = [f"Intermediate {i}" for i in range(1, length)]
    issuers = [*names[1:], "Root"]
    intermediates = [certificate(n, issuer, ca=True) for n, issuer in zip(names, issuers, strict=True)]
    leaf = certificate(HOST, names[0] if names else "Root", [HOST])
    return [leaf, *intermediates], root


def test_a_path_within_the_bounds_is_anchored() -> None:
    sent, root = chain_of(5)
    assert anchoring_stores(sent, AnchorSet([("configured", [root])])) == ["configured"]


def test_a_path_past_the_search_bounds_is_cannot_tell_not_untrusted() -> None:
    sent, root = chain_of(MAX_POOL + 3)  # the last intermediates are beyond the certificates searched
    with pytest.raises(SignatureCheckError, match="only the first"):
        anchoring_stores(sent, AnchorSet([("configured", [root])]))
    deep, deep_root = chain_of(12)  # within the pool, but deeper than MAX_CHAIN_DEPTH
    with pytest.raises(SignatureCheckError, match="longer paths were not searched"):
        anchoring_stores(deep, AnchorSet([("configured", [deep_root])]))
    lone, _ = chain_of(3)
    assert anchoring_stores(lone, AnchorSet([("configured", [])])) == []  # a short chain to nowhere: a plain no
