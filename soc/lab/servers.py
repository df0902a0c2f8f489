"""Loopback servers of the portal lab: TLS portals, broken endpoints and the AIA HTTP server.

Every listening socket is bound to a 127.0.0.0/8 address. Each portal has its own accept
thread; every accepted connection gets a short-lived daemon thread whose socket operations
all carry timeouts. Stopping wakes every accept loop at once, shuts down live connections
and joins all threads against one deadline.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import socket
import socketserver
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from soc.lab.cases import TLSProfile
from soc.lab.pki import AIA_PATH, LeafFiles
from soc.lab.revocation import LabRevocation

HANDSHAKE_TIMEOUT = 5.0
REQUEST_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 16 * 1024
MAX_REQUEST_READS = 64
SILENT_POLL = 1.0
SILENT_MAX_SECONDS = 300.0
GARBAGE_BANNER = b"SSH-2.0-OpenSSH_9.2 not tls\r\n"
GARBAGE_DRAIN_SECONDS = 1.0
LISTEN_BACKLOG = 256
MAX_CONNECTIONS = 1024
"""Concurrent connections per lab; more are closed at once."""
MAX_LIFETIME_SECONDS = 6 * 3600.0
"""Accept loops end by themselves after this long, even if the lab is never stopped."""
ACCEPT_ERROR_PAUSE = 0.05


class LabError(RuntimeError):
    """The lab could not be started (e.g. an address:port is already taken)."""


class Connection:
    """One accepted connection; `sock` is replaced by its TLS wrapper once wrapped."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        """Hold the accepted socket."""
        self.sock = sock

    def interrupt(self) -> None:
        """Shut the connection down so that blocked reads and writes return at once."""
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Close whichever socket object currently owns the connection."""
        with contextlib.suppress(OSError):
            self.sock.close()


Handler = Callable[[Connection, threading.Event], None]
"""Serves one connection; the event is set when the lab stops."""


def require_loopback(address: str) -> None:
    """Refuse any address outside 127.0.0.0/8."""
    if not ipaddress.ip_address(address).is_loopback:
        raise LabError(f"the portal lab only binds loopback addresses, not {address}")


class ConnectionTracker:
    """Runs connection handlers in daemon threads and can interrupt and join them all."""

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        """Track at most `limit` concurrent connections."""
        self._limit = limit
        self._lock = threading.Lock()
        self._live: dict[threading.Thread, Connection] = {}
        self.stopping = threading.Event()

    def dispatch(self, sock: socket.socket, handler: Handler) -> None:
        """Serve `sock` with `handler` in a new thread (or close it when full or stopping)."""
        conn = Connection(sock)
        thread = threading.Thread(target=self._run, args=(conn, handler), name="lab-conn", daemon=True)
        with self._lock:
            accepted = len(self._live) < self._limit and not self.stopping.is_set()
            if accepted:
                self._live[thread] = conn
        if accepted:
            thread.start()
        else:
            conn.close()

    def _run(self, conn: Connection, handler: Handler) -> None:
        """Thread body: run the handler, swallow network errors, always close."""
        try:
            handler(conn, self.stopping)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()
            with self._lock:
                self._live.pop(threading.current_thread(), None)

    def stop(self, deadline: float) -> None:
        """Refuse new connections, interrupt live ones and join their threads until `deadline`."""
        self.stopping.set()
        with self._lock:
            live = list(self._live.items())
        for _, conn in live:
            conn.interrupt()
        for thread, _ in live:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class Waker:
    """A socket pair whose read end becomes readable, for good, when `fire` is called."""

    def __init__(self) -> None:
        """Create the pair."""
        self.reader, self._writer = socket.socketpair()

    def fire(self) -> None:
        """Wake every selector watching `reader`."""
        with contextlib.suppress(OSError):
            self._writer.send(b"x")

    def close(self) -> None:
        """Close both ends."""
        self.reader.close()
        self._writer.close()


def listen(address: str, port: int) -> socket.socket:
    """A listening TCP socket on a loopback address (SO_REUSEADDR); a clear LabError if taken."""
    require_loopback(address)
    try:
        sock = socket.create_server((address, port), backlog=LISTEN_BACKLOG)
    except OSError as err:
        raise LabError(f"cannot listen on {address}:{port}: {err.strerror or err}") from err
    sock.setblocking(False)
    return sock


