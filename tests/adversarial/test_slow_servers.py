"""Slow and silent hosts (issue 14, item 1): every exchange ends by its deadline, whatever trickles in,
and one slow portal delays no other portal's results.

Real servers on loopback — plain TCP, and TLS through `ssl.MemoryBIO` so that the timing of every byte
the server sends is the test's — with PKI generated at run time. Each server records when each client
connection opened and when the client went away, so a test asserts what the hostile host cost.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from checks import evaluate_tls
from checks.http import evaluate_http
from collectors.bigcert import BigCertificateError, read_certificates
from collectors.http import HttpCollector, HttpScanConfig, HttpTarget
from collectors.registry import TrustLabelRegistry
from collectors.tls import TlsCollector, TlsScanConfig, TlsTarget
from soc.core.clock import FixedClock
from soc.core.observations import TlsObservation, Unreachable
from soc.core.settings import Settings
from soc.inventory import Inventory, Portal, parse_inventory
from soc.scan.pipeline import PortalResult, run_scan
from soc.store import Backend

pytestmark = pytest.mark.lab  # starts real servers on loopback

BASE = "127.0.147."
LOOPBACK = [ip_network("127.0.0.0/8")]
SLACK = 1.5
"""Seconds allowed over a deadline for scheduling on a loaded two-core machine."""
DRIP = 1.0
"""Seconds between two bytes of a trickling server (one byte a second)."""
IDLE_LIMIT = 60.0
"""A test server gives up on a client after this long (bounds the servers' threads, far above every bound tested)."""
HOMEPAGE = b"<!doctype html><html><head><title>ok</title></head><body>ok</body></html>"


def http_response(body: bytes = HOMEPAGE, length: int | None = None) -> tuple[bytes, bytes]:
    """(head, body) of an HTTP/1.1 answer; `length` overrides Content-Length (a body that is still to come)."""
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: "
            f"{len(body) if length is None else length}\r\nConnection: close\r\n\r\n").encode()
    return head, body


@dataclass
class Behaviour:
    """What a test server does with each connection."""

    tls: ssl.SSLContext | None = None
    handshake_drip: float | None = None
    """Send the TLS handshake one byte per this many seconds (None: at once)."""
    normal_first: int = 0
    """Connections served normally (no drip at all) before the dripping starts: the probe's, say."""
    head: bytes | None = None
    """Answer to a request (None: stay silent once the request is in)."""
    body: bytes = b""
    drip_from: int | None = None
    """Offset in head + body from which the answer is sent one byte per DRIP seconds (None: all at once)."""


@dataclass
class Connection:
    opened: float
    left: float | None = None

    def duration(self) -> float:
        return (self.left if self.left is not None else time.monotonic()) - self.opened


class _Refuse(Exception):
    """The server closes this connection at once (a hello it does not speak)."""


