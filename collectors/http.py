"""HTTP collector (httpx): the http:// → https:// redirect chain, the homepage, security.txt.

Everything a portal sends is hostile input: redirects are followed by hand, a bounded number of
hops, and only to the portal's own address or to public addresses (plus networks the inventory
allows) — a redirect to 169.254.169.254 or 10.x is recorded, never followed. Bodies are capped, and any
encoding is accepted (Vietnamese pages are often windows-1258 or UTF-8 without a charset). TLS is not
judged here (that is the TLS collector's job): certificates are not verified, but SNI and Host carry the
portal's name while the connection goes to its address. Each request ends by a hard deadline
(`request_deadline`, however the bytes arrive: httpx's timeouts are per read) and each portal by its
`portal_budget`; a portal cut by either is reported "too slow".

Headers are judged whole and stored bounded: every header a check reads is kept with all its values,
wherever it comes in the response, and the others only for the record. The one limit is the size of the
whole response head; a server over it gets an incomplete observation that says so, never a header
reported missing because it came late.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from bs4 import UnicodeDammit
from bs4.dammit import EncodingDetector

from collectors.bounded import IDENTITY_HEADERS, read_body
from collectors.deadline import Deadline
from collectors.markup import Attrs, attribute, scan
from collectors.netpolicy import AddressRefused, allowed_address, candidates
from collectors.trustlabel import BadgeFinder
from soc.core.clock import utcnow
from soc.core.net import IPNetwork
from soc.core.observations import JUDGED_HEADERS, HttpObservation, RedirectHop, TrustBadge

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
MAX_ACTIVE = 5000
"""Scripts, stylesheets and frames examined for mixed content; a page with more is searched no further."""
PARALLEL_PAGES = min(4, max(2, os.cpu_count() or 2))
"""Homepages decoded and parsed at once, across every thread of every collector: parsing is CPU-bound (the
GIL runs one at a time anyway) and each page may take some tens of MB while read, so 16 hostile portals read
in parallel cost what 2-4 do."""
PAGE_SLOTS = threading.BoundedSemaphore(PARALLEL_PAGES)
REQUEST_BUDGET = 2
"""Without an explicit `request_deadline`, a whole request may take this many times the per-read timeout."""
FALLBACK_ENCODINGS = ["utf-8", "windows-1258"]
USER_AGENT = "Mozilla/5.0 (compatible; SOC-DongNai-scanner/0.1; +https://soc.dongnai.gov.vn)"


class Refused(Exception):
    """A URL the collector will not request (scheme, address policy)."""


class TooSlow(httpx.TimeoutException):
    """A request not over by its deadline (or the portal's budget spent): the message starts with "too slow"."""


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
    request_deadline: float | None = None
    """Hard limit on one request (connect, TLS, headers, body), however the bytes arrive (default REQUEST_BUDGET ×
    `timeout`, which bounds each read)."""
    portal_budget: float = 30.0
    """Seconds one portal may take in all (redirect chain, homepage, security.txt)."""


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
            self._observe(target, obs, started + self.config.portal_budget)
        except Exception as exc:  # a surprise in hostile input: recorded, the observation is incomplete
            obs.error = obs.error or _bounded(f"collector error: {type(exc).__name__}: {exc}", 300)
        obs.duration_s = round(time.monotonic() - started, 3)
        return obs

    def _observe(self, target: HttpTarget, obs: HttpObservation, deadline: float) -> None:
        self._redirect_chain(target, obs, deadline)
        self._homepage(target, obs, deadline)
        if obs.status is None and obs.error and ("Timeout" in obs.error or obs.error.startswith("too slow")):
            # a silent or trickling host costs one deadline, not two
            obs.security_txt_error = "not tried: the homepage timed out or was too slow"
        else:
            self._security_txt(target, obs, deadline)

    def _address_for(self, host: str, port: int, target: HttpTarget) -> str:
        try:
            if host == target.host:  # the portal's own name: the inventory vouches for it
                return target.address or str(candidates(host, port)[0])
            return allowed_address(host, port, self.config.allowed_networks)
        except AddressRefused as exc:
            raise Refused(str(exc)) from None

    def _get(self, url: str, target: HttpTarget, max_body: int, deadline: float) -> _Response:
        """One GET under the address policy, ended by its deadline (or the portal's, if sooner) whatever arrives."""
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
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        shown = f"GET {_bounded(url, 200)}"
        slot = self._slot(address)
        if deadline <= time.monotonic() or not slot.acquire(timeout=deadline - time.monotonic()):
            raise TooSlow(f"too slow: the portal's {self.config.portal_budget:g} s budget was spent before {shown}")
        limit = Deadline(self.config.request_deadline or REQUEST_BUDGET * self.config.timeout, at=deadline, what=shown)
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        try:
            with limit, self._client.stream(
                "GET", request_url, headers={"Host": host_header}, extensions={**extensions, "trace": limit.trace},
                timeout=httpx.Timeout(min(self.config.timeout, limit.remaining())),
            ) as reply:
                head_bytes = _head_bytes(reply)
                if head_bytes > MAX_HEADER_BYTES:
                    raise HeadTooLarge(head_bytes)
                body = read_body(reply, max_body, limit.at)
                fields = [(name.lower(), value) for name, value in reply.headers.multi_items()]
                return _Response(url=url, status=reply.status_code, fields=fields, body=body)
        except httpx.HTTPError as exc:
            if limit.fired or (limit.expired and isinstance(exc, httpx.TimeoutException)):
                raise TooSlow(str(limit.too_slow())) from None  # cut at the deadline, however bytes were arriving
            if isinstance(exc, httpx.RemoteProtocolError) and H11_HEAD_TOO_LONG in str(exc):
                raise HeadTooLarge() from None
            raise
        finally:
            slot.release()

    def _slot(self, address: str) -> threading.BoundedSemaphore:
        with self._lock:
            if address not in self._per_address:
                self._per_address[address] = threading.BoundedSemaphore(self.config.connections_per_host)
            return self._per_address[address]

    def _redirect_chain(self, target: HttpTarget, obs: HttpObservation, deadline: float) -> None:
        url = target.http_url
        for _hop in range(self.config.max_redirects + 1):
            hop = RedirectHop(url=_bounded(url))
            obs.redirects.append(hop)
            if urlsplit(url).scheme == "https":
                obs.reaches_https = True
                return
            try:
                response = self._get(url, target, 16384, deadline)
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
            except TooSlow as exc:
                obs.redirect_error = _bounded(str(exc), 300)
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

    def _homepage(self, target: HttpTarget, obs: HttpObservation, deadline: float) -> None:
        url = target.portal_url
        try:
            for _hop in range(self.config.max_redirects + 1):
                response = self._get(url, target, self.config.max_body, deadline)
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
        except TooSlow as exc:  # http.unreachable, with the reason
            obs.error = _bounded(str(exc), 300)
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
        page = read_page(response.body, response.values("content-type"), response.url, self.config.max_body)
        obs.charset, obs.title, obs.mixed_content = page.charset, page.title, page.mixed_content
        obs.badges, obs.page_cut = page.badges, page.cut

    def _security_txt(self, target: HttpTarget, obs: HttpObservation, deadline: float) -> None:
        url = urljoin(target.portal_url, "/.well-known/security.txt")
        try:
            response = self._get(url, target, 65536, deadline)
        except TooSlow as exc:
            obs.security_txt_error = _bounded(str(exc), 300)
            return
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


@dataclass(frozen=True)
class PageReading:
    """What the collector keeps of a homepage's markup."""

    charset: str | None
    title: str | None
    mixed_content: list[str]
    """Empty for an http:// page (not *mixed* content there)."""
    badges: list[TrustBadge]
    cut: str | None
    """Why only part of the page was read (see HttpObservation.page_cut); None when read whole."""


def read_page(body: bytes, content_types: Sequence[str], page_url: str, max_body: int) -> PageReading:
    """Decode a homepage (`body`, at most `max_body` bytes) and read its title, mixed content and badges in
    one pass of the bounded tokenizer; at most PAGE_SLOTS pages at once in the process."""
    with PAGE_SLOTS:
        text, charset = decode_page(body, content_types)
        facts = PageFacts(page_url, mixed=urlsplit(page_url).scheme == "https")
        finder = BadgeFinder(page_url)
        cut = scan(text, [facts, finder])
    if len(body) >= max_body:
        cut = f"body cut at {max_body} bytes (max_body)"
    return PageReading(charset=charset, title=facts.title(), mixed_content=facts.mixed_content,
                       badges=finder.badges(), cut=cut or facts.cut or finder.cut)


class PageFacts:
    """A markup sink (`collectors.markup.scan`): the page's first title, and its mixed content when `mixed`:
    http:// URLs of active content (scripts, stylesheets, frames), in page order, at most MAX_MIXED."""

    def __init__(self, page_url: str, mixed: bool) -> None:
        self.page_url = page_url
        self.mixed = mixed
        self.mixed_content: list[str] = []
        self.cut: str | None = None
        """Why the page was not searched whole for mixed content (more than MAX_ACTIVE candidates)."""
        self._title_parts: list[str] | None = None
        """The first title's text so far, while it is being read."""
        self._title_text: str | None = None
        self._title_chars = 0
        self._title_seen = False
        self._active = 0

    def title(self) -> str | None:
        """The first <title>'s text up to its end or the next tag, white space collapsed, bounded."""
        raw = self._title_text if self._title_text is not None else "".join(self._title_parts or ())
        return _bounded(unicodedata.normalize("NFC", " ".join(raw.split())), MAX_TITLE) if raw else None

    def start(self, tag: str, attrs: Attrs) -> None:
        """A start tag: the title's, or active content."""
        self._title_ends()
        if tag == "title" and not self._title_seen:
            self._title_seen, self._title_parts = True, []
        elif self.mixed and tag in ("script", "iframe", "frame"):
            self._loads(attribute(attrs, "src"))
        elif self.mixed and tag == "link" and "stylesheet" in (attribute(attrs, "rel") or "").lower():
            self._loads(attribute(attrs, "href"))

    def end(self, tag: str) -> None:
        """An end tag ends the title's text."""
        self._title_ends()

    def text(self, data: str) -> None:
        """Text: kept while in the title, up to a bound."""
        if self._title_parts is not None and self._title_chars < 4 * MAX_TITLE:
            self._title_parts.append(data[: 4 * MAX_TITLE])
            self._title_chars += len(data)

    def _title_ends(self) -> None:
        if self._title_parts is not None:
            self._title_text, self._title_parts = "".join(self._title_parts), None

    def _loads(self, url: str | None) -> None:
        self._active += 1
        if self._active > MAX_ACTIVE:
            self.cut = self.cut or f"more than {MAX_ACTIVE} scripts, stylesheets and frames"
            return
        if url is None or len(self.mixed_content) >= MAX_MIXED:
            return
        try:
            absolute = urljoin(self.page_url, url.strip())
        except ValueError:  # e.g. "http://[x": not a URL a browser would load either
            return
        if absolute.lower().startswith("http://") and (kept := _bounded(absolute)) not in self.mixed_content:
            self.mixed_content.append(kept)
