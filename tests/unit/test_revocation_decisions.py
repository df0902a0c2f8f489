"""Revocation decisions on CRLs and OCSP responses built at run time (no network), and the revoked check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from checks import evaluate_tls
from collectors.certificates import describe
from collectors.revocation import (
    RevocationChecker,
    RevocationConfig,
    Unanswered,
    crl_verdict,
    ocsp_verdict,
    unchecked_reason,
)
from soc.core.observations import (
    ChainTrust,
    Revocation,
    RevocationMethod,
    RevocationStatus,
    TlsObservation,
)

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
REVOKED_AT = NOW - timedelta(days=3)
GOOD, REVOKED = RevocationStatus.GOOD, RevocationStatus.REVOKED


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "Test Issuing CA", key: ec.EllipticCurvePrivateKey | None = None) -> Authority:
    key = key or ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=365)).not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Authority(cert, key)


def make_leaf(ca: Authority, crl_url: str | None = None, ocsp_url: str | None = None,
              eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name("portal.example.gov.vn")).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=30)).not_valid_after(NOW + timedelta(days=300))
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False))
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if ocsp_url:
        access = x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def make_crl(ca: Authority, revoked: tuple[x509.Certificate, ...] = (), signer: Authority | None = None,
             last_update: datetime = NOW - timedelta(hours=1), next_update: datetime = NOW + timedelta(days=1),
             extensions: tuple[tuple[x509.ExtensionType, bool], ...] = ()) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
               .last_update(last_update).next_update(next_update))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(REVOKED_AT)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign((signer or ca).key, hashes.SHA256())


def make_ocsp(leaf: x509.Certificate, ca: Authority, status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
              signer: Authority | None = None, this_update: datetime = NOW - timedelta(minutes=5),
              next_update: datetime | None = NOW + timedelta(hours=4), about: x509.Certificate | None = None,
              certificates: tuple[x509.Certificate, ...] = ()) -> ocsp.OCSPResponse:
    signer = signer or ca
    revoked = status is ocsp.OCSPCertStatus.REVOKED
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=about or leaf, issuer=ca.cert, algorithm=hashes.SHA1(), cert_status=status,
        this_update=this_update, next_update=next_update,
        revocation_time=REVOKED_AT if revoked else None,
        revocation_reason=x509.ReasonFlags.superseded if revoked else None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    if certificates:
        builder = builder.certificates(list(certificates))
    return builder.sign(signer.key, hashes.SHA256())


def responder_for(ca: Authority, ocsp_signing: bool = True) -> Authority:
    """A delegated OCSP responder certificate issued by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (x509.CertificateBuilder().subject_name(_name("Test OCSP Responder")).issuer_name(ca.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Authority(cert, key)


def signed_by_a_server_certificate(leaf: x509.Certificate, ca: Authority) -> ocsp.OCSPResponse:
    """Signed by a certificate of the CA that is not an OCSP responder's."""
    other = responder_for(ca, ocsp_signing=False)
    return make_ocsp(leaf, ca, signer=other, certificates=(other.cert,))


CrlMaker = Callable[[Authority, x509.Certificate], x509.CertificateRevocationList]
OcspMaker = Callable[[Authority, x509.Certificate], ocsp.OCSPResponse]


@pytest.fixture(scope="module")
def ca() -> Authority:
    return make_ca()


@pytest.fixture(scope="module")
def leaf(ca: Authority) -> x509.Certificate:
    return make_leaf(ca)


# --- CRL --------------------------------------------------------------------------------------------------------


def test_crl_without_the_serial_says_good(ca: Authority, leaf: x509.Certificate) -> None:
    other = make_leaf(ca)
    assert crl_verdict(make_crl(ca, revoked=(other,)), leaf, ca.cert, NOW) == (GOOD, None, None)


def test_crl_with_the_serial_says_revoked_with_time_and_reason(ca: Authority, leaf: x509.Certificate) -> None:
    assert crl_verdict(make_crl(ca, revoked=(leaf,)), leaf, ca.cert, NOW) == (REVOKED, REVOKED_AT, "keyCompromise")


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        # Same issuer name, another key: a forged or mixed-up CRL must not say "good".
        (lambda ca, leaf: make_crl(ca, signer=make_ca("Test Issuing CA")), "CRL signature invalid"),
        (lambda ca, leaf: make_crl(make_ca("Another CA")), "CRL issued by another CA"),
        (lambda ca, leaf: make_crl(ca, revoked=(leaf,), last_update=NOW - timedelta(days=8),
                                   next_update=NOW - timedelta(days=1)), "CRL expired"),
        (lambda ca, leaf: make_crl(ca, last_update=NOW + timedelta(hours=2), next_update=NOW + timedelta(days=2)),
         "CRL not yet valid"),
        (lambda ca, leaf: make_crl(ca, extensions=((x509.DeltaCRLIndicator(7), True),)), "delta CRL (no full CRL)"),
        (lambda ca, leaf: make_crl(ca, extensions=((x509.IssuingDistributionPoint(
            None, None, False, False, frozenset({x509.ReasonFlags.key_compromise}), False, False), True),)),
         "partial CRL (issuing distribution point limits its scope)"),
    ],
)
def test_unusable_crls_give_no_verdict(ca: Authority, leaf: x509.Certificate, build: CrlMaker, reason: str) -> None:
    with pytest.raises(Unanswered) as caught:
        crl_verdict(build(ca, leaf), leaf, ca.cert, NOW)
    assert caught.value.reason == reason


