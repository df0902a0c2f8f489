"""The HTTP collector against real servers on loopback (127.0.70.x): redirects, the homepage, security.txt.

No mock of httpx or of the network: every test starts small threaded HTTP / HTTPS servers (HTTPS with a
certificate made at run time by trustme) and points `HttpTarget.address` at them while the portal keeps its
name ("portal.test"), so SNI and Host must carry that name. An audit hook guards the whole module: while a
test runs, any connection outside 127.0.0.0/8 and any name lookup is refused and fails the test — which is
also how "refused before connecting" is verified for redirects to 169.254.169.254 or 10.0.0.1.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import socket
import ssl
import sys
import threading
import time
import tracemalloc
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from socketserver import TCPServer
from typing import Any

import pytest
import trustme

from checks.http import evaluate_http
from collectors.http import (
    MAX_HEADER_BYTES,
    MAX_HEADER_VALUE,
    MAX_MIXED,
    MAX_OTHER_HEADERS,
    HttpCollector,
    HttpScanConfig,
    HttpTarget,
)
from soc.core.observations import JUDGED_HEADERS, HttpObservation, RedirectHop

pytestmark = pytest.mark.lab  # starts real servers on loopback

LOOPBACK = ip_network("127.0.0.0/8")
CONFIG = HttpScanConfig(allowed_networks=[LOOPBACK], timeout=2)
HOST = "portal.test"
PORTAL_IP = "127.0.70.1"
OTHER_IP = "127.0.70.2"
POLITE_IP = "127.0.70.3"
DOWN_IP = "127.0.70.9"
TITLE = "Cổng thông tin điện tử tỉnh Đồng Nai"
TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"
"""The combining tone marks windows-1258 writes apart from the base letter."""
SECURITY_TXT = b"Contact: mailto:soc@dongnai.gov.vn\nExpires: 2030-01-01T00:00:00Z\n"
GOOD_HEADERS = [
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
]
MiB = 1024 * 1024


# --- network guard ---------------------------------------------------------------------------------------


class NetworkGuard:
    """Records the connections and name lookups made while a test runs; refuses anything off loopback."""

    def __init__(self) -> None:
        self.active = False
        self.lock = threading.Lock()
        self.connects: list[tuple[str, int]] = []
        self.violations: list[str] = []

    def reset(self) -> None:
        """Start recording afresh."""
        with self.lock:
            self.connects.clear()
            self.violations.clear()

    def hosts(self) -> set[str]:
        """Every address connected to since the last reset."""
        with self.lock:
            return {host for host, _ in self.connects}

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        """sys.addaudithook callback (cheap when inactive or for other events)."""
        if not self.active or event not in ("socket.connect", "socket.getaddrinfo"):
            return
        if event == "socket.connect":
            address = args[1]
            if not (isinstance(address, tuple) and address and isinstance(address[0], str)):
                return  # not an IP socket
            host, port = address[0], int(address[1])
            with self.lock:
                self.connects.append((host, port))
            if not _is_loopback(host):
                self._violate(f"connect to {host}:{port}")
                raise PermissionError(f"test network guard: connect to {host}:{port} refused")
        else:
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
            if host is not None and not _is_ip_literal(str(host)):
                self._violate(f"name lookup of {host}")
                raise socket.gaierror(socket.EAI_NONAME, f"test network guard: lookup of {host} refused")

    def _violate(self, what: str) -> None:
        with self.lock:
            self.violations.append(what)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    return _is_ip_literal(host) and ipaddress.ip_address(host.split("%", 1)[0]) in LOOPBACK


GUARD = NetworkGuard()
sys.addaudithook(GUARD.audit)


@pytest.fixture(autouse=True)
def network_guard() -> Iterator[NetworkGuard]:
    """Loopback only, no DNS, for the duration of each test; fails the test on any attempt."""
    GUARD.reset()
    GUARD.active = True
    try:
        yield GUARD
    finally:
        GUARD.active = False
    assert GUARD.violations == []
    assert all(_is_loopback(host) for host in GUARD.hosts())


# --- servers ----------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: Sequence[tuple[str, str]] = ()
    delay: float = 0.0
    """Seconds to wait before answering (counted as one active request)."""
    drop: bool = False
    """Close the connection without answering."""
    stream: int = 0
    """Send this many filler bytes after `body` (in 64 KiB writes, never held in memory whole)."""
    drip: float | None = None
    """Send the body one byte per `drip` seconds, until the server stops."""
    gzip: bool = False


NOT_FOUND = Reply(404, b"not found", "text/plain")


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    host: str | None
    sni: str | None


class Web(ThreadingHTTPServer):
    """A threaded HTTP(S) server with fixed routes that records what it is asked."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: str, routes: dict[str, Reply], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.tls = tls
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.sni: list[str | None] = []
        self.sni_by_socket: dict[int, str | None] = {}
        self.active = 0
        self.max_active = 0
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        super().__init__((address, 0), Handler)
        if tls is not None:
            tls.sni_callback = self._on_sni

    def server_bind(self) -> None:
        """Bind without HTTPServer's socket.getfqdn (a DNS query)."""
        TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early are expected here: stay quiet."""

    def _on_sni(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        with self.lock:
            self.sni.append(name)
            self.sni_by_socket[id(sock)] = name

    @property
    def port(self) -> int:
        """The ephemeral port."""
        return int(self.server_address[1])

    def paths(self) -> list[str]:
        """Paths requested so far."""
        with self.lock:
            return [seen.path for seen in self.seen]

    def start(self) -> Web:
        """Serve in a daemon thread."""
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (bounded: handlers wait on `stopping`, threads are daemons); idempotent."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self.thread is not None:
            self.shutdown()
            self.thread.join(timeout=2)
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    """Answers from the server's routes; TLS (if any) is negotiated here, in the connection's thread."""

    server: Web
    timeout = 5
    sni: str | None = None

    def setup(self) -> None:
        """Wrap the accepted socket in TLS before the stream handler reads from it."""
        if self.server.tls is not None:
            self.request.settimeout(self.timeout)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)  # handshakes here
            with self.server.lock:
                self.sni = self.server.sni_by_socket.pop(id(self.request), None)
        super().setup()

    def version_string(self) -> str:
        """A Server header without a version (so the version check stays quiet unless a test asks)."""
        return "portal"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        """Answer the route of the path (query ignored)."""
        server = self.server
        with server.lock:
            server.seen.append(Seen(self.path, self.headers.get("Host"), self.sni))
            server.active += 1
            server.max_active = max(server.max_active, server.active)
        reply = server.routes.get(self.path.split("?", 1)[0], NOT_FOUND)
        try:
            if reply.delay:
                server.stopping.wait(reply.delay)
        finally:
            with server.lock:
                server.active -= 1  # before answering: the client may start its next request at once
        if reply.drop:
            self.close_connection = True
            return
        try:
            self._answer(reply)
        except OSError:
            self.close_connection = True  # the client stopped reading (body cap, timeout)

    def _answer(self, reply: Reply) -> None:
        body = gzip.compress(reply.body, compresslevel=9) if reply.gzip else reply.body
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        if reply.gzip:
            self.send_header("Content-Encoding", "gzip")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) + reply.stream))
        self.send_header("Connection", "close")
        self.end_headers()
        if reply.drip is not None:
            self.wfile.flush()
            for byte in body:
                if self.server.stopping.wait(reply.drip):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return
        self.wfile.write(body)
        filler, left = b"x" * 65536, reply.stream
        while left > 0 and not self.server.stopping.is_set():
            self.wfile.write(filler[:left])
            left -= 65536


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throw-away CA for the HTTPS servers (the collector does not verify: only SNI matters)."""
    return trustme.CA()


