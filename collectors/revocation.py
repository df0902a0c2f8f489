"""Is the leaf revoked? A stapled OCSP response, else the leaf's CRL, else its OCSP responder over http.

Every answer is hostile input until verified against the issuer's key (the issuer comes from the
anchored chain) and found inside its validity window; anything short of that is "unknown", never
"good". Fetching follows `collectors.fetch` (http only, no redirects, bounded size and time, the
address policy of AIA). The whole check of one portal shares one time budget, and a URL that failed
is not asked again in the same run, so a silent responder costs one budget per run, not per portal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x448, x25519
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from collectors.certificates import SignatureCheckError, crl_urls, is_issued_by, ocsp_urls
from collectors.fetch import FetchError, PolicyFetcher, TooLarge
from soc.core.clock import utcnow
from soc.core.net import IPNetwork
from soc.core.observations import (
    CertificateInfo,
    ChainTrust,
    Revocation,
    RevocationMethod,
    RevocationStatus,
)

CLOCK_SKEW = timedelta(minutes=5)
"""Tolerance for a CRL or OCSP response dated slightly in the future (the responder's clock)."""
MAX_OCSP_AGE = timedelta(days=7)
"""An OCSP response without nextUpdate is accepted this long after its thisUpdate."""
MAX_URLS = 2
"""CRL distribution points, and OCSP responders, asked at most per certificate."""
MAX_RESPONDER_CERTS = 4
MAX_TEXT = 300
OCSP_REQUEST_TYPE = "application/ocsp-request"


@dataclass(frozen=True)
class RevocationConfig:
    """Knobs of the revocation check (from Settings and the inventory's allowed networks)."""

    allowed_networks: Sequence[IPNetwork] = ()
    timeout: float = 3.0
    """Seconds the whole check of one portal may take (every CRL and OCSP request together)."""
    crl_max_bytes: int = 2 * 1024 * 1024
    ocsp_max_bytes: int = 65536


class Unanswered(Exception):
    """A source gave no verdict: `reason` says why in a few words, `detail` adds the technical message.

    `lasting` is True when asking again in the same run would be pointless (a 404, an oversized body, a
    responder that stayed silent for a fair share of the budget); False when only this portal's budget ran out.
    """

    def __init__(self, reason: str, detail: str | None = None, lasting: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.lasting = lasting


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def not_checked(reason: str) -> Revocation:
    """No revocation source was asked, and why."""
    return Revocation(status=RevocationStatus.NOT_CHECKED, reason=reason)


def unchecked_reason(leaf: CertificateInfo, trust: ChainTrust | None, now: datetime) -> str | None:
    """Why asking about revocation makes no sense for this chain; None when it does.

    Only a chain that leads to an anchor has an issuer whose word counts, and CAs drop certificates
    from their CRLs once expired.
    """
    if trust is None:
        return "trust of the chain unknown"
    if leaf.self_signed:
        return "self-signed certificate"
    if not (trust.anchored or trust.anchored_with_aia):
        return "chain not anchored to a trust anchor"
    if not leaf.not_before <= now <= leaf.not_after:
        return "certificate outside its validity period"
    return None


# --- verifying answers (pure: no network) -----------------------------------------------------------------------


def _load_crl(body: bytes) -> x509.CertificateRevocationList:
    for loader in (x509.load_der_x509_crl, x509.load_pem_x509_crl):
        try:
            return loader(body)
        except ValueError:
            continue
    raise Unanswered("not a CRL")


def _check_crl_scope(crl: x509.CertificateRevocationList) -> None:
    """A delta CRL, a partitioned CRL or an unknown critical extension cannot say "not revoked" alone."""
    try:
        extensions = list(crl.extensions)
    except ValueError as exc:
        raise Unanswered("CRL malformed", str(exc)) from None
    for extension in extensions:
        value = extension.value
        if isinstance(value, x509.DeltaCRLIndicator):
            raise Unanswered("delta CRL (no full CRL)")
        if isinstance(value, x509.IssuingDistributionPoint) and (
            value.indirect_crl or value.only_contains_ca_certs or value.only_contains_attribute_certs
            or value.only_some_reasons
        ):
            raise Unanswered("partial CRL (issuing distribution point limits its scope)")
        if extension.critical and isinstance(value, x509.UnrecognizedExtension):
            raise Unanswered("CRL has an unknown critical extension", extension.oid.dotted_string)


def crl_verdict(crl: x509.CertificateRevocationList, leaf: x509.Certificate, issuer: x509.Certificate,
                now: datetime) -> tuple[RevocationStatus, datetime | None, str | None]:
    """(good | revoked, revocation time, reason code) from a CRL verified against `issuer`; Unanswered if unusable."""
    if crl.issuer != issuer.subject:
        raise Unanswered("CRL issued by another CA")
    try:
        key = issuer.public_key()
        if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
            raise Unanswered("CRL signature not checkable", "the issuer's key cannot sign")
        valid = crl.is_signature_valid(key)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise Unanswered("CRL signature not checkable", f"{type(exc).__name__}: {exc}") from None
    if not valid:
        raise Unanswered("CRL signature invalid")
    if crl.last_update_utc > now + CLOCK_SKEW:
        raise Unanswered("CRL not yet valid", f"thisUpdate {crl.last_update_utc:%Y-%m-%d %H:%M} UTC")
    next_update = crl.next_update_utc
    if next_update is None:
        raise Unanswered("CRL has no nextUpdate")
    if next_update < now:
        raise Unanswered("CRL expired", f"nextUpdate {next_update:%Y-%m-%d %H:%M} UTC")
    _check_crl_scope(crl)
    try:
        entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
        reason = _entry_reason(entry) if entry is not None else None
    except ValueError as exc:
        raise Unanswered("CRL malformed", str(exc)) from None
    if entry is None or reason == x509.ReasonFlags.remove_from_crl.value:
        return RevocationStatus.GOOD, None, None
    return RevocationStatus.REVOKED, entry.revocation_date_utc, reason


def _entry_reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        return None


def _verify_with(key: object, response: ocsp.OCSPResponse) -> bool:
    """Does `key` verify the response's signature? Unanswered when that cannot be checked."""
    data, signature = response.tbs_response_bytes, response.signature
    try:
        algorithm = response.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            if response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
                raise Unanswered("OCSP signature not checkable", "RSASSA-PSS parameters are not exposed")
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
            key.verify(signature, data, algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise Unanswered("OCSP signature not checkable", f"{type(key).__name__} with {algorithm}")
    except InvalidSignature:
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise Unanswered("OCSP signature not checkable", f"{type(exc).__name__}: {exc}") from None
    return True


def _delegated_responder(cert: x509.Certificate, issuer: x509.Certificate, now: datetime) -> bool:
    """RFC 6960 §4.2.2.2: issued by the CA itself, for OCSP signing, valid now."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        issued = is_issued_by(cert, issuer)
    except (x509.ExtensionNotFound, ValueError, SignatureCheckError):
        return False
    return (issued and ExtendedKeyUsageOID.OCSP_SIGNING in usage
            and cert.not_valid_before_utc - CLOCK_SKEW <= now <= cert.not_valid_after_utc)


def _verify_ocsp_signature(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime) -> None:
    if _verify_with(issuer.public_key(), response):
        return
    for cert in response.certificates[:MAX_RESPONDER_CERTS]:
        if _delegated_responder(cert, issuer, now) and _verify_with(cert.public_key(), response):
            return
    raise Unanswered("OCSP signature invalid")


def _about(single: ocsp.OCSPSingleResponse, leaf: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Is this single response about `leaf` as issued by `issuer` (CertID: serial, issuer name and key hashes)?"""
    if single.serial_number != leaf.serial_number:
        return False
    try:
        expected = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, single.hash_algorithm).build()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return (single.issuer_name_hash, single.issuer_key_hash) == (expected.issuer_name_hash, expected.issuer_key_hash)


def ocsp_verdict(response: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate,
                 now: datetime) -> tuple[RevocationStatus, datetime | None, str | None]:
    """(good | revoked, revocation time, reason code) from an OCSP response verified against `issuer`."""
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise Unanswered(f"OCSP responder answered {response.response_status.name.lower()}")
    try:
        single = next((s for s in response.responses if _about(s, leaf, issuer)), None)
    except ValueError as exc:
        raise Unanswered("OCSP response malformed", str(exc)) from None
    if single is None:
        raise Unanswered("OCSP response is not about this certificate")
    _verify_ocsp_signature(response, issuer, now)
    if single.this_update_utc > now + CLOCK_SKEW:
        raise Unanswered("OCSP response not yet valid")
    next_update = single.next_update_utc
    if (next_update is not None and next_update < now) or (
            next_update is None and single.this_update_utc < now - MAX_OCSP_AGE):
        raise Unanswered("OCSP response expired")
    if single.certificate_status is ocsp.OCSPCertStatus.GOOD:
        return RevocationStatus.GOOD, None, None
    if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason
        return RevocationStatus.REVOKED, single.revocation_time_utc, reason.value if reason is not None else None
    raise Unanswered("OCSP responder does not know the certificate")


def ocsp_request(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSPRequest for `leaf` (SHA-1 CertID, as RFC 5019 responders expect)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


# --- asking the sources -----------------------------------------------------------------------------------------


Verdict = tuple[RevocationStatus, datetime | None, str | None]


class RevocationChecker:
    """Checks leaves' revocation for one scan run (holds the HTTP client, the CRL cache and the failed URLs)."""

    def __init__(self, config: RevocationConfig) -> None:
        self.config = config
        self._http = PolicyFetcher(config.allowed_networks, config.timeout)
        self._crls: dict[str, x509.CertificateRevocationList | Unanswered] = {}
        self._failed: dict[str, Unanswered] = {}
        """OCSP URLs that failed this run (a silent responder is waited for once)."""

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def check(self, leaf: x509.Certificate, issuer: x509.Certificate, stapled: ocsp.OCSPResponse | None,
              now: datetime | None = None, deadline: float | None = None) -> Revocation:
        """The leaf's revocation status: stapled OCSP, then each CRL, then each OCSP responder, first verdict wins.

        Every request ends by `config.timeout` from now, or by `deadline` (time.monotonic) if that is sooner.
        """
        now = now or utcnow()
        own = time.monotonic() + self.config.timeout
        deadline = own if deadline is None else min(own, deadline)
        sources: list[tuple[RevocationMethod, str | None, Callable[[], Verdict]]] = []
        if stapled is not None:
            sources.append((RevocationMethod.OCSP_STAPLED, None, lambda: ocsp_verdict(stapled, leaf, issuer, now)))
        crls, responders = _http_only(crl_urls(leaf)), _http_only(ocsp_urls(leaf))
        for url in crls:
            sources.append((RevocationMethod.CRL, url, self._crl_source(url, leaf, issuer, now, deadline)))
        for url in responders:
            sources.append((RevocationMethod.OCSP, url, self._ocsp_source(url, leaf, issuer, now, deadline)))
        if not sources:
            other = crl_urls(leaf) or ocsp_urls(leaf)
            return not_checked("no http CRL or OCSP URL" if other else "no CRL or OCSP URL")
        attempts: list[str] = []
        reasons: list[str] = []
        for method, source_url, source in sources:
            try:
                status, revoked_at, code = source()
            except Unanswered as exc:
                reasons.append(exc.reason)
                where = f"{method.value} {source_url}" if source_url else method.value
                attempts.append(_short(f"{where}: {exc.reason}" + (f" ({exc.detail})" if exc.detail else "")))
                continue
            return Revocation(status=status, method=method, url=source_url, revoked_at=revoked_at,
                              revocation_reason=code, attempts=attempts)
        return Revocation(status=RevocationStatus.UNKNOWN, method=sources[-1][0], url=sources[-1][1],
                          reason=_short("; ".join(dict.fromkeys(reasons))), attempts=attempts)

    def _crl_source(self, url: str, leaf: x509.Certificate, issuer: x509.Certificate, now: datetime,
                    deadline: float) -> Callable[[], Verdict]:
        return lambda: crl_verdict(self._crl(url, deadline), leaf, issuer, now)

    def _crl(self, url: str, deadline: float) -> x509.CertificateRevocationList:
        if url not in self._crls:
            try:
                body = self._get("CRL", deadline, lambda: self._http.get(url, self.config.crl_max_bytes, deadline))
                self._crls[url] = _load_crl(body)
            except Unanswered as exc:
                if not exc.lasting:
                    raise
                self._crls[url] = exc
        result = self._crls[url]
        if isinstance(result, Unanswered):
            raise result
        return result

    def _ocsp_source(self, url: str, leaf: x509.Certificate, issuer: x509.Certificate, now: datetime,
                     deadline: float) -> Callable[[], Verdict]:
        def ask() -> Verdict:
            if url in self._failed:
                raise self._failed[url]
            body = ocsp_request(leaf, issuer)
            try:
                answer = self._get("OCSP response", deadline, lambda: self._http.post(
                    url, body, OCSP_REQUEST_TYPE, self.config.ocsp_max_bytes, deadline))
            except Unanswered as exc:
                if exc.lasting:
                    self._failed[url] = exc
                raise
            try:
                response = ocsp.load_der_ocsp_response(answer)
            except ValueError as exc:
                raise Unanswered("OCSP response malformed", str(exc)) from None
            return ocsp_verdict(response, leaf, issuer, now)

        return ask

    def _get(self, what: str, deadline: float, fetch: Callable[[], bytes]) -> bytes:
        """Run one bounded fetch, turning its failure into the reason an operator reads."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Unanswered("time budget spent", lasting=False)
        try:
            return fetch()
        except TooLarge as exc:
            raise Unanswered(f"{what} too large", str(exc)) from None
        except FetchError as exc:
            if exc.transient:
                # Down for the run only if it had a fair chance; a request squeezed at the end of the budget did not.
                fair = remaining >= self.config.timeout / 2
                raise Unanswered("responder unreachable", str(exc), lasting=fair) from None
            raise Unanswered(f"{what} not fetched", str(exc)) from None


def _http_only(urls: Sequence[str]) -> list[str]:
    return [url for url in urls if url.lower().startswith("http://")][:MAX_URLS]
