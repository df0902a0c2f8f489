"""Run-time PKI of the portal lab: lab CAs, leaf certificates and weak DH parameters.

Everything is generated with `cryptography` when a lab starts and written only under the
lab's work directory (never into the repository). RSA keys are generated once per lab,
one per size, and shared between leaves so that start-up stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from soc.lab.revocation import LabRevocation, crl_path, ocsp_path

ROOT_CA_NAME = "SOC Lab Root CA"
ISSUING_CA_NAME = "SOC Lab Issuing CA"
UNTRUSTED_ROOT_NAME = "Untrusted Lab Root"
ORGANIZATION = "SOC Lab"
AIA_PATH = "/issuing-ca.cer"

OAKLEY_GROUP2_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381"
    "FFFFFFFFFFFFFFFF",
    16,
)
"""RFC 2409 §6.2 Oakley group 2: the 1024-bit MODP prime (generator 2)."""

_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_LEGACY_WITH_RSA = {
    "sha1": (bytes.fromhex("300d06092a864886f70d0101050500"), hashes.SHA1()),
    "md5": (bytes.fromhex("300d06092a864886f70d0101040500"), hashes.MD5()),
}
"""AlgorithmIdentifiers (sha1/md5WithRSAEncryption, NULL parameters) and their hashes."""

Issuer = Literal["intermediate", "untrusted_root", "self"]
CA_NAMES: dict[str, str] = {"intermediate": "issuing-ca", "untrusted_root": "untrusted-root"}
"""Each issuing CA's name in its CRL and OCSP paths (/crl/issuing-ca.crl, /ocsp/issuing-ca)."""
HashName = Literal["sha256", "sha1", "md5"]


@dataclass(frozen=True)
class LeafSpec:
    """How to build one leaf certificate; day offsets are relative to now."""

    issuer: Issuer = "intermediate"
    key_bits: int = 2048
    hash_name: HashName = "sha256"
    not_before_days: int = -1
    not_after_days: int = 365
    san: str | None = None
    """dNSName to put in the SAN instead of the case host (wrong_host)."""
    extra_sans: int = 0
    """Other sites' dNSNames put before the case host in the SAN (a shared-hosting certificate)."""
    revoked: bool = False
    """The issuing CA has revoked the leaf: it is on the CA's CRL and its OCSP responder says so."""
    crl: bool = True
    """The leaf names its CA's CRL (a CRL distribution point)."""
    ocsp: bool = False
    """The leaf names its CA's OCSP responder (AIA id-ad-ocsp)."""
    organization: str = ORGANIZATION
    """The subject's O (hostile_text: markup a dashboard must show as text)."""
    unit: str | None = None
    """The subject's OU (none by default)."""


@dataclass(frozen=True)
class LeafFiles:
    """PEM files a TLS server loads: the chain it sends (leaf first) and the leaf key."""

    chain_path: Path
    key_path: Path
    leaf: x509.Certificate


@dataclass(frozen=True)
class _Authority:
    """A CA certificate with its private key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def _name(common_name: str, organization: str = ORGANIZATION, unit: str | None = None) -> x509.Name:
    """An X.509 name with the organization (the lab's by default), an optional OU and the given CN."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _der_length(length: int) -> bytes:
    """DER encoding of a content length."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    """One DER element."""
    return bytes([tag]) + _der_length(len(content)) + content


def _der_bounds(data: bytes, offset: int) -> tuple[int, int]:
    """(start of content, end of element) of the DER element at `offset`."""
    first = data[offset + 1]
    if first < 0x80:
        return offset + 2, offset + 2 + first
    count = first & 0x7F
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    start = offset + 2 + count
    return start, start + length


def _resign(cert: x509.Certificate, key: rsa.RSAPrivateKey, hash_name: HashName) -> x509.Certificate:
    """Re-sign a sha256WithRSAEncryption certificate with sha1- or md5WithRSAEncryption.

    `cryptography` no longer signs certificates with SHA-1 or MD5, so the TBS part is reused with its
    signature AlgorithmIdentifier (after version and serial) swapped, and signed by hand.
    """
    algorithm, digest = _LEGACY_WITH_RSA[hash_name]
    tbs = cert.tbs_certificate_bytes
    inner, _ = _der_bounds(tbs, 0)
    _, after_version = _der_bounds(tbs, inner)
    _, after_serial = _der_bounds(tbs, after_version)
    if tbs[after_serial : after_serial + len(_SHA256_WITH_RSA)] != _SHA256_WITH_RSA:
        raise ValueError("expected a sha256WithRSAEncryption TBS certificate")
    tbs = tbs[:after_serial] + algorithm + tbs[after_serial + len(_SHA256_WITH_RSA) :]
    signature = key.sign(tbs, padding.PKCS1v15(), digest)
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem(cert: x509.Certificate) -> bytes:
    """PEM encoding of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def _aia(ca_issuers: str | None, ocsp_url: str | None = None) -> x509.AuthorityInformationAccess:
    """An AIA extension with a caIssuers URL and/or an OCSP responder URL."""
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in ((AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers),
                            (AuthorityInformationAccessOID.OCSP, ocsp_url))
        if url is not None
    ]
    return x509.AuthorityInformationAccess(access)