@dataclass
class Lab:
    """Starts servers and sockets for one test and stops them all afterwards."""

    ca: trustme.CA
    servers: list[Web] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)
    collectors: list[HttpCollector] = field(default_factory=list)

    def http(self, address: str, routes: dict[str, Reply]) -> Web:
        """A plain HTTP server."""
        server = Web(address, routes)
        self.servers.append(server)
        return server.start()

    def https(self, address: str, routes: dict[str, Reply], names: Sequence[str] = (HOST,)) -> Web:
        """An HTTPS server with a certificate for `names`."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(*names).configure_cert(context)
        server = Web(address, routes, tls=context)
        self.servers.append(server)
        return server.start()

    def refused_port(self, address: str) -> int:
        """A port bound but not listening: connections to it are refused, and nobody else can take it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((address, 0))
        self.sockets.append(sock)
        return int(sock.getsockname()[1])

    def silent_port(self, address: str) -> int:
        """A port that completes TCP connections (kernel backlog) and never says a word."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((address, 0))
        sock.listen(16)
        self.sockets.append(sock)
        return int(sock.getsockname()[1])

    def collector(self, config: HttpScanConfig = CONFIG) -> HttpCollector:
        """A collector closed at teardown."""
        collector = HttpCollector(config)
        self.collectors.append(collector)
        return collector

    def close(self) -> None:
        """Stop everything (bounded)."""
        for collector in self.collectors:
            collector.close()
        for server in self.servers:
            server.stop()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def lab(ca: trustme.CA) -> Iterator[Lab]:
    """Servers of one test, all stopped at teardown."""
    running = Lab(ca)
    try:
        yield running
    finally:
        running.close()


@dataclass(frozen=True)
class Portal:
    """An HTTP server and an HTTPS server of one portal host on one address."""

    http: Web
    https: Web
    host: str = HOST

    @property
    def http_url(self) -> str:
        """The http:// start URL."""
        return f"http://{self.host}:{self.http.port}/"

    @property
    def https_url(self) -> str:
        """The https:// homepage."""
        return f"https://{self.host}:{self.https.port}/"

    def target(self, http_url: str | None = None, portal_url: str | None = None) -> HttpTarget:
        """The collector's target (connect to the servers' address, speak the portal's name)."""
        return HttpTarget(portal_url=portal_url or self.https_url, host=self.host,
                          address=str(self.https.server_address[0]), http_url=http_url or self.http_url)


def html(title: str = TITLE, head: str = "", body: str = "") -> str:
    """A small homepage."""
    return f"<!DOCTYPE html><html lang='vi'><head>{head}<title>{title}</title></head><body>{body}</body></html>"


def cp1258(text: str) -> bytes:
    """`text` as a windows-1258 page writes it (tone marks as combining characters after the base letter)."""
    encoded = bytearray()
    for char in text:
        try:
            encoded += char.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", char)
            tone = next(mark for mark in decomposed if mark in TONE_MARKS)
            base = unicodedata.normalize("NFC", decomposed.replace(tone, ""))
            encoded += (base + tone).encode("cp1258")
    return bytes(encoded)


def homepage_routes(page: Reply | None = None, security: Reply | None = None) -> dict[str, Reply]:
    """Routes of a healthy https side: the homepage and security.txt."""
    return {
        "/": page or Reply(body=html().encode(), headers=GOOD_HEADERS),
        "/.well-known/security.txt": security or Reply(body=SECURITY_TXT, content_type="text/plain; charset=utf-8"),
    }