class SlowServer:
    """A loopback server acting out a `Behaviour`, one thread per connection, every wait bounded."""

    def __init__(self, address: str, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.address = address
        self.connections: list[Connection] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server((address, 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, name="slow-accept", daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://{self.address}:{self.port}{path}"

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._listener.close()

    def longest(self) -> float:
        """The longest any client kept a connection open."""
        return max((c.duration() for c in self.connections), default=0.0)

    def all_left(self) -> bool:
        return all(c.left is not None for c in self.connections)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            record = Connection(time.monotonic())
            index = len(self.connections)
            self.connections.append(record)
            threading.Thread(target=self._serve, args=(conn, index, record), name="slow-conn", daemon=True).start()

    def _serve(self, conn: socket.socket, index: int, record: Connection) -> None:
        try:
            conn.setblocking(True)
            if self.behaviour.tls is not None:
                self._serve_tls(conn, index)
            else:
                self._serve_plain(conn, index)
            self._wait_until_client_leaves(conn, lambda _data: None)
        except (OSError, _Refuse):
            pass
        finally:
            record.left = time.monotonic()
            conn.close()

    # --- waiting for the client, bounded --------------------------------------------------------------------

    def _receive(self, conn: socket.socket, wait: float) -> bytes | None:
        """Bytes from the client within `wait` s; b'' if it left (or the test ends); None if it sent nothing."""
        until = time.monotonic() + wait
        while not self._stopping.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([conn], [], [], min(remaining, 0.05))
            if readable:
                try:
                    return conn.recv(65536)
                except OSError:
                    return b""
        return b""

    def _wait_until_client_leaves(self, conn: socket.socket, on_data: Callable[[bytes], object]) -> None:
        until = time.monotonic() + IDLE_LIMIT
        while time.monotonic() < until:
            data = self._receive(conn, 0.5)
            if data == b"":
                return
            if data:
                on_data(data)

    def _send(self, conn: socket.socket, data: bytes, drip: float | None, on_data: Callable[[bytes], object]) -> bool:
        """Send `data` (byte by byte every `drip` s if set); False once the client has left."""
        if drip is None:
            conn.sendall(data)
            return True
        for i in range(len(data)):
            conn.sendall(data[i : i + 1])
            until = time.monotonic() + drip
            while (remaining := until - time.monotonic()) > 0:
                received = self._receive(conn, remaining)
                if received == b"":
                    return False
                if received:
                    on_data(received)
        return True

    # --- plain TCP ------------------------------------------------------------------------------------------

    def _serve_plain(self, conn: socket.socket, index: int) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            data = self._receive(conn, IDLE_LIMIT)
            if not data:
                return
            request += data
        behaviour = self.behaviour
        if behaviour.head is None:
            return  # silent: the caller waits for the client to give up
        answer = behaviour.head + behaviour.body
        cut = len(answer) if behaviour.drip_from is None else behaviour.drip_from
        if self._send(conn, answer[:cut], None, lambda _d: None):
            self._send(conn, answer[cut:], DRIP, lambda _d: None)

    # --- TLS through memory BIOs, so the server decides when each byte leaves ---------------------------------

    def _serve_tls(self, conn: socket.socket, index: int) -> None:
        behaviour = self.behaviour
        assert behaviour.tls is not None
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = behaviour.tls.wrap_bio(incoming, outgoing, server_side=True)
        dripping = index >= behaviour.normal_first
        handshake_drip = behaviour.handshake_drip if dripping else None

        def flush(drip: float | None = None) -> bool:
            return self._send(conn, outgoing.read(), drip, incoming.write)

        first = True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not flush(handshake_drip):
                    return
                data = self._receive(conn, IDLE_LIMIT)
                if not data:
                    return
                if first and data[0] != 22:  # an SSLv2 hello: closed at once, as modern servers do
                    raise _Refuse from None
                first = False
                incoming.write(data)
            except ssl.SSLError:
                flush()  # the alert
                raise _Refuse from None
        if not flush(handshake_drip):
            return
        request = b""
        while b"\r\n\r\n" not in request:  # sslyze sends no request: this serves it until it leaves
            try:
                request += tls.read(65536)
            except ssl.SSLWantReadError:
                if not flush():
                    return
                data = self._receive(conn, IDLE_LIMIT)
                if not data:
                    return
                incoming.write(data)
            except ssl.SSLError:
                return
        if behaviour.head is None:
            return
        answer = behaviour.head + behaviour.body
        cut = len(answer) if behaviour.drip_from is None or not dripping else behaviour.drip_from
        tls.write(answer[:cut])
        if not flush():
            return
        for i in range(cut, len(answer)):  # one record per byte: the client decrypts each as it comes
            tls.write(answer[i : i + 1])
            if not flush(None) or self._receive(conn, DRIP) == b"":
                return


@pytest.fixture
def servers() -> Iterator[Callable[[Behaviour], SlowServer]]:
    """Start test servers on 127.0.147.x (one address each); all stopped at the end."""
    started: list[SlowServer] = []

    def start(behaviour: Behaviour) -> SlowServer:
        server = SlowServer(f"{BASE}{len(started) + 1}", behaviour)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- PKI, made at run time ------------------------------------------------------------------------------------


@dataclass
class Pki:
    """A root (the trust anchor), an intermediate under it, and server contexts for leaves."""

    directory: Path
    root_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    inter_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        self.root = self._certificate("Slow Lab Root", self.root_key, "Slow Lab Root", self.root_key, ca=True)
        self.inter = self._certificate("Slow Lab Issuing CA", self.inter_key, "Slow Lab Root", self.root_key, ca=True)
        self.root_pem = self.directory / "root.pem"
        self.root_pem.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))

    def _certificate(self, subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                     issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False, host: str | None = None,
                     aia_url: str | None = None) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if host is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        if aia_url is not None:
            builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_url))]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def server_context(self, host: str, aia_url: str | None = None) -> ssl.SSLContext:
        """A server context for `host`: a leaf from the root (sent alone, anchored), or from the intermediate
        with `aia_url` as caIssuers (sent alone: the chain is incomplete, AIA must complete it)."""
        key = ec.generate_private_key(ec.SECP256R1())
        if aia_url is None:
            leaf = self._certificate(host, key, "Slow Lab Root", self.root_key, host=host)
        else:
            leaf = self._certificate(host, key, "Slow Lab Issuing CA", self.inter_key, host=host, aia_url=aia_url)
        cert_path, key_path = self.directory / f"{host}.pem", self.directory / f"{host}.key"
        cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        key_path.unlink()  # loaded: no private key left on disk
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("slow-pki"))


