"""HTTP collector (httpx): the http:// → https:// redirect chain, the homepage, security.txt.

Everything a portal sends is hostile input: redirects are followed by hand, a bounded number of
hops, and only to the portal's own address or to public addresses (plus networks the inventory
allows) — a redirect to 169.254.169.254 or 10.x is recorded, never followed. Bodies are capped, and any
encoding is accepted (Vietnamese pages are often windows-1258 or UTF-8 without a charset). TLS is not
judged here (that is the TLS collector's job): certificates are not verified, but SNI and Host carry the
portal's name while the connection goes to its address.

Headers are judged whole and stored bounded: every header a check reads is kept with all its values,
wherever it comes in the response, and the others only for the record. The one limit is the size of the
whole response head; a server over it gets an incomplete observation that says so, never a header
reported missing because it came late.
"""

from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from bs4 import BeautifulSoup, UnicodeDammit
from bs4.dammit import EncodingDetector

from collectors.bounded import IDENTITY_HEADERS, read_body
from collectors.netpolicy import AddressRefused, allowed_address, candidates
from collectors.trustlabel import extract_badges
from soc.core.clock import utcnow
from soc.core.net import IPNetwork
from soc.core.observations import JUDGED_HEADERS, HttpObservation, RedirectHop

MAX_HEADER_BYTES = 100 * 1024
"""The largest response head judged: httpcore's own limit (h11 refuses a longer head, though how much longer
it reads first depends on network chunks), so this fixes the line at one place whatever the chunking."""
MAX_OTHER_HEADERS = 100
"""Header fields kept for the record besides the judged ones (which are kept whole)."""
MAX_HEADER_VALUE = 1024
"""Bound on each kept value of a header no check reads."""
H11_HEAD_TOO_LONG = "Receive buffer too long"
"""h11's message when a response head exceeds httpcore's limit."""
MAX_TITLE = 300
MAX_URL = 512
MAX_MIXED = 50
REQUEST_BUDGET = 2
"""A whole request (headers and body) may take at most this many times the per-read timeout."""
FALLBACK_ENCODINGS = ["utf-8", "windows-1258"]
USER_AGENT = "Mozilla/5.0 (compatible; SOC-DongNai-scanner/0.1; +https://soc.dongnai.gov.vn)"


class Refused(Exception):
    """A URL the collector will not request (scheme, address policy)."""


class HeadTooLarge(httpx.HTTPError):
    """A response head larger than MAX_HEADER_BYTES: not read whole, so not judged."""

    def __init__(self, size: int | None = None) -> None:
        sent = f"{size} bytes" if size is not None else "more than the HTTP client reads"
        super().__init__(f"response headers too large to judge ({sent}; the collector's limit is "
                         f"{MAX_HEADER_BYTES // 1024} KiB)")


@dataclass(frozen=True)
class HttpTarget:
    """One portal to read."""

    portal_url: str
    host: str
    address: str | None
    http_url: str
    """Where the redirect check starts (http://host/ unless the inventory says otherwise)."""


@dataclass(frozen=True)
class HttpScanConfig:
    """Knobs of the HTTP collector."""

    allowed_networks: Sequence[IPNetwork] = ()
    timeout: float = 10.0
    max_redirects: int = 5
    max_body: int = 1024 * 1024
    concurrent_portals: int = 16
    connections_per_host: int = 5
    """Politeness: at most this many of our HTTP connections to one address at once."""


@dataclass
class _Response:
    url: str
    status: int
    fields: list[tuple[str, str]]
    """Every header field as received, lower-case names, values whole (the head is at most MAX_HEADER_BYTES)."""
    body: bytes

    def values(self, header: str) -> list[str]:
        """Every value of a header (lower-case name), in order."""
        return [value for name, value in self.fields if name == header]

    @property
    def location(self) -> str | None:
        """The first Location header, if any."""
        values = self.values("location")
        return values[0] if values else None