def _crl_distribution_point(url: str) -> x509.CRLDistributionPoints:
    """A CRL distribution point extension with one full-CRL URL."""
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
    return x509.CRLDistributionPoints([point])


def _leaf_subject(spec: LeafSpec, host: str) -> x509.Name:
    """The subject of a leaf for `host` (also its issuer when self-signed)."""
    return _name(spec.san or host, spec.organization, spec.unit)


def _san_names(spec: LeafSpec, dns_name: str) -> list[x509.GeneralName]:
    """The leaf's SAN: `extra_sans` other sites first, then its own name (last, as hosting panels append it)."""
    others: list[x509.GeneralName] = [
        x509.DNSName(f"site-{index:05d}.shared-hosting.{dns_name}") for index in range(spec.extra_sans)
    ]
    return [*others, x509.DNSName(dns_name)]


def write_dh1024_params(path: Path) -> Path:
    """Write the 1024-bit Oakley group 2 parameters (g=2) as a PEM "DH PARAMETERS" file."""
    params = dh.DHParameterNumbers(OAKLEY_GROUP2_PRIME, 2).parameters()
    path.write_bytes(params.parameter_bytes(serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3))
    return path


class LabPKI:
    """The lab's certificate authorities and keys, written under `directory`."""

    def __init__(self, directory: Path) -> None:
        """Generate the trusted root, its issuing intermediate and the untrusted root."""
        self.directory = directory
        (directory / "certs").mkdir(parents=True, exist_ok=True)
        (directory / "keys").mkdir(parents=True, exist_ok=True)
        self._now = datetime.now(UTC)
        self._leaf_keys: dict[int, tuple[rsa.RSAPrivateKey, Path]] = {}
        self.root = self._self_signed_ca(ROOT_CA_NAME)
        self.intermediate = self._intermediate(self.root)
        self.untrusted_root = self._self_signed_ca(UNTRUSTED_ROOT_NAME)
        self.trust_store_path = directory / "root-ca.pem"
        self.trust_store_path.write_bytes(_pem(self.root.cert))
        (directory / "issuing-ca.pem").write_bytes(_pem(self.intermediate.cert))
        (directory / "untrusted-root.pem").write_bytes(_pem(self.untrusted_root.cert))
        self.revocation = LabRevocation()
        """The CAs' CRLs and OCSP responder, served by the lab's AIA server."""
        self.revocation.add_ca(CA_NAMES["intermediate"], self.intermediate.cert, self.intermediate.key)
        self.revocation.add_ca(CA_NAMES["untrusted_root"], self.untrusted_root.cert, self.untrusted_root.key)

    @property
    def intermediate_der(self) -> bytes:
        """The issuing CA certificate in DER, as served at the AIA URL."""
        return self.intermediate.cert.public_bytes(serialization.Encoding.DER)

    def _ca_builder(self, subject: str, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
        """Common part of every lab CA certificate (valid two years back, ten ahead)."""
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - timedelta(days=730))
            .not_valid_after(self._now + timedelta(days=3650))
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    def _self_signed_ca(self, common_name: str) -> _Authority:
        """A self-signed root CA with its own RSA 2048 key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            self._ca_builder(common_name, _name(common_name), key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return _Authority(cert, key)

    def _intermediate(self, root: _Authority) -> _Authority:
        """The issuing CA, signed by the trusted root."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            self._ca_builder(ISSUING_CA_NAME, root.cert.subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()), critical=False)
            .sign(root.key, hashes.SHA256())
        )
        return _Authority(cert, key)

    def leaf_key(self, bits: int) -> tuple[rsa.RSAPrivateKey, Path]:
        """The shared leaf key of this size and its PEM file (generated on first use)."""
        if bits not in self._leaf_keys:
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            path = self.directory / "keys" / f"rsa{bits}.key"
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(path, pem)
            self._leaf_keys[bits] = (key, path)
        return self._leaf_keys[bits]

    def _signer(self, spec: LeafSpec) -> _Authority | None:
        """The authority that signs a leaf; None for a self-signed one."""
        if spec.issuer == "intermediate":
            return self.intermediate
        if spec.issuer == "untrusted_root":
            return self.untrusted_root
        return None

    def _leaf_builder(self, spec: LeafSpec, host: str, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
        """Subject, validity and end-entity extensions of a leaf (issuer is set by the caller)."""
        dns_name = spec.san or host
        return (
            x509.CertificateBuilder()
            .subject_name(_leaf_subject(spec, host))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now + timedelta(days=spec.not_before_days))
            .not_valid_after(self._now + timedelta(days=spec.not_after_days))
            .add_extension(x509.SubjectAlternativeName(_san_names(spec, dns_name)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    def _sign_leaf(self, spec: LeafSpec, host: str, aia_url: str, revocation_base: str | None) -> x509.Certificate:
        """Build and sign the leaf certificate described by `spec` (CRL and OCSP URLs under `revocation_base`)."""
        key, _ = self.leaf_key(spec.key_bits)
        builder = self._leaf_builder(spec, host, key)
        signer = self._signer(spec)
        signing_key = key if signer is None else signer.key
        if signer is None:
            builder = builder.issuer_name(_leaf_subject(spec, host))
        else:
            builder = builder.issuer_name(signer.cert.subject).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.key.public_key()), critical=False
            )
        ca = CA_NAMES.get(spec.issuer)
        ocsp_url = f"{revocation_base}{ocsp_path(ca)}" if ca and revocation_base and spec.ocsp else None
        if signer is self.intermediate or ocsp_url is not None:
            builder = builder.add_extension(_aia(aia_url if signer is self.intermediate else None, ocsp_url),
                                            critical=False)
        if ca and revocation_base and spec.crl:
            builder = builder.add_extension(_crl_distribution_point(f"{revocation_base}{crl_path(ca)}"),
                                            critical=False)
        cert = builder.sign(signing_key, hashes.SHA256())
        return cert if spec.hash_name == "sha256" else _resign(cert, signing_key, spec.hash_name)

    def issue_leaf(self, spec: LeafSpec, host: str, aia_url: str, send_issuer: bool = True,
                   revocation_base: str | None = None) -> LeafFiles:
        """Issue a leaf for `host` and write the chain the server sends (leaf, then its issuer).

        With `revocation_base` (the AIA server's http://address:port) a CA-issued leaf names its CA's CRL
        (and OCSP responder when the spec asks) there, and is registered with its CA's revocation services.
        """
        leaf = self._sign_leaf(spec, host, aia_url, revocation_base)
        if spec.issuer in CA_NAMES:
            self.revocation.register(CA_NAMES[spec.issuer], leaf, revoked=spec.revoked)
        chain = _pem(leaf)
        signer = self._signer(spec)
        if send_issuer and signer is not None:
            chain += _pem(signer.cert)
        chain_path = self.directory / "certs" / f"{host}.pem"
        chain_path.write_bytes(chain)
        _, key_path = self.leaf_key(spec.key_bits)
        return LeafFiles(chain_path=chain_path, key_path=key_path, leaf=leaf)