def tls_collector(pki: Pki, **knobs: float) -> TlsCollector:
    return TlsCollector(TlsScanConfig(trust_stores=[pki.root_pem], allowed_networks=LOOPBACK, **knobs))  # type: ignore[arg-type]


def tls_target(server: SlowServer, host: str) -> TlsTarget:
    return TlsTarget(f"https://{host}:{server.port}/", host, server.port, server.address)


def timed(work: Callable[[], object]) -> float:
    started = time.monotonic()
    work()
    return time.monotonic() - started


# --- HTTP: headers, body, silence -------------------------------------------------------------------------------


HTTP_DEADLINE = 2.0


def http_collector(**knobs: float) -> HttpCollector:
    config = HttpScanConfig(allowed_networks=LOOPBACK, timeout=10, request_deadline=HTTP_DEADLINE, **knobs)  # type: ignore[arg-type]
    return HttpCollector(config)


@pytest.mark.parametrize(
    ("case", "behaviour"),
    [
        ("headers dripped", Behaviour(head=http_response()[0], body=HOMEPAGE, drip_from=0)),
        ("body dripped", Behaviour(head=http_response(length=10_000)[0], body=b"x" * 10_000,
                                   drip_from=len(http_response(length=10_000)[0]))),
        ("silent", Behaviour(head=None)),
    ],
)
def test_a_trickling_or_silent_http_server_costs_one_deadline_per_request(
    servers: Callable[[Behaviour], SlowServer], pki: Pki, case: str, behaviour: Behaviour
) -> None:
    """One byte a second (or nothing) against a 10 s read timeout: each request is cut at its 2 s deadline."""
    host = "slow-http.lab.test"
    plain = servers(behaviour)
    https = servers(Behaviour(tls=pki.server_context(host), head=behaviour.head, body=behaviour.body,
                              drip_from=behaviour.drip_from))
    target = HttpTarget(f"https://{host}:{https.port}/", host, https.address, plain.url())
    collector = http_collector()
    try:
        started = time.monotonic()
        obs = collector.observe(target)
        elapsed = time.monotonic() - started
    finally:
        collector.close()

    assert obs.redirect_error is not None and obs.redirect_error.startswith("too slow"), obs.redirect_error
    assert obs.error is not None and obs.error.startswith("too slow"), obs.error
    assert obs.security_txt_error == "not tried: the homepage timed out or was too slow"  # one deadline, not two
    assert [f.check_id for f in evaluate_http(obs)] == ["http.unreachable"]
    assert elapsed < 2 * HTTP_DEADLINE + SLACK, f"{case}: {elapsed:.1f} s"
    time.sleep(0.2)  # the servers notice the client leaving
    for server in (plain, https):
        assert server.connections and server.all_left(), f"{case}: a connection outlived the request"
        assert server.longest() < HTTP_DEADLINE + SLACK, f"{case}: a connection lasted {server.longest():.1f} s"


def test_the_portal_budget_ends_the_http_collector_whatever_the_requests(
    servers: Callable[[Behaviour], SlowServer], pki: Pki
) -> None:
    """A 3 s portal budget with 2 s requests: the redirect check takes 2 s, the homepage gets only the 1 s left."""
    host = "slow-budget.lab.test"
    plain = servers(Behaviour(head=http_response()[0], drip_from=0))
    https = servers(Behaviour(tls=pki.server_context(host), head=http_response()[0], drip_from=0))
    collector = http_collector(portal_budget=3)
    try:
        started = time.monotonic()
        obs = collector.observe(HttpTarget(f"https://{host}:{https.port}/", host, https.address, plain.url()))
        elapsed = time.monotonic() - started
    finally:
        collector.close()
    assert obs.error is not None and "portal's budget" in obs.error, obs.error
    assert 3 - 0.1 < elapsed < 3 + SLACK


