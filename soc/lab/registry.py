"""A local stand-in for the Tín nhiệm mạng registry (tinnhiemmang.vn), for the tests and the portal lab.

It serves plausible label detail pages at `/danh-ba-tin-nhiem/<slug>` on a loopback address only,
records every path it was asked for (so tests can check rate limits and that nothing crawls), and
can misbehave on purpose (`fail_mode`) to test how clients degrade::

    entry = RegistryEntry("dongnai.gov.vn", "UBND tỉnh Đồng Nai", level="advanced")
    with RegistryServer(entries={"dongnaigovvn-1712345678": entry}) as registry:
        TrustLabelRegistry(base_url=registry.base_url).lookup("dongnai.gov.vn", "dongnaigovvn-1712345678")
"""

from __future__ import annotations

import html
import ipaddress
import re
import threading
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Literal

from soc.lab.servers import LabError, QuietHTTPServer
from soc.lab.web import RegistryEntry

__all__ = ["RegistryEntry", "RegistryServer", "detail_page"]

DETAIL_PREFIX = "/danh-ba-tin-nhiem/"
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
REQUEST_TIMEOUT = 5.0
HANG_SECONDS = 30.0
"""A hanging answer gives up after this long even if the server is never stopped."""
HUGE_BYTES = 1024 * 1024
MAX_RECORDED = 10_000
STOP_TIMEOUT = 3.0
_SLUG = re.compile(r"[a-z0-9-]{1,128}")

FailMode = Literal["error", "hang", "redirect", "huge", "garbage"]
"""How the server misbehaves: 500, never answer, redirect off-host, oversized page, a page that is no detail page."""

LEVEL_TEXT = {"basic": "Cơ bản", "advanced": "Nâng cao"}
STATUS_TEXT = {"revoked": "Đã thu hồi", "expired": "Hết hạn"}


def detail_page(entry: RegistryEntry) -> str:
    """A registry-like detail page for `entry` (every value HTML-escaped)."""
    domain, owner = html.escape(entry.domain), html.escape(entry.owner)
    name = html.escape(entry.name or entry.domain)
    fields = [
        ("Tên miền", f'<a href="https://{domain}" rel="nofollow noopener">{domain}</a>'),
        ("Đơn vị chủ quản", owner),
        ("Mức tín nhiệm", LEVEL_TEXT[entry.level]),
    ]
    if entry.layout == "table":
        rows = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in fields)
        body = f'<table class="info">{rows}</table>'
    else:
        body = "".join(f'<p><span class="lbl">{label}:</span> <strong>{value}</strong></p>' for label, value in fields)
    status = f'<p class="status">Trạng thái: <b>{STATUS_TEXT[entry.status]}</b></p>' if entry.status else ""
    return (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        f"<title>{name} - Danh bạ tín nhiệm</title></head><body>"
        '<header><a href="/">TÍN NHIỆM MẠNG</a><nav><a href="/danh-ba-tin-nhiem">Danh bạ tín nhiệm</a></nav></header>'
        f'<main class="website-detail"><h1>{name}</h1>'
        f'<img src="/handle_cert?id={domain}" alt="Chứng nhận Tín nhiệm mạng">'
        f"{body}<p class=\"label-date\">Tín nhiệm mạng: {entry.issued:%d/%m/%Y}</p>{status}</main>"
        "<footer>Trung tâm Giám sát an toàn không gian mạng quốc gia (NCSC) - Cục An toàn thông tin</footer>"
        "</body></html>"
    )


NOT_FOUND_PAGE = (
    '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Không tìm thấy</title></head>'
    "<body><h1>404</h1><p>Không tìm thấy trang bạn yêu cầu.</p></body></html>"
)
GARBAGE_PAGE = (
    '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>Bảo trì</title></head>'
    "<body><p>Hệ thống đang bảo trì, vui lòng quay lại sau.</p></body></html>"
)