# --- OCSP -------------------------------------------------------------------------------------------------------


def test_ocsp_good_and_revoked(ca: Authority, leaf: x509.Certificate) -> None:
    assert ocsp_verdict(make_ocsp(leaf, ca), leaf, ca.cert, NOW) == (GOOD, None, None)
    revoked = make_ocsp(leaf, ca, ocsp.OCSPCertStatus.REVOKED)
    assert ocsp_verdict(revoked, leaf, ca.cert, NOW) == (REVOKED, REVOKED_AT, "superseded")


def test_ocsp_from_a_delegated_responder_is_accepted(ca: Authority, leaf: x509.Certificate) -> None:
    responder = responder_for(ca)
    response = make_ocsp(leaf, ca, ocsp.OCSPCertStatus.REVOKED, signer=responder, certificates=(responder.cert,))
    assert ocsp_verdict(response, leaf, ca.cert, NOW)[0] is REVOKED


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda ca, leaf: make_ocsp(leaf, ca, signer=make_ca("Test Issuing CA")), "OCSP signature invalid"),
        # A responder certificate the CA issued for another purpose cannot speak for it.
        (lambda ca, leaf: signed_by_a_server_certificate(leaf, ca), "OCSP signature invalid"),
        (lambda ca, leaf: make_ocsp(leaf, ca, about=make_leaf(ca)), "OCSP response is not about this certificate"),
        (lambda ca, leaf: make_ocsp(leaf, ca, this_update=NOW - timedelta(days=2),
                                    next_update=NOW - timedelta(hours=1)), "OCSP response expired"),
        (lambda ca, leaf: make_ocsp(leaf, ca, this_update=NOW - timedelta(days=8), next_update=None),
         "OCSP response expired"),
        (lambda ca, leaf: make_ocsp(leaf, ca, this_update=NOW + timedelta(hours=1)), "OCSP response not yet valid"),
        (lambda ca, leaf: make_ocsp(leaf, ca, ocsp.OCSPCertStatus.UNKNOWN),
         "OCSP responder does not know the certificate"),
        (lambda ca, leaf: ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED),
         "OCSP responder answered unauthorized"),
    ],
)
def test_unusable_ocsp_responses_give_no_verdict(ca: Authority, leaf: x509.Certificate, build: OcspMaker,
                                                 reason: str) -> None:
    with pytest.raises(Unanswered) as caught:
        ocsp_verdict(build(ca, leaf), leaf, ca.cert, NOW)
    assert caught.value.reason == reason


# --- the checker without network: stapled responses and certificates without URLs --------------------------------


@pytest.fixture
def checker() -> RevocationChecker:
    return RevocationChecker(RevocationConfig(timeout=1.0))


def test_a_verified_stapled_response_decides(checker: RevocationChecker, ca: Authority, leaf: x509.Certificate) -> None:
    result = checker.check(leaf, ca.cert, make_ocsp(leaf, ca, ocsp.OCSPCertStatus.REVOKED), NOW)
    assert (result.status, result.method, result.url) == (REVOKED, RevocationMethod.OCSP_STAPLED, None)
    assert result.revoked_at == REVOKED_AT and result.revocation_reason == "superseded"