def reserve_closed_port(address: str, port: int) -> int:
    """A port on `address` where nothing listens: `port`, or an ephemeral one when it is 0.

    The probe binds without SO_REUSEADDR, so it also fails if a wildcard listener holds the port.
    """
    require_loopback(address)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind((address, port))
        bound: int = probe.getsockname()[1]
    except OSError as err:
        raise LabError(f"cannot reserve {address}:{port} for the refused case: {err.strerror or err}") from err
    finally:
        probe.close()
    return bound


class LabServer:
    """One portal: a listening socket on its own address and an accept thread."""

    def __init__(self, address: str, port: int, handler: Handler, tracker: ConnectionTracker, waker: Waker) -> None:
        """Bind now (raising LabError when the address:port is taken); accept after `start`."""
        self.address = address
        self._sock = listen(address, port)
        self.port: int = self._sock.getsockname()[1]
        self._handler = handler
        self._tracker = tracker
        self._waker = waker
        self._thread = threading.Thread(target=self._accept_loop, name=f"lab-accept-{address}", daemon=True)

    def start(self) -> None:
        """Start accepting connections."""
        self._thread.start()

    def _accept_loop(self) -> None:
        """Accept until the waker fires or the lifetime bound is reached."""
        end = time.monotonic() + MAX_LIFETIME_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._waker.reader, selectors.EVENT_READ)
            while (remaining := end - time.monotonic()) > 0:
                ready = {key.fileobj for key, _ in selector.select(timeout=remaining)}
                if self._waker.reader in ready or self._tracker.stopping.is_set():
                    return
                if ready:
                    self._accept_one()

    def _accept_one(self) -> None:
        """Accept one pending connection and hand it to the tracker."""
        try:
            sock, _ = self._sock.accept()
        except BlockingIOError:
            return
        except OSError:
            time.sleep(ACCEPT_ERROR_PAUSE)
            return
        sock.setblocking(True)
        self._tracker.dispatch(sock, self._handler)

    def stop(self, deadline: float) -> None:
        """Join the accept thread (the waker must have fired) and close the listening socket."""
        if self._thread.is_alive():
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._sock.close()