def portal(lab: Lab, http_routes: dict[str, Reply] | None = None, https_routes: dict[str, Reply] | None = None,
           address: str = PORTAL_IP) -> Portal:
    """A portal whose http:// side redirects to its https:// homepage unless `http_routes` say otherwise."""
    https = lab.https(address, https_routes if https_routes is not None else homepage_routes())
    routes = http_routes if http_routes is not None else {
        "/": Reply(301, headers=[("Location", f"https://{HOST}:{https.port}/")], content_type=None)
    }
    return Portal(lab.http(address, routes), https)


def check_ids(obs: HttpObservation) -> set[str]:
    """The check ids the HTTP checks raise on `obs`."""
    return {finding.check_id for finding in evaluate_http(obs)}


def redirect(location: str, status: int = 302) -> Reply:
    """A redirect."""
    return Reply(status, headers=[("Location", location)], content_type=None)


# --- 1, 2: the redirect chain -----------------------------------------------------------------------------


def test_http_redirect_to_https_and_homepage_read_with_sni_and_host(lab: Lab) -> None:
    """http:// → 301 → https:// of the same host; the homepage read over TLS with the portal's name."""
    site = portal(lab, https_routes=homepage_routes(Reply(
        body=html(head="<meta charset='utf-8'>").encode(),
        headers=[*GOOD_HEADERS, ("X-Mixed-Case-Header", "Value Kept")],
    )))
    obs = lab.collector().observe(site.target())

    assert obs.reaches_https is True
    assert obs.redirects == [RedirectHop(url=site.http_url, status=301, location=site.https_url),
                             RedirectHop(url=site.https_url)]
    assert obs.redirect_error is None and obs.error is None
    assert obs.status == 200 and obs.final_url == site.https_url and obs.title == TITLE
    assert all(name == name.lower() for name in obs.headers)
    assert obs.headers["x-mixed-case-header"] == ["Value Kept"]
    assert obs.headers["x-content-type-options"] == ["nosniff"]
    body = site.https.routes["/"].body
    assert obs.body_bytes == len(body) and obs.body_sha256 == hashlib.sha256(body).hexdigest()
    assert obs.security_txt is True and obs.complete
    # The connection went to the address, the name travelled in SNI and Host.
    assert site.https.seen == [Seen(path, f"{HOST}:{site.https.port}", HOST)
                               for path in ("/", "/.well-known/security.txt")]
    assert [(seen.path, seen.host) for seen in site.http.seen] == [("/", f"{HOST}:{site.http.port}")]
    assert check_ids(obs) == set()  # a clean portal: nothing to report


@pytest.mark.parametrize("reply", [
    Reply(body=html().encode()),
    Reply(302, body=b"moved, but where?"),  # a redirect status without Location
], ids=["page-200", "302-without-location"])
def test_http_answering_without_redirect_does_not_reach_https(lab: Lab, reply: Reply) -> None:
    """An http:// page instead of a redirect: reaches_https False, and the check says so."""
    site = portal(lab, http_routes={"/": reply})
    obs = lab.collector().observe(site.target())

    assert obs.reaches_https is False
    assert obs.redirects == [RedirectHop(url=site.http_url, status=reply.status)]
    assert obs.redirect_error is None and obs.complete
    assert "http.no_https_redirect" in check_ids(obs)


def test_redirect_to_https_elsewhere_is_not_requested(lab: Lab, network_guard: NetworkGuard) -> None:
    """An https:// hop ends the chain without a request, even to a non-public address."""
    site = portal(lab, http_routes={"/": redirect("https://169.254.169.254/latest/")})
    obs = lab.collector().observe(site.target())

    assert obs.redirects[-1] == RedirectHop(url="https://169.254.169.254/latest/")
    assert "169.254.169.254" not in network_guard.hosts()


# --- 3, 4: the address policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(("location", "address"), [
    ("http://169.254.169.254/latest/", "169.254.169.254"),
    ("http://10.0.0.1:8080/admin", "10.0.0.1"),  # refused, never contacted
    ("//169.254.169.254/latest/meta-data/", "169.254.169.254"),  # protocol-relative
    ("http://[::ffff:169.254.169.254]/latest/", "::ffff:a9fe:a9fe"),  # IPv4-mapped IPv6
    ("http://[fd00::1]/", "fd00::1"),
])
def test_redirect_to_non_public_address_is_refused_before_connecting(
    lab: Lab, network_guard: NetworkGuard, location: str, address: str,
) -> None:
    """The hop is recorded with the reason, never requested; the portal itself is still read."""
    site = portal(lab, http_routes={"/": redirect(location)})
    started = time.monotonic()
    obs = lab.collector().observe(site.target())
    elapsed = time.monotonic() - started

    first, refused = obs.redirects
    assert first.status == 302 and first.location == location
    assert refused.status is None and refused.refused is not None
    assert f"resolves to {address}, outside the allowed addresses" in refused.refused
    assert obs.reaches_https is False and obs.redirect_error is None
    assert address not in network_guard.hosts() and network_guard.violations == []
    assert elapsed < 1.0 and obs.duration_s < 1.0  # decided before any connection attempt
    assert obs.status == 200 and obs.title == TITLE  # the portal's own homepage is unaffected
    ids = check_ids(obs)
    assert "http.no_https_redirect" in ids
    evidence = next(f.evidence for f in evaluate_http(obs) if f.check_id == "http.no_https_redirect")
    assert "outside the allowed addresses" in evidence


