"""Plain-HTTP requests a scanned certificate asks for (AIA caIssuers, CRLs, OCSP) — under strict rules.

The URL comes from a certificate the scanned server chose, so it is hostile input: only http, no
redirects, a size cap, a hard deadline on the whole exchange (connect, headers and body: a server
trickling bytes is cut when it passes, see `collectors.deadline`), and never an address outside the
public internet unless the inventory allows that network (the portal lab allows loopback).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from collectors.bounded import IDENTITY_HEADERS, read_body
from collectors.deadline import Deadline
from collectors.netpolicy import AddressRefused, allowed_address
from soc.core.net import IPNetwork

MAX_URL_SHOWN = 200


class FetchError(Exception):
    """A URL could not be fetched, or its body was not what was asked for.

    `transient` is True for network failures (timeout, refused, 5xx): the answer is then unknown and
    may differ next time. Policy refusals, oversized and malformed bodies are final answers.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class TooLarge(FetchError):
    """The body exceeded the size cap."""


class TooSlow(FetchError):
    """The exchange was not over by its deadline (the server is silent or trickles): transient."""


class NoTimeLeft(FetchError):
    """Not attempted: the caller's deadline had already passed (says nothing about the URL): transient."""


class PolicyFetcher:
    """An HTTP client for URLs taken from certificates: http only, no redirects, bounded size and time.

    `timeout` is the whole exchange's limit (a hard deadline, not a per-read timeout).
    """

    def __init__(self, allowed_networks: Sequence[IPNetwork], timeout: float) -> None:
        self._allowed = list(allowed_networks)
        self._timeout = timeout
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                                    headers=IDENTITY_HEADERS)

    def get(self, url: str, max_bytes: int, deadline: float | None = None) -> bytes:
        """The body behind `url` (at most `max_bytes`, by `deadline` on time.monotonic), or FetchError."""
        return self._guarded("GET", url, max_bytes, deadline, None, {})

    def post(self, url: str, body: bytes, content_type: str, max_bytes: int, deadline: float | None = None) -> bytes:
        """POST `body` and return the answer's body under the same rules as `get`."""
        return self._guarded("POST", url, max_bytes, deadline, body, {"Content-Type": content_type})

    def _guarded(self, method: str, url: str, max_bytes: int, deadline: float | None, content: bytes | None,
                 headers: dict[str, str]) -> bytes:
        try:
            return self._request(method, url, max_bytes, deadline, content, headers)
        except FetchError:
            raise
        except Exception as exc:  # a malformed URL from a hostile certificate (bad port, IPv6 brackets…)
            raise FetchError(f"{url[:MAX_URL_SHOWN]}: {type(exc).__name__}: {exc}") from None

    def _request(self, method: str, url: str, max_bytes: int, deadline: float | None, content: bytes | None,
                 headers: dict[str, str]) -> bytes:
        shown = url[:MAX_URL_SHOWN]
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise FetchError(f"{shown}: only http URLs are fetched (RFC 5280 §4.2.2.1)")
        port = parts.port or 80
        try:
            address = allowed_address(parts.hostname, port, self._allowed)
        except AddressRefused as exc:
            raise FetchError(str(exc)) from None
        limit = Deadline(self._timeout, at=deadline, what=f"{method} {shown}")
        if limit.remaining() <= 0:
            raise NoTimeLeft(f"{shown}: no time left", transient=True)
        host_for_url = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{host_for_url}:{port}", parts.path or "/", parts.query, ""))
        headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        try:
            with limit, self._client.stream(method, target, headers=headers, content=content,
                                            timeout=httpx.Timeout(limit.remaining()),
                                            extensions={"trace": limit.trace}) as response:
                if response.status_code != 200:
                    raise FetchError(f"{shown}: HTTP {response.status_code}", transient=response.status_code >= 500)
                body = read_body(response, max_bytes + 1, limit.at)
        except httpx.HTTPError as exc:
            if limit.expired:  # cut by the deadline, however the bytes were arriving
                raise TooSlow(f"{shown}: {limit.too_slow()}", transient=True) from None
            raise FetchError(f"{shown}: {type(exc).__name__}: {exc}", transient=True) from None
        if len(body) > max_bytes:
            raise TooLarge(f"{shown}: larger than {max_bytes} bytes")
        return body

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
