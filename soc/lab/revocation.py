"""Revocation services of the lab CAs: a real CRL per CA and an OCSP responder, both on the lab's AIA server.

Each CA publishes `/crl/<ca>.crl` (DER, signed by the CA, fresh at every request: thisUpdate an hour
ago, nextUpdate a day ahead) and answers OCSP requests POSTed to `/ocsp/<ca>` (signed by the CA itself,
RFC 6960 §4.2.2.2). Leaves are registered when issued; a revoked leaf is on its CA's CRL and the
responder says "revoked".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

CRL_PREFIX = "/crl/"
OCSP_PREFIX = "/ocsp/"
CRL_TYPE = "application/pkix-crl"
OCSP_TYPE = "application/ocsp-response"
REVOKED_AGO = timedelta(days=2)
REVOCATION_REASON = x509.ReasonFlags.key_compromise


@dataclass(frozen=True)
class _CA:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey


def crl_path(ca: str) -> str:
    """Where a CA's CRL is published on the lab's AIA server."""
    return f"{CRL_PREFIX}{ca}.crl"


def ocsp_path(ca: str) -> str:
    """Where a CA's OCSP responder listens on the lab's AIA server."""
    return f"{OCSP_PREFIX}{ca}"


class LabRevocation:
    """The lab CAs' revocation registry; `get` / `post` answer the HTTP server's requests."""

    def __init__(self) -> None:
        """No CA and no certificate yet."""
        self._lock = threading.Lock()
        self._cas: dict[str, _CA] = {}
        self._issued: dict[int, tuple[str, x509.Certificate]] = {}
        self._revoked: dict[int, datetime] = {}

    def add_ca(self, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        """Publish a CRL and run a responder for this CA under `name` (e.g. 'issuing-ca')."""
        with self._lock:
            self._cas[name] = _CA(cert, key)

    def register(self, ca: str, leaf: x509.Certificate, revoked: bool = False) -> None:
        """Record a leaf issued by `ca`; a revoked one goes on the CRL, revoked two days ago."""
        with self._lock:
            self._issued[leaf.serial_number] = (ca, leaf)
            if revoked:
                self._revoked[leaf.serial_number] = datetime.now(UTC) - REVOKED_AGO

    def crl_der(self, ca: str) -> bytes | None:
        """The CA's current CRL in DER (None for an unknown CA)."""
        now = datetime.now(UTC)
        with self._lock:
            authority = self._cas.get(ca)
            revoked = [(serial, when) for serial, when in self._revoked.items() if self._issued[serial][0] == ca]
        if authority is None:
            return None
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.cert.subject)
            .last_update(now - timedelta(hours=1))
            .next_update(now + timedelta(days=1))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
                           critical=False)
        )
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
                .add_extension(x509.CRLReason(REVOCATION_REASON), critical=False).build()
            )
        return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp_der(self, ca: str, request_der: bytes) -> bytes:
        """The responder's DER answer to one OCSPRequest (unauthorized for certificates it did not issue)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        with self._lock:
            authority = self._cas.get(ca)
            issued = self._issued.get(request.serial_number)
            revoked_at = self._revoked.get(request.serial_number)
        if authority is None or issued is None or issued[0] != ca:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = datetime.now(UTC)
        status = ocsp.OCSPCertStatus.GOOD if revoked_at is None else ocsp.OCSPCertStatus.REVOKED
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=issued[1], issuer=authority.cert, algorithm=request.hash_algorithm, cert_status=status,
            this_update=now - timedelta(minutes=1), next_update=now + timedelta(hours=1),
            revocation_time=revoked_at, revocation_reason=REVOCATION_REASON if revoked_at else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, authority.cert)
        return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def get(self, path: str) -> tuple[str, bytes] | None:
        """(content type, body) for a GET of `path`, None when it is not a CRL of ours."""
        if path.startswith(CRL_PREFIX) and path.endswith(".crl"):
            der = self.crl_der(path[len(CRL_PREFIX) : -len(".crl")])
            return (CRL_TYPE, der) if der is not None else None
        return None

    def post(self, path: str, body: bytes) -> tuple[str, bytes] | None:
        """(content type, body) for a POST to `path`, None when it is not a responder of ours."""
        ca = path[len(OCSP_PREFIX) :] if path.startswith(OCSP_PREFIX) else None
        with self._lock:
            known = ca in self._cas
        if ca is None or not known:
            return None
        return OCSP_TYPE, self.ocsp_der(ca, body)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