@pytest.mark.parametrize("location", ["ftp://portal.test/", "file:///etc/passwd", "gopher://127.0.70.1:70/"])
def test_redirect_to_other_scheme_is_refused(lab: Lab, location: str) -> None:
    """Only http(s) is followed."""
    site = portal(lab, http_routes={"/": redirect(location)})
    obs = lab.collector().observe(site.target())

    assert obs.redirects[-1].refused is not None and "not an http(s) URL" in obs.redirects[-1].refused
    assert obs.reaches_https is False


def test_without_allowed_networks_other_loopback_host_is_refused_but_portal_address_used(lab: Lab) -> None:
    """allowed_networks=[]: loopback is not public, yet the portal's own name always goes to its address."""
    elsewhere = lab.http(OTHER_IP, {"/": redirect("https://portal.test/")})
    site = portal(lab, http_routes={"/": redirect(f"http://{OTHER_IP}:{elsewhere.port}/")})
    obs = lab.collector(HttpScanConfig(allowed_networks=[], timeout=2)).observe(site.target())

    assert obs.redirects[-1].refused == f"{OTHER_IP} resolves to {OTHER_IP}, outside the allowed addresses"
    assert obs.reaches_https is False
    assert elsewhere.seen == []
    # The portal's host name (http side, homepage, security.txt) went to HttpTarget.address regardless.
    assert len(site.http.seen) == 1 and site.https.paths() == ["/", "/.well-known/security.txt"]
    assert obs.status == 200 and obs.security_txt is True and obs.error is None


def test_without_allowed_networks_redirects_on_the_portals_own_name_are_followed(lab: Lab) -> None:
    """Hops on the portal's host name (another path, another port) use its address and are followed."""
    https = lab.https(PORTAL_IP, homepage_routes())
    second = lab.http(PORTAL_IP, {"/next": redirect(f"https://{HOST}:{https.port}/", 301)})
    first = lab.http(PORTAL_IP, {"/": redirect(f"http://{HOST.upper()}:{second.port}/next")})
    site = Portal(first, https)
    obs = lab.collector(HttpScanConfig(allowed_networks=[], timeout=2)).observe(site.target())

    assert obs.reaches_https is True
    assert [hop.status for hop in obs.redirects] == [302, 301, None]
    assert second.paths() == ["/next"] and second.seen[0].host == f"{HOST}:{second.port}"


# --- 5: loops ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_redirects", [1, 3, 5])
def test_redirect_loop_is_bounded(lab: Lab, max_redirects: int) -> None:
    """a → b → a …: max_redirects + 1 requests, then "more than N redirects"."""
    site = portal(lab, http_routes={"/a": redirect("/b"), "/b": redirect("/a")})
    config = HttpScanConfig(allowed_networks=[LOOPBACK], timeout=2, max_redirects=max_redirects)
    obs = lab.collector(config).observe(site.target(http_url=f"http://{HOST}:{site.http.port}/a"))

    assert len(obs.redirects) == max_redirects + 1 == len(site.http.seen)
    assert obs.redirects[-1].refused == f"more than {max_redirects} redirects"
    assert obs.reaches_https is False and obs.redirect_error is None
    assert "http.no_https_redirect" in check_ids(obs)


def test_homepage_redirect_loop_is_bounded(lab: Lab) -> None:
    """The https homepage redirecting to itself: an error, not a hang, and no page checks."""
    site = portal(lab, https_routes={"/": redirect("/"), "/.well-known/security.txt": NOT_FOUND})
    obs = lab.collector().observe(site.target())

    assert obs.error is not None and obs.error.startswith("more than 5 redirects from")
    assert site.https.paths().count("/") == 6
    assert obs.complete is False and obs.status is None
    assert check_ids(obs) == {"http.unreachable"}


# --- 6: encodings -----------------------------------------------------------------------------------------


ENCODING_CASES = {
    "cp1258-no-charset": (cp1258(html()), "text/html", {"windows-1258", "cp1258"}),
    "utf8-no-charset": (html().encode(), "text/html", {"utf-8"}),
    "utf8-header-charset": (html().encode(), "text/html; charset=UTF-8", {"utf-8"}),
    "cp1258-header-charset": (cp1258(html()), "text/html; charset=windows-1258", {"windows-1258", "cp1258"}),
    "cp1258-meta-charset": (cp1258(html(head="<meta charset='windows-1258'>")), None, {"windows-1258", "cp1258"}),
    "cp1258-meta-http-equiv": (cp1258(html(head='<meta http-equiv="Content-Type" content="text/html; '
                                                'charset=windows-1258">')), "text/html", {"windows-1258", "cp1258"}),
    "cp1258-header-lies-utf8": (cp1258(html()), "text/html; charset=utf-8", {"windows-1258", "cp1258"}),
    "utf8-bogus-header-charset": (html().encode(), "text/html; charset=no-such-charset", {"utf-8"}),
}


@pytest.mark.parametrize(("body", "content_type", "charsets"), ENCODING_CASES.values(), ids=ENCODING_CASES.keys())
def test_homepage_encodings(lab: Lab, body: bytes, content_type: str | None, charsets: set[str]) -> None:
    """Vietnamese titles survive windows-1258 and UTF-8, with or without a declared charset (or a wrong one)."""
    site = portal(lab, https_routes=homepage_routes(Reply(body=body, content_type=content_type)))
    obs = lab.collector().observe(site.target())

    assert obs.error is None and obs.charset is not None and obs.charset.lower() in charsets
    assert obs.title is not None
    # windows-1258 writes tone marks as combining characters: the title is canonically equal (NFC) to TITLE.
    assert unicodedata.normalize("NFC", obs.title) == TITLE
    if "utf-8" in charsets:
        assert obs.title == TITLE