def server_context(profile: TLSProfile, files: LeafFiles, dh_params: Path | None) -> ssl.SSLContext:
    """The server SSLContext of a TLS case (ciphers first: @SECLEVEL governs what loads)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"ssl\.TLSVersion\.TLSv1", DeprecationWarning)
        context.minimum_version = profile.minimum
        context.maximum_version = profile.maximum
    context.set_ciphers(profile.ciphers)
    if profile.dh1024:
        if dh_params is None:
            raise LabError("the dhe1024 case needs a DH parameters file")
        context.load_dh_params(str(dh_params))
    context.load_cert_chain(files.chain_path, files.key_path)
    return context


def _read_request(sock: socket.socket) -> str | None:
    """Read one HTTP request head (bounded in size, reads and time); its path, or None if incomplete."""
    end = time.monotonic() + REQUEST_TIMEOUT
    data = b""
    for _ in range(MAX_REQUEST_READS):
        remaining = end - time.monotonic()
        if remaining <= 0 or len(data) > MAX_REQUEST_BYTES:
            return None
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
        if b"\r\n\r\n" in data:
            parts = data.split(b"\r\n", 1)[0].split()
            return parts[1].decode("latin-1").split("?", 1)[0] if len(parts) >= 2 else "/"
    return None


def tls_handler(context: ssl.SSLContext, respond: Callable[[str], bytes]) -> Handler:
    """Handshake (5 s timeout), read one request, answer it, send close_notify."""

    def handle(conn: Connection, stopping: threading.Event) -> None:
        """Serve one TLS connection."""
        conn.sock.settimeout(HANDSHAKE_TIMEOUT)
        tls = context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
        conn.sock = tls
        tls.do_handshake()
        path = _read_request(tls)
        if path is not None and not stopping.is_set():
            tls.sendall(respond(path))
            tls.settimeout(0.5)
            tls.unwrap()

    return handle


def plain_http_handler(respond: Callable[[str], bytes]) -> Handler:
    """Read one plain-HTTP request and answer it (the portals' http:// listeners)."""

    def handle(conn: Connection, stopping: threading.Event) -> None:
        """Serve one HTTP connection."""
        path = _read_request(conn.sock)
        if path is not None and not stopping.is_set():
            conn.sock.sendall(respond(path))

    return handle


def silent_handler(conn: Connection, stopping: threading.Event) -> None:
    """Never send a byte; discard input until the client closes or the lab stops (bounded)."""
    conn.sock.settimeout(SILENT_POLL)
    for _ in range(int(SILENT_MAX_SECONDS / SILENT_POLL)):
        if stopping.is_set():
            return
        try:
            if not conn.sock.recv(4096):
                return
        except TimeoutError:
            continue


def garbage_handler(conn: Connection, stopping: threading.Event) -> None:
    """Write an SSH banner and random bytes, then close (after a short bounded drain)."""
    conn.sock.sendall(GARBAGE_BANNER + os.urandom(48))
    conn.sock.shutdown(socket.SHUT_WR)
    end = time.monotonic() + GARBAGE_DRAIN_SECONDS
    for _ in range(16):
        remaining = end - time.monotonic()
        if remaining <= 0 or stopping.is_set():
            return
        conn.sock.settimeout(remaining)
        if not conn.sock.recv(4096):
            return


def reset_handler(conn: Connection, stopping: threading.Event) -> None:
    """Close at once with a TCP RST (SO_LINGER on, timeout 0)."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.sock.close()


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that does no reverse-DNS lookup and prints no tracebacks."""

    daemon_threads = True

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn() (which would query the resolver)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore broken client connections."""


def _aia_handler_class(der: bytes, revocation: LabRevocation | None = None) -> type[BaseHTTPRequestHandler]:
    """A request handler serving `der` at AIA_PATH (application/pkix-cert), the CAs' CRLs and OCSP; 404 elsewhere."""

    class AIAHandler(BaseHTTPRequestHandler):
        """Serves the issuing CA certificate, the CRLs and the OCSP responder."""

        timeout = HANDSHAKE_TIMEOUT

        def do_GET(self) -> None:
            """Serve the certificate or a CRL (or 404)."""
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            """Headers only."""
            self._answer(with_body=False)

        def do_POST(self) -> None:
            """Answer an OCSP request (or 404); the request body is bounded."""
            length = int(self.headers.get("Content-Length") or 0)
            if revocation is None or not 0 < length <= MAX_REQUEST_BYTES:
                self.send_error(404 if revocation is None else 413)
                return
            answer = revocation.post(self.path.split("?", 1)[0], self.rfile.read(length))
            self._send(answer, with_body=True)

        def _answer(self, with_body: bool) -> None:
            """200 with the DER certificate at AIA_PATH or a CRL, 404 anywhere else."""
            path = self.path.split("?", 1)[0]
            if path == AIA_PATH:
                self._send(("application/pkix-cert", der), with_body)
            else:
                self._send(revocation.get(path) if revocation is not None else None, with_body)

        def _send(self, answer: tuple[str, bytes] | None, with_body: bool) -> None:
            if answer is None:
                self.send_error(404)
                return
            content_type, body = answer
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Log nothing."""

    return AIAHandler


class AIAServer:
    """The lab's caIssuers endpoint (the issuing CA in DER over plain HTTP), with the CAs' CRLs and OCSP."""

    def __init__(self, address: str, der: bytes, revocation: LabRevocation | None = None) -> None:
        """Bind an ephemeral port on `address` (loopback only)."""
        require_loopback(address)
        try:
            self._httpd = QuietHTTPServer((address, 0), _aia_handler_class(der, revocation))
        except OSError as err:
            raise LabError(f"cannot listen on {address}: {err.strerror or err}") from err
        self.address = address
        self.port: int = self._httpd.server_port
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="lab-aia", daemon=True
        )

    @property
    def url(self) -> str:
        """The caIssuers URL put into leaves issued by the intermediate."""
        return f"{self.base_url}{AIA_PATH}"

    @property
    def base_url(self) -> str:
        """http://address:port of the server (CRL and OCSP URLs start with it)."""
        return f"http://{self.address}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self, deadline: float) -> None:
        """Stop serving (bounded) and close the socket."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._httpd.server_close()