def test_a_forged_stapled_response_is_unknown_not_good(checker: RevocationChecker, ca: Authority,
                                                       leaf: x509.Certificate) -> None:
    forged = make_ocsp(leaf, ca, signer=make_ca("Test Issuing CA"))
    result = checker.check(leaf, ca.cert, forged, NOW)
    assert result.status is RevocationStatus.UNKNOWN and result.method is RevocationMethod.OCSP_STAPLED
    assert result.reason == "OCSP signature invalid"
    assert result.attempts == ["ocsp_stapled: OCSP signature invalid"]


@pytest.mark.parametrize(
    ("crl_url", "ocsp_url", "reason"),
    [(None, None, "no CRL or OCSP URL"), ("ldap://ca.example/cn=CRL", None, "no http CRL or OCSP URL")],
)
def test_nothing_to_ask_is_not_checked(checker: RevocationChecker, ca: Authority, crl_url: str | None,
                                       ocsp_url: str | None, reason: str) -> None:
    result = checker.check(make_leaf(ca, crl_url, ocsp_url), ca.cert, None, NOW)
    assert (result.status, result.reason, result.method) == (RevocationStatus.NOT_CHECKED, reason, None)


def test_only_an_anchored_valid_chain_is_checked(ca: Authority, leaf: x509.Certificate) -> None:
    info = describe(leaf)
    anchored = ChainTrust(anchored=True)
    assert unchecked_reason(info, anchored, NOW) is None
    assert unchecked_reason(info, ChainTrust(anchored=False, anchored_with_aia=True), NOW) is None
    assert unchecked_reason(info, ChainTrust(anchored=False), NOW) == "chain not anchored to a trust anchor"
    assert unchecked_reason(info, None, NOW) == "trust of the chain unknown"
    assert unchecked_reason(describe(ca.cert), anchored, NOW) == "self-signed certificate"
    assert unchecked_reason(info, anchored, NOW + timedelta(days=400)) == "certificate outside its validity period"


# --- the observation and the check ------------------------------------------------------------------------------


def observation(revocation: Revocation | None, leaf: x509.Certificate) -> TlsObservation:
    return TlsObservation(portal_url="https://portal.example.gov.vn/", host="portal.example.gov.vn", port=443,
                          address="127.0.0.1", observed_at=NOW, chain=[describe(leaf)],
                          trust=ChainTrust(anchored=True), hostname_matches=True, revocation=revocation)


def test_revoked_raises_the_check_with_its_evidence(leaf: x509.Certificate) -> None:
    revoked = Revocation(status=REVOKED, method=RevocationMethod.CRL, url="http://ca.example/ca.crl",
                         revoked_at=REVOKED_AT, revocation_reason="keyCompromise")
    findings = [f for f in evaluate_tls(observation(revoked, leaf)) if f.check_id == "tls.cert.revoked"]
    assert len(findings) == 1
    assert findings[0].detail == describe(leaf).sha256
    assert findings[0].evidence == (f"serial {leaf.serial_number:x} revoked on 2026-11-24 03:00 UTC (keyCompromise), "
                                    "per crl http://ca.example/ca.crl")


@pytest.mark.parametrize("status", [GOOD, RevocationStatus.UNKNOWN, RevocationStatus.NOT_CHECKED])
def test_no_revoked_finding_without_a_revoked_verdict(leaf: x509.Certificate, status: RevocationStatus) -> None:
    obs = observation(Revocation(status=status, reason="responder unreachable"), leaf)
    assert "tls.cert.revoked" not in {f.check_id for f in evaluate_tls(obs)}


@pytest.mark.parametrize(
    ("revocation", "unjudged"),
    [
        (Revocation(status=RevocationStatus.UNKNOWN, reason="responder unreachable"), ("tls.cert.revoked",)),
        (Revocation(status=GOOD), ()),
        (Revocation(status=REVOKED), ()),
        (Revocation(status=RevocationStatus.NOT_CHECKED, reason="no CRL or OCSP URL"), ()),
        (None, ()),
    ],
)
def test_an_unknown_status_leaves_the_revoked_check_unjudged(leaf: x509.Certificate, revocation: Revocation | None,
                                                             unjudged: tuple[str, ...]) -> None:
    obs = observation(revocation, leaf)
    assert obs.complete and obs.unjudged == unjudged