def test_meta_charset_other_than_fallback_is_honoured(lab: Lab) -> None:
    """A windows-1252 page that says so: 'São Tomé', not 'Săo Tomé'."""
    body = html(title="São Tomé", head="<meta charset='windows-1252'>").encode("cp1252")
    site = portal(lab, https_routes=homepage_routes(Reply(body=body, content_type="text/html")))
    obs = lab.collector().observe(site.target())

    assert obs.title == "São Tomé"
    assert obs.charset == "windows-1252"


# --- 7, 8: bounded bodies and headers ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [5 * MiB, 64 * MiB], ids=["5MB", "64MB"])
def test_homepage_body_is_capped_in_time_and_memory(lab: Lab, size: int) -> None:
    """The body stops at max_body: the bytes kept, the time taken and the memory used are bounded."""
    head = html(title="Trang rất lớn").encode()[:-len("</body></html>")]
    site = portal(lab, https_routes=homepage_routes(Reply(body=head, content_type="text/html", stream=size)))
    collector = lab.collector(HttpScanConfig(allowed_networks=[LOOPBACK], timeout=2, max_body=MiB))
    tracemalloc.start()
    try:
        started = time.monotonic()
        obs = collector.observe(site.target())
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert obs.error is None and obs.status == 200
    assert obs.body_bytes == MiB
    expected = (head + b"x" * MiB)[:MiB]
    assert obs.body_sha256 == hashlib.sha256(expected).hexdigest()
    assert obs.title == "Trang rất lớn"
    assert elapsed < 8
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"


def _gzip_bomb() -> tuple[bytes, Reply]:
    body = html(title="Nén").encode()[:-len("</body></html>")] + b" " * (32 * MiB)
    return body, Reply(body=body, content_type="text/html", gzip=True)


def test_compressed_homepage_is_capped_after_decoding(lab: Lab) -> None:
    """A gzip body (32 kB on the wire) that inflates to 32 MiB is cut at max_body of decoded bytes."""
    body, reply = _gzip_bomb()
    site = portal(lab, https_routes=homepage_routes(reply))
    obs = lab.collector(HttpScanConfig(allowed_networks=[LOOPBACK], timeout=2, max_body=MiB)).observe(site.target())

    assert obs.error is None and obs.body_bytes == MiB and obs.title == "Nén"
    assert obs.body_sha256 == hashlib.sha256(body[:MiB]).hexdigest()


def test_compressed_homepage_memory_is_bounded_by_max_body(lab: Lab) -> None:
    """Peak memory while reading a gzip bomb stays of the order of max_body (as for a plain body)."""
    _, reply = _gzip_bomb()
    site = portal(lab, https_routes=homepage_routes(reply))
    collector = lab.collector(HttpScanConfig(allowed_networks=[LOOPBACK], timeout=2, max_body=MiB))
    tracemalloc.start()
    try:
        obs = collector.observe(site.target())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert obs.body_bytes == MiB
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"


def _others(obs: HttpObservation) -> list[str]:
    """The stored values of headers no check reads."""
    return [value for name, found in obs.headers.items() if name not in JUDGED_HEADERS for value in found]


def test_headers_are_bounded(lab: Lab) -> None:
    """More than 100 headers and a 10 kB value: at most 100 other fields stored, values at most 1024 characters."""
    many = [("X-Big", "A" * 10_000)] + [(f"X-Filler-{i:03d}", f"v{i}") for i in range(150)]
    cookies = [("Set-Cookie", f"c{i}=1") for i in range(3)]
    site = portal(lab, https_routes=homepage_routes(Reply(body=html().encode(), headers=[*cookies, *many])))
    obs = lab.collector().observe(site.target())

    assert obs.error is None and obs.status == 200
    assert len(_others(obs)) == MAX_OTHER_HEADERS
    assert all(len(value) <= MAX_HEADER_VALUE for value in _others(obs))
    assert obs.headers["x-big"] == ["A" * (MAX_HEADER_VALUE - 1) + "…"]
    assert obs.headers["set-cookie"] == ["c0=1", "c1=1", "c2=1"]
    assert "x-filler-149" not in obs.headers
    assert obs.header_count >= 154  # every field counted (the server adds Server, Date, Content-Length …)


def test_security_headers_after_300_others_are_judged(lab: Lab) -> None:
    """300 harmless headers, then the security headers: nothing is missing, storage stays bounded."""
    filler = [(f"X-Filler-{i:03d}", f"harmless value {i}") for i in range(300)]
    late = [*GOOD_HEADERS, ("X-Frame-Options", "DENY"), ("Server", "Apache/2.4.41")]
    site = portal(lab, https_routes=homepage_routes(Reply(body=html().encode(), headers=[*filler, *late])))
    obs = lab.collector().observe(site.target())

    assert obs.error is None and obs.headers_error is None and obs.complete
    assert obs.header_count >= 306
    assert check_ids(obs) == {"http.server_version_disclosed"}  # the late Server header is judged too
    assert obs.headers["x-frame-options"] == ["DENY"]
    assert obs.headers["server"] == ["portal", "Apache/2.4.41"]  # every value of a judged header, in order
    assert len(_others(obs)) == MAX_OTHER_HEADERS and "x-filler-299" not in obs.headers