def require_127(address: str) -> None:
    """LabError unless `address` is an IPv4 address in 127.0.0.0/8."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise LabError(f"the registry stand-in binds only 127.x addresses, not {address[:60]!r}") from None
    if parsed not in LOOPBACK:
        raise LabError(f"the registry stand-in binds only 127.x addresses, not {address}")


class RegistryServer:
    """A registry-shaped HTTP server on loopback (context manager: started on enter, stopped on exit)."""

    def __init__(
        self, address: str = "127.0.10.251", port: int = 0, entries: dict[str, RegistryEntry] | None = None
    ) -> None:
        """Bind `address:port` (127.x only; port 0 = ephemeral) and hold `entries` by slug; serving starts on enter."""
        require_127(address)
        self.address = address
        self.requests: list[str] = []
        """Paths requested, in order (at most MAX_RECORDED)."""
        self.fail_mode: FailMode | None = None
        self._entries: dict[str, RegistryEntry] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        for slug, entry in (entries or {}).items():
            self.add(slug, entry)
        try:
            self._httpd = QuietHTTPServer((address, port), self._handler_class())
        except OSError as err:
            raise LabError(f"cannot listen on {address}:{port}: {err.strerror or err}") from err
        self.port: int = self._httpd.server_port
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL the registry client is given (no trailing slash)."""
        return f"http://{self.address}:{self.port}"

    def add(self, slug: str, entry: RegistryEntry) -> None:
        """Publish (or replace) the detail page of `slug`."""
        if not _SLUG.fullmatch(slug):
            raise ValueError(f"invalid slug {slug!r}")
        with self._lock:
            self._entries[slug] = entry

    def entry(self, slug: str) -> RegistryEntry | None:
        """The entry published under `slug`, if any."""
        with self._lock:
            return self._entries.get(slug)

    def record(self, path: str) -> None:
        """Remember one requested path."""
        with self._lock:
            if len(self.requests) < MAX_RECORDED:
                self.requests.append(path[:2048])

    def __enter__(self) -> RegistryServer:
        """Start serving (see `start`)."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop serving (see `stop`)."""
        self.stop()

    def start(self) -> None:
        """Serve in a background daemon thread."""
        if self._thread is not None:
            raise LabError("the registry stand-in is already running")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="lab-registry", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Release hanging answers, stop serving and close the socket (bounded by STOP_TIMEOUT)."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=STOP_TIMEOUT)
        self._httpd.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class bound to this server."""
        registry = self

        class RegistryHandler(BaseHTTPRequestHandler):
            """Answers GET like the registry's detail pages (404 elsewhere)."""

            timeout = REQUEST_TIMEOUT
            server_version = "nginx"
            sys_version = ""

            def do_GET(self) -> None:
                """Serve one request according to the entries and the fail mode."""
                registry.record(self.path)
                registry.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                """Log nothing."""

        return RegistryHandler

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        """Write the answer to one GET request."""
        mode = self.fail_mode
        if mode == "hang":
            self._stopping.wait(HANG_SECONDS)
            return
        if mode == "error":
            _send(handler, 500, "<html><body><h1>500 Internal Server Error</h1></body></html>")
            return
        slug = handler.path.split("?", 1)[0].removeprefix(DETAIL_PREFIX)
        entry = self.entry(slug) if handler.path.startswith(DETAIL_PREFIX) else None
        if entry is None:
            _send(handler, 404, NOT_FOUND_PAGE)
        elif mode == "redirect":
            _send(handler, 302, "", location=f"http://127.0.0.2:9{DETAIL_PREFIX}{slug}")
        elif mode == "huge":
            _send(handler, 200, detail_page(entry) + "<!--" + "x" * HUGE_BYTES + "-->")
        elif mode == "garbage":
            _send(handler, 200, GARBAGE_PAGE)
        else:
            _send(handler, 200, detail_page(entry))


def _send(handler: BaseHTTPRequestHandler, status: int, page: str, location: str | None = None) -> None:
    """Send one complete HTML response."""
    body = page.encode("utf-8")
    handler.send_response(status)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    if location is not None:
        handler.send_header("Location", location)
    handler.end_headers()
    handler.wfile.write(body)
