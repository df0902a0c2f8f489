"""The latency proxy (soc/lab/latency.py) against real servers on 127.0.90.x: added RTT, byte-exact
relay both ways under jitter and stalls, silent routes, resets, clean shutdown, loopback only."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from soc.lab import PortalLab
from soc.lab.latency import Latency, LatencyProxy
from soc.lab.servers import (
    Connection,
    ConnectionTracker,
    Handler,
    LabServer,
    Waker,
    reserve_closed_port,
)

UPSTREAM = "127.0.90.1"
FRONT = "127.0.90.2"
RTT = 0.1
PAYLOAD_BYTES = 6 * 1024 * 1024
IO_TIMEOUT = 10.0
lab = pytest.mark.lab  # the tests that start servers


@contextmanager
def upstream(handler: Handler, address: str = UPSTREAM) -> Iterator[int]:
    """A real loopback server running `handler` on an ephemeral port (stopped within 3 s)."""
    tracker, waker = ConnectionTracker(), Waker()
    server = LabServer(address, 0, handler, tracker, waker)
    server.start()
    try:
        yield server.port
    finally:
        deadline = time.monotonic() + 3.0
        waker.fire()
        server.stop(deadline)
        tracker.stop(deadline)
        waker.close()


def echo(conn: Connection, stopping: threading.Event) -> None:
    """Send back whatever arrives, until EOF."""
    conn.sock.settimeout(IO_TIMEOUT)
    while not stopping.is_set() and (data := conn.sock.recv(65536)):
        conn.sock.sendall(data)


@contextmanager
def proxied(handler: Handler, latency: Latency) -> Iterator[tuple[LatencyProxy, int]]:
    """A proxy on FRONT relaying to a fresh upstream running `handler`: (proxy, its port)."""
    with upstream(handler) as port, LatencyProxy(latency, seed=7) as proxy:
        yield proxy, proxy.add((FRONT, 0), (UPSTREAM, port))


def exchange_times(port: int, rounds: int) -> list[float]:
    """Seconds each small request/response took on one connection (the first includes the connect)."""
    times = []
    start = time.perf_counter()
    with socket.create_connection((FRONT, port), timeout=IO_TIMEOUT) as sock:
        for _ in range(rounds):
            sock.sendall(b"ping")
            assert sock.recv(16) == b"ping"
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
    return times


@lab
def test_each_exchange_costs_one_rtt_and_the_connect_one_more() -> None:
    with proxied(echo, Latency(rtt_s=RTT)) as (_proxy, port):
        first, *steady = exchange_times(port, 6)
    assert 2 * RTT * 0.97 <= first <= 2 * RTT + 0.1  # the local TCP handshake is charged to the first bytes
    assert min(steady) >= RTT * 0.97
    assert statistics.median(steady) <= RTT + 0.05


@lab
def test_without_the_connect_charge_the_first_exchange_costs_one_rtt() -> None:
    with proxied(echo, Latency(rtt_s=RTT, charge_connect=False)) as (_proxy, port):
        first, *_ = exchange_times(port, 2)
    assert RTT * 0.97 <= first <= RTT + 0.1


@lab
def test_a_stall_holds_a_chunk_back() -> None:
    with proxied(echo, Latency(rtt_s=0.0, stall_probability=1.0, stall_s=0.15)) as (_proxy, port):
        times = exchange_times(port, 3)
    assert min(times) >= 2 * 0.15 * 0.97  # both directions stalled
    assert max(times) <= 2 * 0.15 + 0.15


def swap_blobs(server_blob: bytes, received: dict[str, str]) -> Handler:
    """A handler that sends `server_blob` while reading everything the client sends (its hash into `received`)."""

    def handle(conn: Connection, stopping: threading.Event) -> None:
        conn.sock.settimeout(IO_TIMEOUT)
        sender = threading.Thread(target=_send_and_close, args=(conn.sock, server_blob), daemon=True)
        sender.start()
        received["sha256"] = _read_all(conn.sock)
        sender.join(IO_TIMEOUT)

    return handle


def _send_and_close(sock: socket.socket, blob: bytes) -> None:
    sock.sendall(blob)
    sock.shutdown(socket.SHUT_WR)


def _read_all(sock: socket.socket) -> str:
    digest = hashlib.sha256()
    while data := sock.recv(1 << 20):
        digest.update(data)
    return digest.hexdigest()


@lab
def test_large_payloads_are_relayed_byte_exact_both_ways_under_jitter_and_stalls() -> None:
    # jitter larger than the one-way delay would reorder chunks if each were simply delayed on its own
    latency = Latency(rtt_s=0.02, jitter_s=0.02, stall_probability=0.05, stall_s=0.05)
    client_blob, server_blob = os.urandom(PAYLOAD_BYTES), os.urandom(PAYLOAD_BYTES)
    received: dict[str, str] = {}
    with proxied(swap_blobs(server_blob, received), latency) as (proxy, port):
        with socket.create_connection((FRONT, port), timeout=IO_TIMEOUT) as sock:
            sender = threading.Thread(target=_send_and_close, args=(sock, client_blob), daemon=True)
            sender.start()
            got = _read_all(sock)
            sender.join(IO_TIMEOUT)
        deadline = time.monotonic() + IO_TIMEOUT
        while "sha256" not in received and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = proxy.stats()
    assert got == hashlib.sha256(server_blob).hexdigest()
    assert received["sha256"] == hashlib.sha256(client_blob).hexdigest()
    assert stats.connections == 1 and stats.bytes_relayed == 2 * PAYLOAD_BYTES


@lab
def test_a_silent_route_accepts_and_never_answers_nor_forwards() -> None:
    accepted = threading.Event()

    def record(conn: Connection, stopping: threading.Event) -> None:
        accepted.set()

    with proxied(record, Latency(rtt_s=0.01, silent=True)) as (proxy, port):
        with socket.create_connection((FRONT, port), timeout=0.5) as sock:
            sock.sendall(b"\x16\x03\x01 hello, anybody there?")
            with pytest.raises(TimeoutError):
                sock.recv(16)
        assert proxy.stats().connections == 1
    assert not accepted.is_set()


@lab
def test_an_upstream_that_refuses_resets_the_client_after_one_rtt() -> None:
    closed = reserve_closed_port(UPSTREAM, 0)
    with LatencyProxy(Latency(rtt_s=RTT)) as proxy:
        port = proxy.add((FRONT, 0), (UPSTREAM, closed))
        start = time.perf_counter()
        with socket.create_connection((FRONT, port), timeout=IO_TIMEOUT) as sock, \
                pytest.raises(ConnectionResetError):
            sock.recv(16)
        assert time.perf_counter() - start >= RTT * 1.5 * 0.97


def cut(sock: socket.socket) -> bool:
    """Whether the peer closed or reset the connection (rather than sending data or nothing)."""
    try:
        return sock.recv(16) == b""
    except ConnectionResetError:
        return True


@lab
def test_stop_cuts_live_connections_and_frees_the_port() -> None:
    with upstream(echo) as up_port:
        proxy = LatencyProxy(Latency(rtt_s=RTT))
        proxy.start()
        port = proxy.add((FRONT, 0), (UPSTREAM, up_port))
        silent_port = proxy.add((FRONT, 0), (UPSTREAM, up_port), Latency(silent=True))
        with socket.create_connection((FRONT, port), timeout=IO_TIMEOUT) as live, \
                socket.create_connection((FRONT, silent_port), timeout=IO_TIMEOUT) as hung:
            live.sendall(b"ping")
            assert live.recv(16) == b"ping"
            start = time.perf_counter()
            proxy.stop()
            assert time.perf_counter() - start < 2.0
            assert cut(live) and cut(hung)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((FRONT, port), timeout=IO_TIMEOUT)


@lab
def test_a_tls_handshake_to_a_lab_portal_through_the_proxy(tmp_path: Path) -> None:
    with PortalLab(tmp_path, cases=["good"], base_address="127.0.91.") as portals, \
            LatencyProxy(Latency(rtt_s=RTT)) as proxy:
        case = portals.case("good")
        port = proxy.add(("127.0.92.1", 0), (case.address, case.port))
        context = ssl.create_default_context(cafile=str(portals.trust_store_path))
        start = time.perf_counter()
        with socket.create_connection(("127.0.92.1", port), timeout=IO_TIMEOUT) as raw, \
                context.wrap_socket(raw, server_hostname=case.host) as tls:
            took = time.perf_counter() - start
            assert tls.version() == "TLSv1.3"
    assert took >= 2 * RTT * 0.97  # the TCP round trip plus TLS 1.3's one


@pytest.mark.parametrize("listen", ["10.0.0.1", "192.0.2.1", "0.0.0.0", "::", "localhost", "portal.gov.vn"])
def test_non_loopback_listen_addresses_are_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LatencyProxy().add((listen, 8443), (UPSTREAM, 8443))


@pytest.mark.parametrize("target", ["203.0.113.7", "169.254.169.254", "fe80::1", "localhost"])
def test_non_loopback_upstreams_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LatencyProxy().add((FRONT, 0), (target, 443))


@pytest.mark.parametrize("bad", [{"rtt_s": -0.1}, {"rtt_s": 60.0}, {"jitter_s": -1.0},
                                 {"stall_probability": 1.5}, {"stall_s": 3600.0}])
def test_unbounded_latencies_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Latency(**bad)