@pytest.mark.parametrize(("head_kib", "said"), [(104, "bytes;"), (400, "more than the HTTP client reads")])
def test_headers_over_the_size_limit_give_an_incomplete_observation_not_a_verdict(
    lab: Lab, head_kib: int, said: str
) -> None:
    """A head over 100 KiB. 104 KiB arrives whole (h11 checks its limit between 16 KiB TLS records) and the
    collector refuses it; 400 KiB is refused by h11 itself. Either way the observation says why and no
    header is reported missing."""
    filler = [(f"X-Filler-{i:05d}", "v" * 82) for i in range(head_kib * 1024 // 100)]  # 100-byte lines
    page = Reply(body=html().encode(), headers=[*filler, *GOOD_HEADERS])
    site = portal(lab, https_routes=homepage_routes(page))
    obs = lab.collector().observe(site.target())

    assert obs.headers_error is not None and "too large to judge" in obs.headers_error
    assert f"{MAX_HEADER_BYTES // 1024} KiB" in obs.headers_error and said in obs.headers_error
    assert obs.error == obs.headers_error and not obs.complete
    assert check_ids(obs) == set()  # neither "missing header" nor "unreachable"
    assert obs.security_txt is True and obs.reaches_https is True  # the other probes still ran


# --- 9: mixed content -------------------------------------------------------------------------------------


MIXED_PAGE = """<!DOCTYPE html><html><head><title>Mixed</title>
<script src="http://cdn.example/app.js"></script>
<script src="http://cdn.example/app.js"></script>
<script src="  HTTP://cdn.example/upper.js  "></script>
<link rel="stylesheet" href="http://cdn.example/site.css">
<link rel="icon" href="http://cdn.example/favicon.ico">
<link rel="preload" href="http://cdn.example/font.woff2">
<script src="//cdn.example/protocol-relative.js"></script>
<link rel="stylesheet" href="//cdn.example/protocol-relative.css">
<script src="/local.js"></script>
<script>var url = "http://inline.example/not-a-load.js";</script>
</head><body>
<iframe src="http://maps.example/embed"></iframe>
<img src="http://cdn.example/logo.png">
<a href="http://other.example/">a link</a>
<form action="http://forms.example/post"></form>
</body></html>"""


def test_mixed_content_lists_only_active_content(lab: Lab, network_guard: NetworkGuard) -> None:
    """Scripts, stylesheets and frames over http:// — deduplicated; images, links, // URLs not listed."""
    site = portal(lab, https_routes=homepage_routes(Reply(body=MIXED_PAGE.encode(), headers=GOOD_HEADERS)))
    obs = lab.collector().observe(site.target())

    assert sorted(obs.mixed_content) == sorted([
        "http://cdn.example/app.js", "HTTP://cdn.example/upper.js", "http://cdn.example/site.css",
        "http://maps.example/embed",
    ])
    assert len(obs.mixed_content) == len(set(obs.mixed_content))
    assert check_ids(obs) == {"http.mixed_content"}
    assert network_guard.violations == [] and site.https.paths() == ["/", "/.well-known/security.txt"]


def test_mixed_content_is_capped(lab: Lab) -> None:
    """At most MAX_MIXED URLs, the first ones in page order."""
    scripts = "".join(f'<script src="http://cdn.example/s{i}.js"></script>' for i in range(80))
    site = portal(lab, https_routes=homepage_routes(Reply(body=html(head=scripts).encode())))
    obs = lab.collector().observe(site.target())

    assert obs.mixed_content == [f"http://cdn.example/s{i}.js" for i in range(MAX_MIXED)]


def test_mixed_content_is_not_looked_for_on_an_http_homepage(lab: Lab) -> None:
    """An http:// portal page loading http:// scripts is not *mixed* content."""
    http = lab.http(PORTAL_IP, {"/": Reply(body=MIXED_PAGE.encode())})
    target = HttpTarget(portal_url=f"http://{HOST}:{http.port}/", host=HOST, address=PORTAL_IP,
                        http_url=f"http://{HOST}:{http.port}/")
    obs = lab.collector().observe(target)

    assert obs.status == 200 and obs.title == "Mixed" and obs.mixed_content == []


# --- 10: security.txt -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "expected"), [
    (Reply(body=SECURITY_TXT, content_type="text/plain; charset=utf-8"), True),
    (Reply(body=b"CONTACT: https://soc.example/report\n", content_type="text/plain"), True),
    (Reply(404, body=b"Contact: nobody", content_type="text/plain"), False),
    (Reply(body=SECURITY_TXT, content_type="text/html"), False),
    (Reply(body=b"Expires: 2030-01-01T00:00:00Z\n", content_type="text/plain"), False),
    (redirect("/security.txt"), False),
], ids=["contact", "upper-case-contact", "404", "html", "no-contact", "redirected"])
def test_security_txt(lab: Lab, reply: Reply, expected: bool) -> None:
    """True only for a 200 text/plain with Contact:; anything else False (and the check fires)."""
    site = portal(lab, https_routes=homepage_routes(security=reply))
    obs = lab.collector().observe(site.target())

    assert obs.security_txt is expected and obs.security_txt_error is None
    assert ("http.security_txt_missing" in check_ids(obs)) is not expected


def test_security_txt_connection_dropped_is_unknown(lab: Lab) -> None:
    """The server hangs up on that path: None with an error, the observation incomplete, no finding."""
    site = portal(lab, https_routes=homepage_routes(security=Reply(drop=True)))
    obs = lab.collector().observe(site.target())

    assert obs.status == 200
    assert obs.security_txt is None and obs.security_txt_error is not None
    assert "RemoteProtocolError" in obs.security_txt_error
    assert obs.complete is False
    assert "http.security_txt_missing" not in check_ids(obs)


def test_security_txt_refused_on_second_target(lab: Lab) -> None:
    """A second target whose https port refuses: security.txt None with a ConnectError, the first unaffected."""
    site = portal(lab)
    refused = lab.refused_port(PORTAL_IP)
    collector = lab.collector()
    first = collector.observe(site.target())
    second = collector.observe(site.target(portal_url=f"https://{HOST}:{refused}/"))

    assert first.security_txt is True
    assert second.security_txt is None
    assert second.security_txt_error is not None and "ConnectError" in second.security_txt_error


