"""TLS checks on literal observations — covers what the lab cannot serve (SSLv2/3, RC4, Heartbleed…)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checks import CheckContext, catalogue, evaluate_tls
from checks.tls import cipher_weaknesses, has_static_key_exchange
from soc.core.models import Severity
from soc.core.observations import AcceptedCipher, CertificateInfo, ChainTrust, TlsObservation, Unreachable

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
URL = "https://portal.example.gov.vn/"

CONTRACT_IDS = {
    "tls.protocol.sslv2", "tls.protocol.sslv3", "tls.protocol.tls10", "tls.protocol.tls11",
    "tls.protocol.tls13_missing", "tls.cipher.weak", "tls.cipher.no_forward_secrecy", "tls.kex.weak_dh",
    "tls.cert.expired", "tls.cert.not_yet_valid", "tls.cert.expiring_soon", "tls.cert.hostname_mismatch",
    "tls.cert.self_signed", "tls.cert.untrusted", "tls.cert.chain_incomplete", "tls.cert.weak_key",
    "tls.cert.weak_signature", "tls.cert.oversized", "tls.vuln.heartbleed", "tls.vuln.robot", "tls.vuln.ccs_injection",
    "tls.vuln.compression", "tls.vuln.insecure_renegotiation", "tls.vuln.no_fallback_scsv", "tls.unreachable",
    "tls.cert.revoked",
}


def cert(**changes: object) -> CertificateInfo:
    base: dict[str, object] = dict(
        subject="CN=portal.example.gov.vn", issuer="CN=Issuing CA", serial="1", sha256="aa" * 32,
        not_before=NOW - timedelta(days=30), not_after=NOW + timedelta(days=300), key_type="RSA", key_size=2048,
        signature_hash="sha256", self_signed=False, san_dns=["portal.example.gov.vn"], pem="",
    )
    base.update(changes)
    return CertificateInfo.model_validate(base)


def good(**changes: object) -> TlsObservation:
    """A clean observation: TLS 1.2 + 1.3, ECDHE AEAD, trusted, matching, no vulnerability."""
    base: dict[str, object] = dict(
        portal_url=URL, host="portal.example.gov.vn", port=443, address="127.0.0.1", observed_at=NOW,
        protocols={"SSLv2": False, "SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True,
                   "TLSv1.3": True},
        accepted_ciphers=[
            AcceptedCipher(protocol="TLSv1.2", name="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                           openssl_name="ECDHE-RSA-AES128-GCM-SHA256", key_size=128, kex_type="ECDH", kex_size=253),
            AcceptedCipher(protocol="TLSv1.3", name="TLS_AES_256_GCM_SHA384", openssl_name="TLS_AES_256_GCM_SHA384",
                           key_size=256, kex_type="ECDH", kex_size=253),
        ],
        chain=[cert(), cert(subject="CN=Issuing CA", issuer="CN=Root", sha256="bb" * 32)],
        hostname_matches=True, trusted_stores=["Mozilla"], trust=ChainTrust(anchored=True, anchored_stores=["Mozilla"]),
        heartbleed=False, ccs_injection=False, robot="NOT_VULNERABLE_NO_ORACLE", compression=False,
        secure_renegotiation=True, fallback_scsv=True,
    )
    base.update(changes)
    return TlsObservation.model_validate(base)


def ids(obs: TlsObservation, ctx: CheckContext | None = None) -> set[str]:
    return {f.check_id for f in evaluate_tls(obs, ctx)}


def suite(name: str, protocol: str = "TLSv1.2", kex: str | None = None, size: int | None = None) -> AcceptedCipher:
    return AcceptedCipher(protocol=protocol, name=name, openssl_name=name, key_size=128, kex_type=kex, kex_size=size)


def test_catalogue_holds_exactly_the_contract_ids_with_bilingual_texts() -> None:
    tls_ids = {i for i in catalogue() if i.startswith("tls.")}
    assert tls_ids == CONTRACT_IDS
    for entry in catalogue().values():
        assert entry.title.vi and entry.title.en and entry.remediation.vi and entry.remediation.en
        assert entry.title.vi != entry.title.en


def test_clean_observation_has_no_findings() -> None:
    assert ids(good()) == set()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"protocols": {"SSLv2": True, "TLSv1.2": True, "TLSv1.3": True}}, {"tls.protocol.sslv2"}),
        ({"protocols": {"SSLv3": True, "TLSv1.2": True, "TLSv1.3": True}}, {"tls.protocol.sslv3"}),
        ({"protocols": {"TLSv1.0": True, "TLSv1.2": True, "TLSv1.3": True}}, {"tls.protocol.tls10"}),
        ({"protocols": {"TLSv1.1": True, "TLSv1.2": True, "TLSv1.3": True}}, {"tls.protocol.tls11"}),
        ({"protocols": {"TLSv1.2": True, "TLSv1.3": False}}, {"tls.protocol.tls13_missing"}),
        ({"heartbleed": True}, {"tls.vuln.heartbleed"}),
        ({"ccs_injection": True}, {"tls.vuln.ccs_injection"}),
        ({"robot": "VULNERABLE_STRONG_ORACLE"}, {"tls.vuln.robot"}),
        ({"robot": "VULNERABLE_WEAK_ORACLE"}, {"tls.vuln.robot"}),
        ({"robot": "UNKNOWN_INCONSISTENT_RESULTS"}, set()),
        ({"compression": True}, {"tls.vuln.compression"}),
        ({"secure_renegotiation": False}, {"tls.vuln.insecure_renegotiation"}),
        ({"fallback_scsv": False}, {"tls.vuln.no_fallback_scsv"}),
        ({"fallback_scsv": None}, set()),
    ],
)
def test_protocol_and_vulnerability_checks(changes: dict[str, object], expected: set[str]) -> None:
    assert ids(good(**changes)) == expected


def test_no_fallback_scsv_is_moot_with_a_single_protocol() -> None:
    obs = good(protocols={"TLSv1.2": False, "TLSv1.3": True}, fallback_scsv=False)
    assert ids(obs) == set()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("TLS_RSA_WITH_NULL_SHA256", {"NULL"}),
        ("TLS_ECDH_anon_WITH_AES_128_CBC_SHA", {"anonymous"}),
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", {"EXPORT", "RC4"}),
        ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", {"RC4"}),
        ("TLS_RSA_WITH_DES_CBC_SHA", {"DES"}),
        ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", {"3DES"}),
        ("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", {"DES", "3DES"}),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", set()),
        ("TLS_AES_128_GCM_SHA256", set()),
    ],
)
def test_cipher_weakness_classification(name: str, why: set[str]) -> None:
    assert cipher_weaknesses(name) == why


@pytest.mark.parametrize(
    ("name", "static"),
    [
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", True),
        ("TLS_DH_RSA_WITH_AES_128_CBC_SHA", True),
        ("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", True),
        ("SSL_CK_RC4_128_WITH_MD5", True),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", False),
        ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", False),
        ("TLS_DH_anon_WITH_AES_128_CBC_SHA", False),
        ("TLS_AES_256_GCM_SHA384", False),
    ],
)
def test_static_key_exchange_classification(name: str, static: bool) -> None:
    assert has_static_key_exchange(name) is static


def test_weak_suites_and_static_rsa_and_weak_dh() -> None:
    obs = good(accepted_ciphers=[
        suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", kex="DH", size=1024),
        suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", kex="ECDH", size=160),
    ])
    findings = {f.check_id: f for f in evaluate_tls(obs)}
    assert set(findings) == {"tls.cipher.weak", "tls.cipher.no_forward_secrecy", "tls.kex.weak_dh"}
    assert "3DES" in findings["tls.cipher.weak"].evidence
    assert "DH 1024 bits" in findings["tls.kex.weak_dh"].evidence and "ECDH 160" in findings["tls.kex.weak_dh"].evidence


def test_dh_2048_and_x25519_are_fine() -> None:
    obs = good(accepted_ciphers=[suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", kex="DH", size=2048),
                                 suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", kex="ECDH", size=253)])
    assert ids(obs) == set()


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        ({"not_after": NOW - timedelta(days=1)}, {"tls.cert.expired"}),
        ({"not_before": NOW + timedelta(days=2)}, {"tls.cert.not_yet_valid"}),
        ({"not_after": NOW + timedelta(days=29)}, {"tls.cert.expiring_soon"}),
        ({"not_after": NOW + timedelta(days=31)}, set()),
        ({"key_type": "RSA", "key_size": 1024}, {"tls.cert.weak_key"}),
        ({"key_type": "EC", "key_size": 224}, {"tls.cert.weak_key"}),
        ({"key_type": "EC", "key_size": 256}, set()),
        ({"signature_hash": "sha1"}, {"tls.cert.weak_signature"}),
        ({"signature_hash": "md5"}, {"tls.cert.weak_signature"}),
    ],
)
def test_leaf_certificate_checks(leaf: dict[str, object], expected: set[str]) -> None:
    obs = good(chain=[cert(**leaf), cert(subject="CN=Issuing CA", sha256="bb" * 32)])
    assert ids(obs) == expected


def test_expiry_window_comes_from_the_context() -> None:
    obs = good(chain=[cert(not_after=NOW + timedelta(days=50))])
    assert ids(obs, CheckContext(expiry_warning_days=60)) == {"tls.cert.expiring_soon"}
    assert ids(obs, CheckContext(expiry_warning_days=30)) == set()


def test_sha1_self_signed_root_sent_along_is_not_judged() -> None:
    root = cert(subject="CN=Root", issuer="CN=Root", self_signed=True, signature_hash="sha1", sha256="cc" * 32,
                key_size=1024)
    assert ids(good(chain=[cert(), cert(subject="CN=Issuing CA", sha256="bb" * 32), root])) == set()


def test_weak_intermediate_is_judged_with_its_own_fingerprint() -> None:
    inter = cert(subject="CN=Issuing CA", sha256="bb" * 32, signature_hash="sha1")
    findings = evaluate_tls(good(chain=[cert(), inter]))
    assert [(f.check_id, f.detail) for f in findings] == [("tls.cert.weak_signature", "bb" * 32)]


def test_hostname_mismatch_lists_the_certificate_names() -> None:
    findings = evaluate_tls(good(hostname_matches=False))
    assert [f.check_id for f in findings] == ["tls.cert.hostname_mismatch"]
    assert "portal.example.gov.vn" in findings[0].evidence


@pytest.mark.parametrize(
    ("self_signed", "trust", "expected"),
    [
        (True, ChainTrust(anchored=False), {"tls.cert.self_signed"}),
        (False, ChainTrust(anchored=False, anchored_with_aia=True, aia_urls_fetched=["http://x/ca.cer"]),
         {"tls.cert.chain_incomplete"}),
        (False, ChainTrust(anchored=False, anchored_with_aia=False, aia_urls_fetched=["http://x/ca.cer"]),
         {"tls.cert.untrusted"}),
        (False, ChainTrust(anchored=False, aia_error="http://10.0.0.1/x: address refused, not public"),
         {"tls.cert.untrusted"}),
        (True, ChainTrust(anchored=True, anchored_stores=["configured"]), set()),
    ],
)
def test_trust_checks(self_signed: bool, trust: ChainTrust, expected: set[str]) -> None:
    leaf = cert(self_signed=self_signed, issuer="CN=portal.example.gov.vn" if self_signed else "CN=Issuing CA")
    assert ids(good(chain=[leaf], trust=trust, trusted_stores=[])) == expected


@pytest.mark.parametrize("kind", list(Unreachable))
def test_unreachable_gives_one_finding_whatever_the_cause(kind: Unreachable) -> None:
    obs = TlsObservation(portal_url=URL, host="h", port=443, address=None, observed_at=NOW, unreachable=kind,
                         error="boom")
    findings = evaluate_tls(obs)
    assert [f.check_id for f in findings] == ["tls.unreachable"]
    assert findings[0].fingerprint == evaluate_tls(obs.model_copy(update={"error": "other"}))[0].fingerprint
    assert not obs.complete


def test_findings_carry_catalogue_severity_and_texts() -> None:
    finding = evaluate_tls(good(heartbleed=True))[0]
    assert finding.severity is Severity.CRITICAL
    assert finding.title_vi == catalogue()["tls.vuln.heartbleed"].title.vi
    assert finding.remediation_en


def test_evidence_is_bounded() -> None:
    many = [suite(f"TLS_RSA_WITH_NULL_SHA{i}") for i in range(50)]
    finding = next(f for f in evaluate_tls(good(accepted_ciphers=many)) if f.check_id == "tls.cipher.weak")
    assert "(+42)" in finding.evidence and len(finding.evidence) < 600