def test_a_registry_page_trickled_is_cut_at_its_deadline(servers: Callable[[Behaviour], SlowServer]) -> None:
    """The trust-label registry is asked under the same kind of deadline: unverified, never stuck."""
    registry_server = servers(Behaviour(head=http_response()[0], drip_from=0))
    with TrustLabelRegistry(base_url=registry_server.url(path=""), timeout=10, deadline=HTTP_DEADLINE,
                            min_interval=0) as registry:
        started = time.monotonic()
        status = registry.lookup("stp.dongnai.gov.vn", "stpdongnaigovvn-1635823490")
        elapsed = time.monotonic() - started
    assert status.found is None and status.error is not None and "too slow" in status.error, status
    assert elapsed < HTTP_DEADLINE + SLACK


# --- TLS: a probe answered, then the handshakes trickled --------------------------------------------------------


@pytest.mark.parametrize(
    ("normal_first", "knobs", "reason"),
    [
        (1, {"connection_life": 2.0, "portal_budget": 60.0}, "still open after 2 s"),  # the probe answers
        (1, {"connection_life": 60.0, "portal_budget": 3.0}, "within the portal's 3 s budget"),
        (0, {"probe_timeout": 2.0}, "TLS handshake was not over in time"),  # the probe itself is trickled
    ],
    ids=["connection-life", "portal-budget", "probe"],
)
def test_a_tls_server_that_trickles_its_handshake_is_too_slow_within_seconds(
    servers: Callable[[Behaviour], SlowServer], pki: Pki, normal_first: int, knobs: dict[str, float], reason: str
) -> None:
    """sslyze's own timeouts are per read: trickled handshakes would hold its scan for ever. Cut from outside."""
    host = "slow-tls.lab.test"
    server = servers(Behaviour(tls=pki.server_context(host), handshake_drip=0.5, normal_first=normal_first))
    collector = tls_collector(pki, **knobs)
    try:
        started = time.monotonic()
        [obs] = list(collector.scan([tls_target(server, host)]))
        elapsed = time.monotonic() - started
    finally:
        collector.close()

    bound = min(knobs.get("connection_life", 99), knobs.get("portal_budget", 99), knobs.get("probe_timeout", 99))
    assert obs.unreachable is Unreachable.TOO_SLOW and obs.error is not None and reason in obs.error, obs.error
    assert [f.check_id for f in evaluate_tls(obs)] == ["tls.unreachable"]
    assert evaluate_tls(obs)[0].evidence.startswith("too_slow: ")
    assert elapsed < bound + 2 * SLACK, f"{elapsed:.1f} s"
    time.sleep(0.3)
    assert server.all_left(), "sslyze connections were left open after the portal was given up"
    assert server.longest() < bound + 2 * SLACK


def test_sslyze_connections_of_a_portal_out_of_time_are_refused_not_retried(
    servers: Callable[[Behaviour], SlowServer], pki: Pki
) -> None:
    """Once a portal is too slow, sslyze's remaining jobs fail at once: a handful of connections, not hundreds."""
    host = "slow-count.lab.test"
    server = servers(Behaviour(tls=pki.server_context(host), handshake_drip=0.5, normal_first=1))
    collector = tls_collector(pki, connection_life=1.5)
    try:
        [obs] = list(collector.scan([tls_target(server, host)]))
    finally:
        collector.close()
    time.sleep(1.0)
    assert obs.unreachable is Unreachable.TOO_SLOW
    assert len(server.connections) <= 1 + 5 + 5, f"{len(server.connections)} connections"  # probe + first wave(s)


# --- AIA: the caIssuers URL points at a trickling server ----------------------------------------------------------