# --- 11, 12: unreachable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["refused", "silent", "not-tls"])
def test_homepage_unreachable(lab: Lab, kind: str) -> None:
    """Refused, silent (accepts, never answers) or not TLS at all: an error, incomplete, within bounds."""
    http_port = lab.refused_port(PORTAL_IP)
    if kind == "refused":
        port = lab.refused_port(PORTAL_IP)
    elif kind == "silent":
        port = lab.silent_port(PORTAL_IP)
    else:
        port = lab.http(PORTAL_IP, {"/": Reply(body=html().encode())}).port
    target = HttpTarget(portal_url=f"https://{HOST}:{port}/", host=HOST, address=PORTAL_IP,
                        http_url=f"http://{HOST}:{http_port}/")
    started = time.monotonic()
    obs = lab.collector(HttpScanConfig(allowed_networks=[LOOPBACK], timeout=1)).observe(target)
    elapsed = time.monotonic() - started

    assert obs.error is not None and obs.complete is False and obs.status is None
    assert obs.security_txt is None and obs.security_txt_error is not None
    assert {"refused": "ConnectError", "silent": "Timeout", "not-tls": "ConnectError"}[kind] in obs.error
    assert elapsed < (3.5 if kind == "silent" else 1.5)
    assert "http.unreachable" in check_ids(obs)


def test_http_port_refused_is_not_a_finding(lab: Lab) -> None:
    """Nothing listens on http://: the hop says so, reaches_https stays None, no redirect error."""
    https = lab.https(PORTAL_IP, homepage_routes())
    target = HttpTarget(portal_url=f"https://{HOST}:{https.port}/", host=HOST, address=PORTAL_IP,
                        http_url=f"http://{HOST}:{lab.refused_port(PORTAL_IP)}/")
    obs = lab.collector().observe(target)

    assert obs.redirects == [RedirectHop(url=target.http_url, refused="no HTTP service (connection refused)")]
    assert obs.reaches_https is None and obs.redirect_error is None
    assert obs.complete
    assert "http.no_https_redirect" not in check_ids(obs)


def test_http_port_silent_is_a_redirect_error(lab: Lab) -> None:
    """An http:// port that never answers: redirect_error (incomplete), not a finding either way."""
    https = lab.https(PORTAL_IP, homepage_routes())
    target = HttpTarget(portal_url=f"https://{HOST}:{https.port}/", host=HOST, address=PORTAL_IP,
                        http_url=f"http://{HOST}:{lab.silent_port(PORTAL_IP)}/")
    obs = lab.collector(HttpScanConfig(allowed_networks=[LOOPBACK], timeout=0.5)).observe(target)

    assert obs.redirect_error is not None and "Timeout" in obs.redirect_error
    assert obs.reaches_https is None and obs.complete is False and obs.status == 200
    assert "http.no_https_redirect" not in check_ids(obs)


def test_slow_drip_homepage_is_bounded_by_the_timeout(lab: Lab) -> None:
    """A homepage dripping one byte every 0.3 s (timeout 1 s) must not hold the collector for long."""
    site = portal(lab, https_routes=homepage_routes(Reply(body=b"<" * 100_000, drip=0.3)))
    collector = lab.collector(HttpScanConfig(allowed_networks=[LOOPBACK], timeout=1))
    target = site.target(http_url=site.https_url)
    result: list[HttpObservation] = []
    worker = threading.Thread(target=lambda: result.append(collector.observe(target)), daemon=True)
    worker.start()
    try:
        worker.join(timeout=3)
        assert not worker.is_alive(), "observe() still running after 3 s with timeout=1"
    finally:
        site.https.stop()  # ends the drip: the collector gets a short body and finishes
        worker.join(timeout=5)


# --- 13: trust-label badges -------------------------------------------------------------------------------


def test_badges_extracted_without_following_links(lab: Lab, network_guard: NetworkGuard) -> None:
    """The badge is read from the markup; tinnhiemmang.vn is never looked up nor requested."""
    badge = ('<a href="https://tinnhiemmang.vn/danh-ba-tin-nhiem/portaltest-1700000001">'
             '<img src="https://tinnhiemmang.vn/handle_cert?id=portal.test"></a>')
    site = portal(lab, https_routes=homepage_routes(Reply(body=html(body=badge).encode())))
    obs = lab.collector().observe(site.target())

    assert len(obs.badges) == 1
    assert obs.badges[0].image_host == "portal.test"
    assert obs.badges[0].slug == "portaltest-1700000001"
    assert network_guard.violations == []
    assert network_guard.hosts() == {PORTAL_IP}
    assert site.https.paths() == ["/", "/.well-known/security.txt"]


# --- 14, 15: politeness and scans -------------------------------------------------------------------------


@pytest.mark.parametrize(("per_host", "expect_max"), [(1, 1), (4, None)])
def test_connections_per_address_are_limited(lab: Lab, per_host: int, expect_max: int | None) -> None:
    """Four portals on one address, 0.3 s per request: the server never sees more than the limit at once."""
    names = [f"portal-{i}.test" for i in range(4)]
    slow = Reply(body=html().encode(), delay=0.3)
    server = lab.https(POLITE_IP, homepage_routes(slow, Reply(body=SECURITY_TXT, content_type="text/plain",
                                                              delay=0.3)), names=names)
    targets = [HttpTarget(portal_url=f"https://{name}:{server.port}/", host=name, address=POLITE_IP,
                          http_url=f"https://{name}:{server.port}/") for name in names]
    config = HttpScanConfig(allowed_networks=[LOOPBACK], timeout=5, connections_per_host=per_host)
    observations = list(lab.collector(config).scan(targets))

    assert len(observations) == 4 and all(obs.status == 200 for obs in observations)
    assert len(server.seen) == 8
    assert {(seen.sni, seen.host) for seen in server.seen} == {(name, f"{name}:{server.port}") for name in names}
    if expect_max is not None:
        assert server.max_active == expect_max
    else:
        assert 2 <= server.max_active <= per_host  # the limit is what serialises, not the test server


