"""Anchoring checks real signatures for every hash a chain may carry — MD5 and SHA-1 included — and an
unverifiable signature is "cannot tell", never "not signed" (which would become a false `tls.cert.untrusted`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from collectors.certificates import AnchorSet, SignatureCheckError, anchoring_stores, describe, is_issued_by

SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
LEGACY_WITH_RSA = {"md5": bytes.fromhex("06092a864886f70d010104"), "sha1": bytes.fromhex("06092a864886f70d010105")}
MD2_WITH_RSA = bytes.fromhex("06092a864886f70d010102")
LEGACY_HASH: dict[str, hashes.HashAlgorithm] = {"md5": hashes.MD5(), "sha1": hashes.SHA1()}
NOW = datetime.now(UTC)


def name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def issue(subject: str, issuer: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
          signer: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, ca: bool = False) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(signer, hashes.SHA256())


def resigned(cert: x509.Certificate, signer: rsa.RSAPrivateKey, digest: str) -> x509.Certificate:
    """`cert` signed again with md5/sha1WithRSAEncryption (which cryptography refuses to produce).

    The algorithm OIDs have the same length and a 2048-bit signature keeps its size, so the DER is
    patched in place: the OID in the TBS and in the outer AlgorithmIdentifier, then the signature.
    """
    der = cert.public_bytes(Encoding.DER)
    tbs = cert.tbs_certificate_bytes.replace(SHA256_WITH_RSA, LEGACY_WITH_RSA[digest])
    signature = signer.sign(tbs, padding.PKCS1v15(), LEGACY_HASH[digest])
    assert len(signature) == len(cert.signature)
    start = der.index(cert.tbs_certificate_bytes)
    tail = der[start + len(tbs):].replace(SHA256_WITH_RSA, LEGACY_WITH_RSA[digest]).replace(cert.signature, signature)
    return x509.load_der_x509_certificate(der[:start] + tbs + tail)


@pytest.fixture(scope="module")
def ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, issue("Lab Legacy Root", "Lab Legacy Root", key, key, ca=True)


@pytest.mark.parametrize("digest", ["md5", "sha1"])
def test_a_legacy_signature_under_a_trusted_anchor_is_anchored(ca: tuple[rsa.RSAPrivateKey, x509.Certificate],
                                                                digest: str) -> None:
    ca_key, root = ca
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = resigned(issue("legacy.lab.soc.test", "Lab Legacy Root", leaf_key, ca_key), ca_key, digest)
    assert describe(leaf).signature_hash == digest
    assert is_issued_by(leaf, root)
    assert anchoring_stores([leaf], AnchorSet([("configured", [root])])) == ["configured"]


def test_a_wrong_legacy_signature_is_not_anchored(ca: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    _ca_key, root = ca
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = resigned(issue("legacy.lab.soc.test", "Lab Legacy Root", leaf_key, impostor), impostor, "md5")
    assert not is_issued_by(forged, root)
    assert anchoring_stores([forged], AnchorSet([("configured", [root])])) == []


def test_a_signature_that_cannot_be_checked_is_not_a_verdict(ca: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    ca_key, root = ca
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = issue("md2.lab.soc.test", "Lab Legacy Root", leaf_key, ca_key)
    der = leaf.public_bytes(Encoding.DER).replace(SHA256_WITH_RSA, MD2_WITH_RSA)  # a hash nobody can compute now
    md2 = x509.load_der_x509_certificate(der)
    with pytest.raises(SignatureCheckError, match="not checkable"):
        is_issued_by(md2, root)
    with pytest.raises(SignatureCheckError, match="not checkable"):
        anchoring_stores([md2], AnchorSet([("configured", [root])]))
    other_root = issue("Another Root", "Another Root", ca_key, ca_key, ca=True)
    assert anchoring_stores([md2], AnchorSet([("configured", [other_root])])) == []  # no candidate: a plain no