@pytest.mark.parametrize("aia", ["trickling", "refused"])
def test_an_aia_fetch_that_fails_leaves_the_trust_verdict_unknown(
    servers: Callable[[Behaviour], SlowServer], pki: Pki, aia: str
) -> None:
    """The issuer could not be downloaded (too slow, or nothing listens): no tls.cert.untrusted, incomplete."""
    host = f"slow-aia-{aia}.lab.test"
    if aia == "trickling":
        aia_server = servers(Behaviour(head=http_response()[0], drip_from=0))
        aia_url = aia_server.url(path="/issuing-ca.cer")
    else:
        with socket.socket() as closed:
            closed.bind((f"{BASE}250", 0))
            aia_url = f"http://{BASE}250:{closed.getsockname()[1]}/issuing-ca.cer"  # nobody listens there
    server = servers(Behaviour(tls=pki.server_context(host, aia_url=aia_url)))
    collector = tls_collector(pki, aia_timeout=2.0)
    try:
        [obs] = list(collector.scan([tls_target(server, host)]))
    finally:
        collector.close()

    assert obs.unreachable is None and obs.chain and obs.trust is None
    assert obs.command_errors["aia"].startswith("trust verdict unknown"), obs.command_errors
    assert not obs.complete
    assert "tls.cert.untrusted" not in {f.check_id for f in evaluate_tls(obs)}
    if aia == "trickling":
        assert "too slow" in obs.command_errors["aia"]
        time.sleep(0.2)
        assert aia_server.all_left() and aia_server.longest() < 2.0 + SLACK