def test_scan_yields_one_observation_per_target(lab: Lab) -> None:
    """Several targets (redirecting, not redirecting, down): one observation each, none raised."""
    site = portal(lab, http_routes={
        "/": redirect(f"https://{HOST}/", 301),  # an https:// hop ends the chain without a request
        "/plain": Reply(body=html().encode()),
    }, https_routes={**homepage_routes(), "/second": Reply(body=html(title="Hai").encode())})
    down = HttpTarget(portal_url=f"https://down.test:{lab.refused_port(DOWN_IP)}/", host="down.test",
                      address=DOWN_IP, http_url=f"http://down.test:{lab.refused_port(DOWN_IP)}/")
    targets = [
        site.target(),
        site.target(http_url=f"http://{HOST}:{site.http.port}/plain", portal_url=f"{site.https_url}second"),
        down,
    ]
    observations = {obs.portal_url: obs for obs in lab.collector().scan(targets)}

    assert set(observations) == {target.portal_url for target in targets}
    good, plain, gone = (observations[target.portal_url] for target in targets)
    assert (good.reaches_https, good.title, good.complete) == (True, TITLE, True)
    assert (plain.reaches_https, plain.title) == (False, "Hai")
    assert gone.error is not None and gone.reaches_https is None and gone.complete is False
    assert check_ids(plain) >= {"http.no_https_redirect"}
    assert check_ids(gone) == {"http.unreachable"}
    assert list(lab.collector().scan([])) == []


# --- hostile Location values (bugs) -----------------------------------------------------------------------


@pytest.mark.parametrize("side", ["http-chain", "homepage"])
@pytest.mark.parametrize("location", [f"http://{HOST}:99999/", f"http://{HOST}:65536/x"], ids=["99999", "65536"])
def test_location_with_out_of_range_port_is_recorded_not_raised(lab: Lab, side: str, location: str) -> None:
    """observe() records failures and never raises, whatever a portal sends."""
    if side == "http-chain":
        site = portal(lab, http_routes={"/": redirect(location)})
    else:
        site = portal(lab, https_routes={"/": redirect(location), "/.well-known/security.txt": NOT_FOUND})
    obs = lab.collector().observe(site.target())

    if side == "http-chain":
        assert obs.reaches_https is not True and obs.redirects[-1].refused is not None
    else:
        assert obs.error is not None


@pytest.mark.parametrize("location", ["http://[::1/", f"http://{HOST}:port/"], ids=["broken-ipv6", "port-not-number"])
def test_unparsable_location_is_a_redirect_error(lab: Lab, location: str) -> None:
    """Location values httpx itself rejects end the chain as a (recorded) redirect error."""
    site = portal(lab, http_routes={"/": redirect(location)})
    obs = lab.collector().observe(site.target())

    assert obs.redirect_error is not None and "RemoteProtocolError" in obs.redirect_error
    assert obs.reaches_https is None and obs.status == 200


def _probe_threads_left() -> Callable[[], int]:
    before = {thread.ident for thread in threading.enumerate()}
    return lambda: sum(1 for t in threading.enumerate() if t.ident not in before and t.name.startswith("http"))


def test_scan_leaves_no_worker_threads(lab: Lab) -> None:
    """The scan's thread pool is gone once the iteration ends."""
    left = _probe_threads_left()
    list(lab.collector().scan([portal(lab).target()]))
    assert left() == 0



# --- regressions from the review: one hostile portal must never stop the run ---------------------------------------


@pytest.mark.parametrize("status", [404, 500, 503])
def test_an_error_page_is_not_judged_as_the_homepage(lab: Lab, status: int) -> None:
    """A maintenance page would otherwise resolve header findings and invent trustlabel.missing."""
    site = portal(lab, https_routes=homepage_routes(Reply(status, body=html().encode())))
    obs = lab.collector().observe(site.target())
    assert obs.error == f"homepage answered HTTP {status}" and not obs.complete
    assert check_ids(obs) == {"http.unreachable"}


@pytest.mark.parametrize(
    "location",
    ["http://[zz]/", f"http://{'a' * 64}.example/", "http://a..b/", "http://portal.test:99999/"],
    ids=["bad-ipv6", "long-label", "empty-label", "bad-port"],
)
def test_hostile_redirect_targets_are_recorded_not_raised(lab: Lab, location: str) -> None:
    site = portal(lab, http_routes={"/": Reply(302, headers=[("Location", location)], content_type=None)})
    obs = lab.collector().observe(site.target())
    assert obs.reaches_https is False or obs.redirect_error is not None
    assert obs.status == 200  # the homepage itself was still read


def test_unparsable_active_content_urls_are_skipped(lab: Lab) -> None:
    page = html(body='<script src="http://[x"></script><script src="http://cdn.test/a.js"></script>').encode()
    site = portal(lab, https_routes=homepage_routes(Reply(body=page, headers=GOOD_HEADERS)))
    obs = lab.collector().observe(site.target())
    assert obs.error is None and obs.mixed_content == ["http://cdn.test/a.js"]
