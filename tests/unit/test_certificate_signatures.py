"""Anchoring checks real signatures for every hash a chain may carry — MD5 and SHA-1 included — and an
unverifiable signature is "cannot tell", never "not signed" (which would become a false `tls.cert.untrusted`)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from collectors.certificates import (
    AnchorSet,
    SignatureCheckError,
    anchoring_stores,
    describe,
    is_issued_by,
    is_self_signed,
)

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


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
KINDS: dict[str, tuple[str, str | None]] = {
    # kind: (key family, hash named by the signature algorithm)
    "rsa-pkcs1-md5": ("rsa", "md5"), "rsa-pkcs1-sha1": ("rsa", "sha1"), "rsa-pkcs1-sha256": ("rsa", "sha256"),
    "rsa-pkcs1-sha384": ("rsa", "sha384"), "rsa-pkcs1-sha512": ("rsa", "sha512"), "rsa-pss-sha256": ("rsa", "sha256"),
    "ecdsa-p256-sha256": ("p256", "sha256"), "ecdsa-p384-sha384": ("p384", "sha384"),
    "ed25519": ("ed25519", None), "ed448": ("ed448", None),
}
MODERN_HASH: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


@functools.cache
def family_key(family: str, role: str) -> PrivateKey:
    """One key per family and role ('issuer', 'impostor'), generated once for the matrix."""
    del role  # part of the cache key only
    if family == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if family in ("p256", "p384"):
        return ec.generate_private_key(ec.SECP256R1() if family == "p256" else ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate() if family == "ed25519" else ed448.Ed448PrivateKey.generate()


def signed(kind: str, subject: str, issuer: str, public_key: CertificatePublicKeyTypes, signer: PrivateKey,
           ca: bool = False) -> x509.Certificate:
    """A certificate for `public_key` named `subject`, signed by `signer` under `issuer`'s name, the `kind` way."""
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    digest = KINDS[kind][1]
    if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return builder.sign(signer, None)
    if digest in LEGACY_HASH:
        assert isinstance(signer, rsa.RSAPrivateKey)
        return resigned(builder.sign(signer, hashes.SHA256()), signer, digest)
    assert digest is not None
    if kind.startswith("rsa-pss"):
        return builder.sign(signer, MODERN_HASH[digest], rsa_padding=PSS)
    return builder.sign(signer, MODERN_HASH[digest])


@pytest.mark.parametrize("kind", list(KINDS))
def test_signature_matrix_anchors_every_algorithm_and_rejects_a_wrong_key(kind: str) -> None:
    family, digest = KINDS[kind]
    issuer_key, impostor = family_key(family, "issuer"), family_key(family, "impostor")
    root = signed(kind, "Matrix Root", "Matrix Root", issuer_key.public_key(), issuer_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = signed(kind, "matrix.lab.soc.test", "Matrix Root", leaf_key.public_key(), issuer_key)
    forged = signed(kind, "matrix.lab.soc.test", "Matrix Root", leaf_key.public_key(), impostor)
    anchors = AnchorSet([("configured", [root])])

    assert describe(leaf).signature_hash == digest
    assert is_issued_by(leaf, root) and anchoring_stores([leaf], anchors) == ["configured"]
    assert is_self_signed(root)
    assert not is_issued_by(forged, root) and anchoring_stores([forged], anchors) == []
    # The same through an intermediate sent by the server: issuer → intermediate → leaf.
    inter_key = family_key(family, "intermediate")
    inter = signed(kind, "Matrix Intermediate", "Matrix Root", inter_key.public_key(), issuer_key, ca=True)
    below = signed(kind, "matrix.lab.soc.test", "Matrix Intermediate", leaf_key.public_key(), inter_key)
    assert anchoring_stores([below, inter], anchors) == ["configured"]
    fake_inter = signed(kind, "Matrix Intermediate", "Matrix Root", inter_key.public_key(), impostor, ca=True)
    assert anchoring_stores([below, fake_inter], anchors) == []