def test_an_aia_answer_that_is_final_still_says_untrusted(
    servers: Callable[[Behaviour], SlowServer], pki: Pki
) -> None:
    """A 404 is an answer (the issuer is not there): the chain is untrusted, as before."""
    host = "slow-aia-404.lab.test"
    missing = servers(Behaviour(head=b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
    server = servers(Behaviour(tls=pki.server_context(host, aia_url=missing.url(path="/issuing-ca.cer"))))
    collector = tls_collector(pki, aia_timeout=2.0)
    try:
        [obs] = list(collector.scan([tls_target(server, host)]))
    finally:
        collector.close()
    assert obs.trust is not None and not obs.trust.anchored and "aia" not in obs.command_errors
    assert "tls.cert.untrusted" in {f.check_id for f in evaluate_tls(obs)}


def test_the_oversized_certificate_reader_ends_by_its_deadline() -> None:
    """A TLS record header promising a long handshake message, then one byte a second: cut at the deadline."""
    record = bytes([22, 3, 3]) + (16000).to_bytes(2, "big") + bytes([2]) + (15996).to_bytes(3, "big")
    with dripping_server(f"{BASE}240", record) as port:
        started = time.monotonic()
        with pytest.raises(BigCertificateError, match="did not arrive in time"):
            read_certificates(f"{BASE}240", port, None, timeout=2.0)
        assert time.monotonic() - started < 2.0 + SLACK


@contextlib.contextmanager
def dripping_server(address: str, first_bytes: bytes) -> Iterator[int]:
    """A raw server answering a client's first bytes with `first_bytes`, then one more byte a second."""
    listener = socket.create_server((address, 0))
    listener.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(first_bytes)
                while not stop.wait(DRIP):
                    conn.sendall(b"\0")

    thread = threading.Thread(target=serve, name="slow-drip", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=2 * DRIP)


# --- one slow portal among many: the others are stored without waiting --------------------------------------------


SLOW = 5.0
"""Seconds the slow portals of the many-portal tests take (their deadlines): far more than a good portal."""


@dataclass
class Recorder:
    """A scan observer noting when each portal was stored."""

    started: float = field(default_factory=time.monotonic)
    done: dict[str, float] = field(default_factory=dict)
    results: dict[str, PortalResult] = field(default_factory=dict)

    def portal_event(self, portal: Portal, event: str) -> None:
        pass

    def portal_done(self, result: PortalResult) -> None:
        self.done[result.portal.url] = time.monotonic() - self.started
        self.results[result.portal.url] = result


def inventory_of(pki: Pki, portals: list[tuple[str, SlowServer, SlowServer | None]], tmp: Path) -> Inventory:
    data = {
        "agencies": [{"id": "soc", "name": "SOC thử nghiệm"}],
        "portals": [{"url": f"https://{host}:{tls.port}/", "agency": "soc", "address": tls.address,
                     **({"http_url": plain.url()} if plain is not None else {})} for host, tls, plain in portals],
        "settings": {"allowed_networks": ["127.0.0.0/8"], "trust_stores": [str(pki.root_pem)]},
    }
    return parse_inventory(data, "slow.yaml", tmp)


def test_one_slow_tls_portal_among_many_delays_no_other(
    servers: Callable[[Behaviour], SlowServer], pki: Pki, backend: Backend, clock: FixedClock, tmp_path: Path
) -> None:
    """Three good portals, one whose AIA URL trickles, one that trickles sslyze's handshakes: the good ones
    are stored first, while the slow ones are still running, and the slow ones within their bounds."""
    aia = servers(Behaviour(head=http_response()[0], drip_from=0))
    portals = [(f"good{i}.lab.test", servers(Behaviour(tls=pki.server_context(f"good{i}.lab.test"))), None)
               for i in range(3)]
    slow_aia = ("slow-aia.lab.test", servers(Behaviour(
        tls=pki.server_context("slow-aia.lab.test", aia_url=aia.url(path="/ca.cer")))), None)
    slow_tls = ("slow-tls.lab.test", servers(Behaviour(tls=pki.server_context("slow-tls.lab.test"),
                                                        handshake_drip=0.5, normal_first=1)), None)
    inventory = inventory_of(pki, [slow_aia, slow_tls, *portals], tmp_path)  # the slow ones first in the inventory
    settings = Settings(db=tmp_path / "unused.db", aia_timeout=SLOW, tls_connection_life=SLOW, tls_portal_budget=60)
    recorder = Recorder()
    report = run_scan(inventory, backend.findings, settings, clock, list(inventory.portals), ("tls",),
                      observer=recorder)

    url = {host: f"https://{host}:{tls.port}/" for host, tls, _ in [slow_aia, slow_tls, *portals]}
    good = [recorder.done[url[host]] for host, _, _ in portals]
    slow = {host: recorder.done[url[host]] for host, _, _ in (slow_aia, slow_tls)}
    assert report.run.status.value == "complete" and len(report.portals) == 5
    assert max(good) < min(slow.values()), f"good portals at {good}, slow ones at {slow}"
    assert max(good) < SLOW, "a good portal waited for a slow one's deadline"
    aia_obs, tls_obs = (recorder.results[url[host]].typed["tls"] for host in ("slow-aia.lab.test", "slow-tls.lab.test"))
    assert isinstance(aia_obs, TlsObservation) and aia_obs.trust is None and "aia" in aia_obs.command_errors
    assert isinstance(tls_obs, TlsObservation) and tls_obs.unreachable is Unreachable.TOO_SLOW
    assert all(t < SLOW + 2 * SLACK + 3 for t in slow.values()), slow  # 3 s: sslyze's scan before the AIA fetch


def test_one_slow_http_portal_holds_back_no_other_homepage_nor_label(
    servers: Callable[[Behaviour], SlowServer], pki: Pki, backend: Backend, clock: FixedClock, tmp_path: Path
) -> None:
    """--only http,label: the good portals (homepage and label) are stored while the slow homepage still trickles."""
    head, body = http_response()
    portals = [(host, servers(Behaviour(tls=pki.server_context(host), head=head, body=body)),
                servers(Behaviour(head=head, body=body))) for host in (f"web{i}.lab.test" for i in range(3))]
    slow = ("slow-web.lab.test", servers(Behaviour(tls=pki.server_context("slow-web.lab.test"), head=head, body=body,
                                                   drip_from=0)), servers(Behaviour(head=head, body=body)))
    inventory = inventory_of(pki, [slow, *portals], tmp_path)
    settings = Settings(db=tmp_path / "unused.db", http_request_deadline=SLOW, http_portal_budget=30)
    recorder = Recorder()
    run_scan(inventory, backend.findings, settings, clock, list(inventory.portals), ("http", "label"),
             observer=recorder)

    good = [recorder.done[f"https://{host}:{tls.port}/"] for host, tls, _ in portals]
    slow_done = recorder.done[f"https://{slow[0]}:{slow[1].port}/"]
    assert max(good) < SLOW <= slow_done, f"good portals at {good}, the slow one at {slow_done:.1f} s"
    assert slow_done < SLOW + SLACK
    slow_http = recorder.results[f"https://{slow[0]}:{slow[1].port}/"].typed["http"]
    assert getattr(slow_http, "error", "").startswith("too slow")
