"""Fetching issuer certificates from AIA caIssuers URLs, as browsers do — under strict rules.

The URL comes from a certificate the scanned server chose, so it is hostile input: it is fetched
under the rules of `collectors.fetch` (http only, no redirects, a size cap, a timeout, the address policy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from collectors.fetch import FetchError, NoTimeLeft, PolicyFetcher
from soc.core.net import IPNetwork

AiaFetchError = FetchError
"""An AIA URL could not be fetched or did not hold a certificate (`transient`: see FetchError).

A transient failure leaves the chain's verdict unknown, not "untrusted", and the observation incomplete.
"""


def parse_certificates(body: bytes) -> list[x509.Certificate]:
    """Certificates from a DER, PEM or PKCS#7 (.p7c) body."""
    loaders = (
        lambda b: [x509.load_der_x509_certificate(b)],
        x509.load_pem_x509_certificates,
        pkcs7.load_der_pkcs7_certificates,
        pkcs7.load_pem_pkcs7_certificates,
    )
    for loader in loaders:
        try:
            certs = loader(body)
        except ValueError:
            continue
        if certs:
            return list(certs)
    raise AiaFetchError("body is not a DER/PEM certificate or PKCS#7 bundle")


class AiaFetcher:
    """Fetches caIssuers URLs with a per-run cache (portals often share an intermediate); thread-safe.

    Each fetch is one exchange under a hard deadline of `timeout` seconds (or the caller's, if sooner).
    Portals asking for the same URL at once share one request; a failure is remembered for the run,
    unless the caller's deadline cut it short (that says nothing about the URL).
    """

    def __init__(self, allowed_networks: Sequence[IPNetwork], timeout: float, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._cache: dict[str, list[x509.Certificate] | AiaFetchError] = {}
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}
        self._http = PolicyFetcher(allowed_networks, timeout)

    def fetch(self, url: str, deadline: float | None = None) -> list[x509.Certificate]:
        """The certificates behind one URL (by `deadline` on time.monotonic, if given), or AiaFetchError."""
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        wait = self._timeout if deadline is None else min(self._timeout, deadline - time.monotonic())
        if wait <= 0 or not url_lock.acquire(timeout=wait):  # another portal's fetch of this URL overran
            raise NoTimeLeft(f"{url[:200]}: no time left", transient=True)
        try:
            if url not in self._cache:
                full_time = deadline is None or deadline - time.monotonic() >= self._timeout
                try:
                    self._cache[url] = parse_certificates(self._http.get(url, self._max_bytes, deadline))
                except AiaFetchError as exc:
                    if full_time or not exc.transient:  # else the caller's deadline, not the URL, may be why
                        self._cache[url] = exc
                    raise
            result = self._cache[url]
        finally:
            url_lock.release()
        if isinstance(result, AiaFetchError):
            raise result
        return result

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()
