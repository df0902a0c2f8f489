"""Fetching issuer certificates from AIA caIssuers URLs, as browsers do — under strict rules.

The URL comes from a certificate the scanned server chose, so it is hostile input: only
http, no redirects, a size cap, a timeout, and never an address outside the public
internet unless the inventory allows that network (the portal lab allows loopback).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from collectors.bounded import IDENTITY_HEADERS, read_body
from collectors.netpolicy import AddressRefused, allowed_address
from soc.core.net import IPNetwork


class AiaFetchError(Exception):
    """An AIA URL could not be fetched or did not hold a certificate.

    `transient` is True for network failures (timeout, refused, 5xx): the chain's verdict is then
    unknown, not "untrusted", and the observation must be incomplete. Policy refusals and bodies
    that are not certificates are final answers.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


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
    """Fetches caIssuers URLs with a per-run cache (portals often share an intermediate)."""

    def __init__(self, allowed_networks: Sequence[IPNetwork], timeout: float, max_bytes: int) -> None:
        self._allowed = list(allowed_networks)
        self._max_bytes = max_bytes
        self._cache: dict[str, list[x509.Certificate] | AiaFetchError] = {}
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                    headers=IDENTITY_HEADERS)

    def fetch(self, url: str) -> list[x509.Certificate]:
        """The certificates behind one URL, or AiaFetchError saying why not."""
        if url not in self._cache:
            try:
                self._cache[url] = self._fetch(url)
            except AiaFetchError as exc:
                self._cache[url] = exc
        result = self._cache[url]
        if isinstance(result, AiaFetchError):
            raise result
        return result

    def _fetch(self, url: str) -> list[x509.Certificate]:
        try:
            return self._fetch_unchecked(url)
        except AiaFetchError:
            raise
        except Exception as exc:  # a malformed URL from a hostile certificate (bad port, IPv6 brackets…)
            raise AiaFetchError(f"{url[:200]}: {type(exc).__name__}: {exc}") from None

    def _fetch_unchecked(self, url: str) -> list[x509.Certificate]:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise AiaFetchError(f"{url[:200]}: only http URLs are fetched (RFC 5280 §4.2.2.1)")
        port = parts.port or 80
        try:
            address = allowed_address(parts.hostname, port, self._allowed)
        except AddressRefused as exc:
            raise AiaFetchError(str(exc)) from None
        host_for_url = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{host_for_url}:{port}", parts.path or "/", parts.query, ""))
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
        try:
            with self._client.stream("GET", target, headers=headers) as response:
                if response.status_code != 200:
                    raise AiaFetchError(f"{url[:200]}: HTTP {response.status_code}",
                                        transient=response.status_code >= 500)
                body = read_body(response, self._max_bytes + 1, time.monotonic() + 2 * self._timeout)
        except httpx.HTTPError as exc:
            raise AiaFetchError(f"{url[:200]}: {type(exc).__name__}: {exc}", transient=True) from None
        if len(body) > self._max_bytes:
            raise AiaFetchError(f"{url[:200]}: larger than {self._max_bytes} bytes")
        return parse_certificates(body)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