def _bounded(text: str, limit: int = MAX_URL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kept_headers(fields: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """What an observation keeps of a response's header fields (lower-case names, in order): every value of
    the judged headers whole, then the first MAX_OTHER_HEADERS other fields with bounded values."""
    kept: dict[str, list[str]] = {}
    others = 0
    for name, value in fields:
        if name in JUDGED_HEADERS:
            kept.setdefault(name, []).append(value)
        elif others < MAX_OTHER_HEADERS:
            others += 1
            kept.setdefault(name, []).append(_bounded(value, MAX_HEADER_VALUE))
    return kept


def _head_bytes(response: httpx.Response) -> int:
    """Size of the response head as sent: the header lines (name, ': ', value, CRLF) and the status line."""
    return len(response.reason_phrase) + 15 + sum(len(name) + len(value) + 4 for name, value in response.headers.raw)


class HttpCollector:
    """Reads portals over HTTP(S) under the address policy; one instance per scan run."""

    def __init__(self, config: HttpScanConfig) -> None:
        self.config = config
        self._per_address: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(
            verify=False, follow_redirects=False, trust_env=False, timeout=config.timeout,
            # identity: a compressed body could unpack far beyond max_body before the cap applies
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,*/*;q=0.5", **IDENTITY_HEADERS},
            limits=httpx.Limits(max_connections=config.concurrent_portals * 2, max_keepalive_connections=0),
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def scan(self, targets: Sequence[HttpTarget]) -> Iterator[HttpObservation]:
        """Yield one observation per target, in completion order."""
        workers = max(1, min(self.config.concurrent_portals, len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http") as pool:
            futures = [pool.submit(self.observe, target) for target in targets]
            for future in as_completed(futures):
                yield future.result()

    def observe(self, target: HttpTarget) -> HttpObservation:
        """Everything about one portal; failures are recorded, never raised (one portal never stops the run)."""
        started = time.monotonic()
        obs = HttpObservation(portal_url=target.portal_url, host=target.host, address=target.address,
                              observed_at=utcnow(), start_url=target.http_url)
        try:
            self._observe(target, obs)
        except Exception as exc:  # a surprise in hostile input: recorded, the observation is incomplete
            obs.error = obs.error or _bounded(f"collector error: {type(exc).__name__}: {exc}", 300)
        obs.duration_s = round(time.monotonic() - started, 3)
        return obs

    def _observe(self, target: HttpTarget, obs: HttpObservation) -> None:
        self._redirect_chain(target, obs)
        self._homepage(target, obs)
        if obs.status is None and obs.error and "Timeout" in obs.error:
            obs.security_txt_error = "not tried: the homepage timed out"  # a silent host costs one timeout, not two
        else:
            self._security_txt(target, obs)

    def _address_for(self, host: str, port: int, target: HttpTarget) -> str:
        try:
            if host == target.host:  # the portal's own name: the inventory vouches for it
                return target.address or str(candidates(host, port)[0])
            return allowed_address(host, port, self.config.allowed_networks)
        except AddressRefused as exc:
            raise Refused(str(exc)) from None

    def _get(self, url: str, target: HttpTarget, max_body: int) -> _Response:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused(f"not an http(s) URL: {_bounded(url, 200)}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:  # e.g. a Location with port 99999
            raise Refused(f"bad URL {_bounded(url, 200)}: {exc}") from None
        address = self._address_for(parts.hostname, port, target)
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        request_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        try:
            with self._slot(address), self._client.stream(
                "GET", request_url, headers={"Host": host_header}, extensions=extensions
            ) as reply:
                head_bytes = _head_bytes(reply)
                if head_bytes > MAX_HEADER_BYTES:
                    raise HeadTooLarge(head_bytes)
                body = read_body(reply, max_body, time.monotonic() + REQUEST_BUDGET * self.config.timeout)
                fields = [(name.lower(), value) for name, value in reply.headers.multi_items()]
                return _Response(url=url, status=reply.status_code, fields=fields, body=body)
        except httpx.RemoteProtocolError as exc:
            if H11_HEAD_TOO_LONG in str(exc):
                raise HeadTooLarge() from None
            raise

    def _slot(self, address: str) -> threading.BoundedSemaphore:
        with self._lock:
            if address not in self._per_address:
                self._per_address[address] = threading.BoundedSemaphore(self.config.connections_per_host)
            return self._per_address[address]

    def _redirect_chain(self, target: HttpTarget, obs: HttpObservation) -> None:
        url = target.http_url
        for _hop in range(self.config.max_redirects + 1):
            hop = RedirectHop(url=_bounded(url))
            obs.redirects.append(hop)
            if urlsplit(url).scheme == "https":
                obs.reaches_https = True
                return
            try:
                response = self._get(url, target, max_body=16384)
            except Refused as exc:
                hop.refused = str(exc)
                obs.reaches_https = False  # redirected to an http:// URL we will not follow: not to https
                return
            except httpx.ConnectError as exc:
                if url == target.http_url and "refused" in str(exc).lower():
                    hop.refused = "no HTTP service (connection refused)"  # nothing to redirect: not a finding
                    return
                obs.redirect_error = _bounded(f"{type(exc).__name__}: {exc}", 300)
                return
            except httpx.HTTPError as exc:
                obs.redirect_error = _bounded(f"{type(exc).__name__}: {exc}", 300)
                return
            hop.status = response.status
            location = response.location
            if not (300 <= response.status < 400 and location):
                obs.reaches_https = False  # an http:// page answered instead of redirecting
                return
            hop.location = _bounded(location)
            try:
                url = _join(url, location)
            except Refused as exc:
                hop.refused = str(exc)
                obs.reaches_https = False
                return
        obs.redirects[-1].refused = f"more than {self.config.max_redirects} redirects"
        obs.reaches_https = False

    def _homepage(self, target: HttpTarget, obs: HttpObservation) -> None:
        url = target.portal_url
        try:
            for _hop in range(self.config.max_redirects + 1):
                response = self._get(url, target, self.config.max_body)
                location = response.location
                if not (300 <= response.status < 400 and location):
                    break
                url = _join(url, location)
            else:
                obs.error = f"more than {self.config.max_redirects} redirects from {_bounded(target.portal_url)}"
                return
        except Refused as exc:
            obs.error = _bounded(f"redirect not followed: {exc}", 300)
            return
        except HeadTooLarge as exc:  # our limit, not the portal's silence: said as such, nothing judged
            obs.error = obs.headers_error = str(exc)
            return
        except httpx.HTTPError as exc:
            obs.error = _bounded(f"{type(exc).__name__}: {exc}", 300)
            return
        obs.final_url, obs.status = _bounded(url), response.status
        obs.headers, obs.header_count = kept_headers(response.fields), len(response.fields)
        obs.body_bytes, obs.body_sha256 = len(response.body), hashlib.sha256(response.body).hexdigest()
        if not 200 <= response.status < 300:
            # An error or maintenance page is not the portal: judging it would resolve (or invent) findings.
            obs.error = f"homepage answered HTTP {response.status}"
            return
        self._read_page(response, obs)

    def _read_page(self, response: _Response, obs: HttpObservation) -> None:
        text, obs.charset = decode_page(response.body, response.values("content-type"))
        soup = BeautifulSoup(text, "html.parser")
        if soup.title and soup.title.string:
            title = unicodedata.normalize("NFC", " ".join(soup.title.string.split()))
            obs.title = _bounded(title, MAX_TITLE)
        if urlsplit(response.url).scheme == "https":
            obs.mixed_content = mixed_content(soup, response.url)
        obs.badges = extract_badges(text, response.url)

    def _security_txt(self, target: HttpTarget, obs: HttpObservation) -> None:
        url = urljoin(target.portal_url, "/.well-known/security.txt")
        try:
            response = self._get(url, target, max_body=65536)
        except (Refused, httpx.HTTPError) as exc:
            obs.security_txt_error = _bounded(f"{type(exc).__name__}: {exc}", 300)
            return
        content_type = " ".join(response.values("content-type")).lower()
        obs.security_txt = (response.status == 200 and "text/plain" in content_type
                            and b"contact:" in response.body.lower())


def _join(base: str, location: str) -> str:
    try:
        return urljoin(base, location)
    except ValueError as exc:
        raise Refused(f"bad redirect target {_bounded(location, 200)}: {exc}") from None


def decode_page(body: bytes, content_types: Sequence[str]) -> tuple[str, str | None]:
    """Text of a page and the encoding used: the header's charset, else the page's own declaration,
    else UTF-8 or windows-1258 (Vietnamese pages often declare nothing)."""
    declared = [part.split("=", 1)[1].strip(" \"'") for value in content_types
                for part in value.split(";") if part.strip().lower().startswith("charset=")]
    in_page = EncodingDetector.find_declared_encoding(body[:65536], is_html=True)
    definite = [e for e in [*declared[:1], in_page] if e]
    dammit = UnicodeDammit(body, known_definite_encodings=definite, user_encodings=FALLBACK_ENCODINGS, is_html=True)
    return dammit.unicode_markup or body.decode("utf-8", errors="replace"), dammit.original_encoding


def mixed_content(soup: BeautifulSoup, page_url: str) -> list[str]:
    """http:// URLs of active content (scripts, stylesheets, frames) on an https page."""
    found: list[str] = []
    candidates = [(tag, "src") for tag in soup.find_all(["script", "iframe", "frame"])]
    candidates += [(tag, "href") for tag in soup.find_all("link")
                   if "stylesheet" in " ".join(tag.get_attribute_list("rel") or []).lower()]
    for tag, attribute in candidates:
        value = tag.get(attribute)
        if not isinstance(value, str):
            continue
        try:
            absolute = urljoin(page_url, value.strip())
        except ValueError:  # e.g. "http://[x": not a URL a browser would load either
            continue
        if absolute.lower().startswith("http://"):
            found.append(_bounded(absolute))
    return list(dict.fromkeys(found))[:MAX_MIXED]
