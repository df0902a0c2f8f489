"""Certificate facts: parsing what a server sent, host-name matching, and anchoring a chain.

Anchoring answers one question only — does the chain lead to a trust anchor? — apart from the
date, the host name and algorithm policy (key size, SHA-1), which the checks judge separately.
cryptography's verifier (used by sslyze) refuses RSA-1024 or SHA-1 chains outright, which would
report a weak key as "untrusted"; so the path is built here by name and signature only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from soc.core.observations import CertificateInfo

MAX_TEXT = 512
"""Bound on any certificate text field kept (subject, issuer, names): certificates are hostile input."""
MAX_NAMES = 100
MAX_PEM_DER_BYTES = 64 * 1024
"""Certificates larger than this are described but not kept in PEM (thousands of SANs: hundreds of KiB)."""
MAX_CHAIN_DEPTH = 8
MAX_POOL = 16
"""Certificates of a sent chain considered for path building (real chains have 2–4)."""


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _name(name: x509.Name) -> str:
    try:
        return _bounded(name.rfc4514_string())
    except ValueError:
        return "<unparsable name>"


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except Exception:  # an unsupported key algorithm (e.g. GOST): not judged, not fatal
        return "other", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return "other", None


def _extension_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _all_san_dns_names(cert: x509.Certificate) -> list[str]:
    san = _extension_value(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if not isinstance(san, x509.SubjectAlternativeName):
        return []
    return san.get_values_for_type(x509.DNSName)


def san_dns_names(cert: x509.Certificate) -> list[str]:
    """The first MAX_NAMES DNS names of the Subject Alternative Name extension, each bounded: for storage only."""
    return [_bounded(n) for n in _all_san_dns_names(cert)[:MAX_NAMES]]


def san_ip_addresses(cert: x509.Certificate) -> list[str]:
    """Every IP address of the Subject Alternative Name extension (host matching judges on all of them)."""
    san = _extension_value(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if not isinstance(san, x509.SubjectAlternativeName):
        return []
    return [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def _aia_urls(cert: x509.Certificate, method: x509.ObjectIdentifier) -> list[str]:
    aia = _extension_value(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    if not isinstance(aia, x509.AuthorityInformationAccess):
        return []
    return [
        _bounded(d.access_location.value)
        for d in aia
        if d.access_method == method and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ][:MAX_NAMES]


def ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    """AIA caIssuers URLs (where the issuer's certificate can be downloaded)."""
    return _aia_urls(cert, AuthorityInformationAccessOID.CA_ISSUERS)


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """AIA OCSP responder URLs."""
    return _aia_urls(cert, AuthorityInformationAccessOID.OCSP)


def crl_urls(cert: x509.Certificate) -> list[str]:
    """URLs of the CRL distribution points that hold the full CRL of the certificate's own issuer.

    Points naming another CRL issuer (indirect CRLs) or only some revocation reasons are skipped:
    one of them alone cannot say "not revoked".
    """
    points = _extension_value(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    if not isinstance(points, x509.CRLDistributionPoints):
        return []
    return [
        _bounded(name.value)
        for point in points
        if point.crl_issuer is None and point.reasons is None and point.full_name
        for name in point.full_name
        if isinstance(name, x509.UniformResourceIdentifier)
    ][:MAX_NAMES]


class SignatureCheckError(Exception):
    """A signature that could not be checked (unsupported algorithm or key, malformed parameters).

    Not a verdict: "the issuer did not sign this" and "we cannot tell" must never be confused, or an
    internal limitation becomes a confident `tls.cert.untrusted`.
    """


def is_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `issuer`'s name and key produced `cert`'s signature (any algorithm, any key size).

    False when the signature is wrong; SignatureCheckError when it cannot be checked at all.
    """
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm):  # e.g. SHA-1/MD5 refused by policy: check by hand
        pass
    return _verify_legacy_signature(cert, issuer)


def _verify_legacy_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Signature check for what cryptography's verifier refuses (MD5, SHA-1, small keys); still a real check."""
    try:
        key, algorithm = issuer.public_key(), cert.signature_hash_algorithm
        data, signature = cert.tbs_certificate_bytes, cert.signature
        if algorithm is None:
            raise SignatureCheckError(f"signature algorithm {cert.signature_algorithm_oid.dotted_string} has no hash")
        if isinstance(key, rsa.RSAPublicKey):
            parameters = cert.signature_algorithm_parameters
            # md5WithRSAEncryption / sha1WithRSAEncryption carry no parameters object: PKCS#1 v1.5.
            rsa_padding = parameters if isinstance(parameters, padding.PSS) else padding.PKCS1v15()
            key.verify(signature, data, rsa_padding, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, data, algorithm)
        else:
            raise SignatureCheckError(f"issuer key {type(key).__name__} cannot check a {algorithm.name} signature")
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureCheckError(f"signature of {_name(cert.subject)} not checkable: {type(exc).__name__}: "
                                  f"{_bounded(str(exc))}") from exc
    return True


def find_issuer(cert: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The first of (at most MAX_POOL) candidates whose name and key signed `cert`; None when none did.

    A signature that cannot be checked counts as not signed: the caller then says it could not tell.
    """
    for candidate in candidates[:MAX_POOL]:
        try:
            if is_issued_by(cert, candidate):
                return candidate
        except SignatureCheckError:
            continue
    return None


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issuer equals subject and the certificate's own key verifies its signature."""
    return is_issued_by(cert, cert)


def describe(cert: x509.Certificate) -> CertificateInfo:
    """The facts the checks need about one certificate."""
    key_type, key_size = _key(cert)
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # UnsupportedAlgorithm for exotic signatures: recorded as unknown
        algorithm = None
    return CertificateInfo(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        serial=format(cert.serial_number, "x"),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_size=key_size,
        signature_hash=algorithm.name if algorithm is not None else None,
        self_signed=is_self_signed(cert),
        san_dns=san_dns_names(cert),
        san_dns_total=len(_all_san_dns_names(cert)),
        ca_issuers=ca_issuers_urls(cert),
        pem=_stored_pem(cert),
    )


def _stored_pem(cert: x509.Certificate) -> str:
    if len(cert.public_bytes(Encoding.DER)) > MAX_PEM_DER_BYTES:
        return ""
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        # RFC 6125 §6.4.3: the wildcard covers exactly one left-most label.
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:] and "." in rest
    return pattern == host


def hostname_matches(cert: x509.Certificate, host: str) -> bool:
    """Does the leaf certify `host`? Uses the SAN only, as browsers do (no Common Name fallback).

    Judged on every name the certificate carries: only what is stored is bounded (`san_dns_names`).
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return any(_dns_match(name, host) for name in _all_san_dns_names(cert))
    return str(address) in san_ip_addresses(cert)


class AnchorSet:
    """Trust anchors from the standard stores and the configured extra PEM files, indexed by subject."""

    def __init__(self, stores: Sequence[tuple[str, Sequence[x509.Certificate]]]) -> None:
        self._by_subject: dict[x509.Name, list[tuple[str, x509.Certificate]]] = {}
        self._fingerprints: dict[bytes, str] = {}
        for store_name, certs in stores:
            for cert in certs:
                self._by_subject.setdefault(cert.subject, []).append((store_name, cert))
                self._fingerprints.setdefault(cert.fingerprint(hashes.SHA256()), store_name)

    def issuers_of(self, cert: x509.Certificate, unknown: list[str] | None = None) -> list[str]:
        """Names of the stores holding an anchor that signed `cert`, or that hold `cert` itself.

        Signatures that cannot be checked count as not signed here and are noted in `unknown`.
        """
        found = [name for name, anchor in self._by_subject.get(cert.issuer, [])
                 if _checked_issued_by(cert, anchor, unknown)]
        own = self._fingerprints.get(cert.fingerprint(hashes.SHA256()))
        return list(dict.fromkeys(found + ([own] if own else [])))

    def named_issuers(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """Anchors whose subject is `cert`'s issuer name (signatures not checked: see `find_issuer`)."""
        return [anchor for _, anchor in self._by_subject.get(cert.issuer, [])]


def load_pem_bundle(path: Path) -> list[x509.Certificate]:
    """All certificates of a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())


@cache
def standard_anchor_stores() -> tuple[tuple[str, tuple[x509.Certificate, ...]], ...]:
    """The root stores shipped with sslyze (Mozilla, Apple, Microsoft, Java, Google AOSP)."""
    from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import TrustStoresRepository

    stores = TrustStoresRepository.get_default().get_all_stores()
    return tuple((store.name, tuple(load_pem_bundle(store.path))) for store in stores)


@dataclass(frozen=True)
class ExtraAnchors:
    """The inventory's extra trust stores as the collector could read them when the scan started."""

    certificates: tuple[x509.Certificate, ...] = ()
    pem: bytes = b""
    """The usable stores' PEM text, one after the other (for sslyze's custom CA file)."""
    errors: tuple[str, ...] = ()
    """One line per store that could not be used, naming it: it changed after the inventory was checked."""


def read_extra_anchors(paths: Iterable[Path]) -> ExtraAnchors:
    """Read the extra trust stores; one that cannot be read or parsed is named in `errors`, never fatal."""
    certificates: list[x509.Certificate] = []
    pem, errors = bytearray(), []
    for path in paths:
        try:
            data = path.read_bytes()
            certificates += x509.load_pem_x509_certificates(data)
        except (OSError, ValueError) as exc:
            text = " ".join(str(exc).split())[:200]
            errors.append(f"trust store {path} unusable: {type(exc).__name__}: {text}")
            continue
        pem += data.strip() + b"\n"
    return ExtraAnchors(tuple(certificates), bytes(pem), tuple(errors))


def anchor_set(extra: Iterable[x509.Certificate]) -> AnchorSet:
    """Standard stores plus the inventory's extra trust anchors."""
    return AnchorSet([*standard_anchor_stores(), ("configured", list(extra))])


def anchoring_stores(chain: Sequence[x509.Certificate], anchors: AnchorSet) -> list[str]:
    """Stores reached by some path from the leaf through the sent certificates to an anchor ([] when none).

    A breadth-first search with one visited set: each certificate is tried once, so a hostile server
    sending many mutually-issuing certificates costs n² signature checks at most, never n!.
    SignatureCheckError when no path was found and some signature on the way could not be checked, or
    the search bounds (MAX_POOL certificates, MAX_CHAIN_DEPTH levels) were reached: then "untrusted" is
    not known.
    """
    unknown: list[str] = []
    stores = _anchoring_stores(chain, anchors, unknown)
    if not stores and unknown:
        raise SignatureCheckError("; ".join(dict.fromkeys(unknown[:3])))
    return stores


def _checked_issued_by(cert: x509.Certificate, issuer: x509.Certificate, unknown: list[str] | None) -> bool:
    try:
        return is_issued_by(cert, issuer)
    except SignatureCheckError as exc:
        if unknown is None:
            raise
        unknown.append(str(exc))
        return False


def _anchoring_stores(chain: Sequence[x509.Certificate], anchors: AnchorSet, unknown: list[str]) -> list[str]:
    # The bounds limit the work a hostile chain costs; a path they may have cut off is "cannot tell", never "no".
    pool = list(chain[1 : MAX_POOL + 1])
    if len(chain) - 1 > MAX_POOL:
        unknown.append(f"the server sent {len(chain)} certificates; only the first {MAX_POOL + 1} were searched")
    leaf = chain[0]
    visited = {leaf.fingerprint(hashes.SHA256())}
    frontier = [leaf]
    for _depth in range(MAX_CHAIN_DEPTH + 1):
        next_frontier = []
        for cert in frontier:
            stores = anchors.issuers_of(cert, unknown)
            if stores:
                return stores
            for candidate in pool:
                fingerprint = candidate.fingerprint(hashes.SHA256())
                if fingerprint not in visited and _checked_issued_by(cert, candidate, unknown):
                    visited.add(fingerprint)
                    next_frontier.append(candidate)
        if not next_frontier:
            return []
        frontier = next_frontier
    unknown.append(f"no anchor within {MAX_CHAIN_DEPTH} intermediates; longer paths were not searched")
    return []
