"""A certificate message over the 100 KiB TLS clients accept, against real servers on loopback: the probe
names it, the bounded reader gets the certificate past the limit (TLS ≤ 1.2), and the observation says what
happened instead of "could not find a TLS version and cipher suite"."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from collectors.bigcert import CLIENT_LIMIT_BYTES, BigCertificateError, read_certificates
from collectors.tls import TlsCollector, TlsScanConfig, TlsTarget, probe
from soc.lab.cases import OVERSIZED_SANS, TLSProfile
from soc.lab.pki import LabPKI, LeafSpec
from soc.lab.servers import Connection, ConnectionTracker, Handler, LabServer, Waker, server_context, tls_handler

pytestmark = pytest.mark.lab  # starts real servers on loopback

ADDRESS = "127.0.52.1"
HOST = "big.lab.soc.test"


@contextmanager
def serving(handler: Handler) -> Iterator[int]:
    """A lab server on ADDRESS with `handler`; its port."""
    tracker, waker = ConnectionTracker(), Waker()
    server = LabServer(ADDRESS, 0, handler, tracker, waker)
    server.start()
    try:
        yield server.port
    finally:
        deadline = time.monotonic() + 3
        waker.fire()
        server.stop(deadline)
        tracker.stop(deadline)
        waker.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPKI:
    return LabPKI(tmp_path_factory.mktemp("pki"))


def tls_server(pki: LabPKI, extra_sans: int, minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> Handler:
    files = pki.issue_leaf(LeafSpec(extra_sans=extra_sans), HOST, "http://127.0.52.250/ca.cer")
    context = server_context(TLSProfile(minimum=minimum), files, None)
    return tls_handler(context, lambda _path: b"HTTP/1.0 200 OK\r\n\r\n")


def target(port: int) -> TlsTarget:
    return TlsTarget(f"https://{HOST}:{port}/", HOST, port, ADDRESS)


def test_a_330_kb_certificate_is_named_and_read_past_the_client_limit(pki: LabPKI) -> None:
    with serving(tls_server(pki, OVERSIZED_SANS - 1)) as port:
        result = probe(target(port), timeout=4)
        assert result.unreachable is None and result.oversized is not None and result.big_chain is not None
        size = result.oversized.message_bytes
        assert size is not None and 250_000 < size < 400_000 and size > CLIENT_LIMIT_BYTES
        assert result.big_chain.version == "TLSv1.2" and result.big_chain.total_certificates == 2
        collector = TlsCollector(TlsScanConfig(trust_stores=[pki.trust_store_path], probe_timeout=4))
        try:
            [obs] = list(collector.scan([target(port)]))
        finally:
            collector.close()
    assert obs.oversized_certificate is not None and obs.oversized_certificate.message_bytes == size
    assert obs.unreachable is None and not obs.complete and "exceeds" in obs.command_errors["sslyze"]
    assert obs.protocols == {"TLSv1.2": True}
    assert obs.hostname_matches is True  # its own name is the last of 6000
    assert obs.trust is not None and obs.trust.anchored and obs.chain[0].san_dns_total == OVERSIZED_SANS


def test_a_tls_13_only_server_is_still_named_though_its_certificate_cannot_be_read(pki: LabPKI) -> None:
    # TLS 1.3 only: the certificate travels encrypted, so no reader can get past the limit.
    with serving(tls_server(pki, OVERSIZED_SANS - 1, minimum=ssl.TLSVersion.TLSv1_3)) as port:
        result = probe(target(port), timeout=4)
    assert result.unreachable is None and result.oversized is not None and result.big_chain is None
    assert result.oversized.message_bytes is None
    assert "refused a TLS 1.2 handshake" in (result.oversized.read_error or "")


def test_a_certificate_within_the_limit_is_left_to_sslyze(pki: LabPKI) -> None:
    with serving(tls_server(pki, 0)) as port:
        result = probe(target(port), timeout=4)
        small = read_certificates(ADDRESS, port, HOST, timeout=4)
    assert result.unreachable is None and result.oversized is None
    assert small.message_bytes < CLIENT_LIMIT_BYTES and f"CN={HOST}" in small.chain[0].subject.rfc4514_string()


def hostile(answer: bytes, linger: float = 0.0) -> Handler:
    """Reads the ClientHello, then sends `answer` (and waits `linger` seconds)."""

    def handle(conn: Connection, stopping: threading.Event) -> None:
        conn.sock.settimeout(2)
        conn.sock.recv(65536)
        conn.sock.sendall(answer)
        stopping.wait(linger)

    return handle


def record(kind: int, fragment: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(fragment).to_bytes(2, "big") + fragment


SERVER_HELLO = record(22, b"\x02" + (38).to_bytes(3, "big") + b"\x03\x03" + b"\x00" * 32 + b"\x00\xc0\x2f\x00")


@pytest.mark.parametrize(
    ("answer", "linger", "message"),
    [
        (SERVER_HELLO + record(22, b"\x0b" + (10 * 2**20).to_bytes(3, "big")), 0.0, "10485760 bytes: not read"),
        (SERVER_HELLO + record(21, b"\x02\x28"), 0.0, "alert handshake_failure"),
        (SERVER_HELLO + record(22, b"\x0e\x00\x00\x00"), 0.0, "sent no certificate"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", 0.0, "not a TLS handshake record"),
        (SERVER_HELLO, 5.0, "did not arrive in time"),
    ],
    ids=["huge-announced", "alert", "no-certificate", "not-tls", "silent"],
)
def test_the_reader_is_bounded_against_hostile_answers(answer: bytes, linger: float, message: str) -> None:
    with serving(hostile(answer, linger)) as port:
        started = time.monotonic()
        with pytest.raises(BigCertificateError, match=message) as error:
            read_certificates(ADDRESS, port, HOST, timeout=1)
        assert time.monotonic() - started < 3
    if "not read" in message:
        assert error.value.message_bytes == 10 * 2**20


def test_nothing_listening_is_an_error_not_a_hang() -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind((ADDRESS, 0))
        port = probe_socket.getsockname()[1]
    with pytest.raises(BigCertificateError, match="refused"):
        read_certificates(ADDRESS, port, None, timeout=1)
