"""Plain TCP listeners on a loopback address, so that the lab can show open ports to a port scanner.

One accept thread serves every listening socket: it accepts, optionally writes a banner, and closes.
Nothing is read from the client. Stopping wakes the thread through a socket pair and joins it within
STOP_TIMEOUT seconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import threading
from collections.abc import Iterable
from types import TracebackType

from soc.lab.servers import LabError

STOP_TIMEOUT = 1.5
"""Upper bound, in seconds, on joining the accept thread."""
BANNER_TIMEOUT = 0.5
"""Upper bound, in seconds, on writing the banner to one client."""
LISTEN_BACKLOG = 128
LOOPBACK_V4 = ipaddress.ip_network("127.0.0.0/8")


def require_loopback_v4(address: str) -> None:
    """Refuse anything but an IPv4 literal inside 127.0.0.0/8."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise LabError(f"port listeners bind only 127.0.0.0/8 addresses, not {address!r}") from None
    if ip.version != 4 or ip not in LOOPBACK_V4:
        raise LabError(f"port listeners bind only 127.0.0.0/8 addresses, not {address}")


def bind_listener(address: str, port: int) -> socket.socket:
    """A listening TCP socket on address:port (SO_REUSEADDR); LabError names address:port on failure."""
    if not 0 <= port <= 65535:
        raise LabError(f"cannot listen on {address}:{port}: port out of range")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as err:
        sock.close()
        raise LabError(f"cannot listen on {address}:{port}: {err.strerror or err}") from err
    sock.setblocking(False)
    return sock


class PortListeners:
    """A context manager holding TCP listeners on several ports of one 127.x address.

    Every accepted connection is answered with `banner` (when given) and closed at once.
    `accepted` counts the connections each port received, so a test can tell how often it was probed.
    """

    def __init__(self, address: str, ports: Iterable[int], banner: bytes | None = None) -> None:
        """Check the address; nothing is bound before `start` / `__enter__`. Port 0 binds an ephemeral port."""
        require_loopback_v4(address)
        self.address = address
        self.requested_ports = list(ports)
        self.banner = banner
        self.ports: list[int] = []
        """The bound ports, in the order requested (ephemeral ones resolved), while running."""
        self.accepted: dict[int, int] = {}
        self._sockets: list[socket.socket] = []
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> PortListeners:
        """Start listening (see `start`)."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop listening (see `stop`)."""
        self.stop()

    def start(self) -> None:
        """Bind every port and start the accept thread; on a bind failure nothing stays bound."""
        if self._thread is not None:
            raise LabError(f"listeners on {self.address} are already running")
        try:
            for port in self.requested_ports:
                self._sockets.append(bind_listener(self.address, port))
        except LabError:
            self._close_sockets()
            raise
        self.ports = [sock.getsockname()[1] for sock in self._sockets]
        self.accepted = dict.fromkeys(self.ports, 0)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name=f"port-listeners-{self.address}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Wake and join the accept thread (bounded by STOP_TIMEOUT), then close every socket."""
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        self._close_sockets()
        self._thread = None

    def connections(self, port: int) -> int:
        """How many connections `port` has accepted so far."""
        with self._lock:
            return self.accepted.get(port, 0)

    def _serve(self) -> None:
        """Accept loop: runs until the wake socket becomes readable."""
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            for sock in self._sockets:
                selector.register(sock, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake_r in ready:
                    return
                for listener in ready:
                    assert isinstance(listener, socket.socket)
                    self._accept(listener)

    def _accept(self, sock: socket.socket) -> None:
        """Accept one pending connection, write the banner if any, and close it."""
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        port: int = sock.getsockname()[1]
        with self._lock:
            self.accepted[port] = self.accepted.get(port, 0) + 1
        with conn:
            if self.banner:
                conn.settimeout(BANNER_TIMEOUT)
                with contextlib.suppress(OSError):
                    conn.sendall(self.banner)

    def _close_sockets(self) -> None:
        """Close the listeners and the wake pair."""
        for sock in (*self._sockets, self._wake_r, self._wake_w):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._sockets = []
        self._wake_r = self._wake_w = None
