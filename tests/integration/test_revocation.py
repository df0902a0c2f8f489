"""Revocation checking against real loopback servers: the lab CA's CRL and OCSP responder, hostile and dead ones.

Also the lifecycle end of it: an unknown status (responder down) leaves an open `tls.cert.revoked` open
while the rest of the complete TLS observation resolves as usual.
"""

from __future__ import annotations

import http.server
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from checks import evaluate_tls, make_finding
from collectors.certificates import describe
from collectors.revocation import RevocationChecker, RevocationConfig
from soc.core.models import FindingStatus
from soc.core.observations import ChainTrust, Revocation, RevocationMethod, RevocationStatus, TlsObservation
from soc.lab.pki import LabPKI, LeafSpec
from soc.lab.revocation import LabRevocation, crl_path
from soc.lab.servers import AIAServer
from soc.scan.pipeline import _envelope
from soc.store import Backend

lab = pytest.mark.lab  # the tests that start servers
LOOPBACK = [ip_network("127.0.0.0/8")]
LAB_CA_ADDRESS = "127.0.32.250"
HOSTILE_ADDRESS = "127.0.32.251"
SILENT_ADDRESS = "127.0.32.252"
DEAD_BASE = "http://127.0.32.253:9"
"""Nothing listens there: connections are refused at once."""
BUDGET = 1.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabPKI:
    return LabPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def lab_ca(pki: LabPKI) -> Iterator[AIAServer]:
    """The lab's AIA server: the issuing CA, its CRL at /crl/issuing-ca.crl and its OCSP responder."""
    server = AIAServer(LAB_CA_ADDRESS, pki.intermediate_der, pki.revocation)
    server.start()
    yield server
    server.stop(time.monotonic() + 3)


_serial = iter(range(1, 10_000))


def issue(pki: LabPKI, base: str, revoked: bool = False, crl: bool = True, ocsp: bool = False) -> x509.Certificate:
    """A leaf of the lab's issuing CA whose CRL/OCSP URLs are under `base`."""
    host = f"portal-{next(_serial)}.lab.soc.test"
    spec = LeafSpec(revoked=revoked, crl=crl, ocsp=ocsp)
    return pki.issue_leaf(spec, host, f"{base}/issuing-ca.cer", revocation_base=base).leaf


@pytest.fixture
def checker() -> Iterator[RevocationChecker]:
    checking = RevocationChecker(RevocationConfig(LOOPBACK, timeout=BUDGET, crl_max_bytes=65536))
    yield checking
    checking.close()


def check(checker: RevocationChecker, pki: LabPKI, leaf: x509.Certificate) -> Revocation:
    return checker.check(leaf, pki.intermediate.cert, None, datetime.now(UTC))


# --- the lab CA -------------------------------------------------------------------------------------------------


@lab
def test_the_lab_crl_says_good_and_revoked(pki: LabPKI, lab_ca: AIAServer, checker: RevocationChecker) -> None:
    good, revoked = issue(pki, lab_ca.base_url), issue(pki, lab_ca.base_url, revoked=True)
    url = lab_ca.base_url + crl_path("issuing-ca")
    assert check(checker, pki, good) == Revocation(status=RevocationStatus.GOOD, method=RevocationMethod.CRL, url=url)
    result = check(checker, pki, revoked)
    assert (result.status, result.method, result.url) == (RevocationStatus.REVOKED, RevocationMethod.CRL, url)
    assert result.revocation_reason == "keyCompromise" and result.revoked_at is not None


@lab
def test_the_lab_ocsp_responder_says_good_and_revoked(pki: LabPKI, lab_ca: AIAServer,
                                                      checker: RevocationChecker) -> None:
    good = issue(pki, lab_ca.base_url, crl=False, ocsp=True)
    revoked = issue(pki, lab_ca.base_url, crl=False, ocsp=True, revoked=True)
    assert check(checker, pki, good).status is RevocationStatus.GOOD
    result = check(checker, pki, revoked)
    assert (result.status, result.method) == (RevocationStatus.REVOKED, RevocationMethod.OCSP)
    assert result.url == f"{lab_ca.base_url}/ocsp/issuing-ca"


@lab
def test_a_crl_outside_the_allowed_networks_is_never_fetched(pki: LabPKI, hostile: type[_Hostile]) -> None:
    leaf = issue(pki, hostile.base)
    hostile.routes[crl_path("issuing-ca")] = pki.revocation.crl_der("issuing-ca") or b""
    refusing = RevocationChecker(RevocationConfig(allowed_networks=[], timeout=BUDGET))
    try:
        result = check(refusing, pki, leaf)
    finally:
        refusing.close()
    assert result.status is RevocationStatus.UNKNOWN and "outside the allowed addresses" in result.attempts[0]
    assert hostile.requests == 0


# --- hostile and dead sources -----------------------------------------------------------------------------------


class _Hostile(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[int] = 0
    base: ClassVar[str] = ""
    responder: ClassVar[LabRevocation | None] = None

    def do_GET(self) -> None:
        type(self).requests += 1
        self._send(self.routes.get(self.path))

    def do_POST(self) -> None:
        type(self).requests += 1
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.responder.post(self.path, body) if self.responder else None
        self._send(answer[1] if answer else None)

    def _send(self, body: bytes | None) -> None:
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[type[_Hostile]]:
    """A CRL server whose answers each test chooses (`routes`, `responder`), counting requests."""
    _Hostile.routes, _Hostile.requests, _Hostile.responder = {}, 0, None
    server = http.server.ThreadingHTTPServer((HOSTILE_ADDRESS, 0), _Hostile)
    _Hostile.base = f"http://{HOSTILE_ADDRESS}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield _Hostile
    finally:
        server.shutdown()
        server.server_close()


def signed_crl(pki: LabPKI, key_of: LabPKI, next_update: timedelta) -> bytes:
    """A CRL in the issuing CA's name, signed with `key_of`'s issuing key, valid until now + `next_update`."""
    now = datetime.now(UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(pki.intermediate.cert.subject)
               .last_update(now + next_update - timedelta(days=1)).next_update(now + next_update))
    return builder.sign(key_of.intermediate.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@lab
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (lambda pki, other: b"0" * 70_000, "CRL too large"),
        (lambda pki, other: signed_crl(pki, other, timedelta(days=1)), "CRL signature invalid"),
        (lambda pki, other: signed_crl(pki, pki, -timedelta(hours=1)), "CRL expired"),
        (lambda pki, other: b"<html>not a CRL</html>", "not a CRL"),
    ],
)
def test_an_unusable_crl_is_unknown_never_good(pki: LabPKI, hostile: type[_Hostile], checker: RevocationChecker,
                                               tmp_path: Path, body: Callable[[LabPKI, LabPKI], bytes],
                                               reason: str) -> None:
    other = LabPKI(tmp_path / "other")  # same CA names, other keys
    hostile.routes[crl_path("issuing-ca")] = body(pki, other)
    result = check(checker, pki, issue(pki, hostile.base))
    assert (result.status, result.method, result.reason) == (RevocationStatus.UNKNOWN, RevocationMethod.CRL, reason)


@lab
def test_the_crl_is_asked_before_ocsp_and_fetched_once_per_run(pki: LabPKI, hostile: type[_Hostile],
                                                               checker: RevocationChecker) -> None:
    good, revoked = issue(pki, hostile.base, ocsp=True), issue(pki, hostile.base, ocsp=True, revoked=True)
    hostile.routes[crl_path("issuing-ca")] = pki.revocation.crl_der("issuing-ca") or b""
    hostile.responder = pki.revocation
    first, second = check(checker, pki, good), check(checker, pki, revoked)
    assert (first.status, first.method) == (RevocationStatus.GOOD, RevocationMethod.CRL)
    assert (second.status, second.method) == (RevocationStatus.REVOKED, RevocationMethod.CRL)
    assert hostile.requests == 1  # one CRL download for the run, no OCSP request


@lab
def test_a_missing_crl_falls_back_to_ocsp(pki: LabPKI, hostile: type[_Hostile], checker: RevocationChecker) -> None:
    hostile.responder = pki.revocation  # the CRL path answers 404; the responder answers
    result = check(checker, pki, issue(pki, hostile.base, ocsp=True, revoked=True))
    assert (result.status, result.method) == (RevocationStatus.REVOKED, RevocationMethod.OCSP)
    assert len(result.attempts) == 1 and result.attempts[0].startswith("crl ") and "HTTP 404" in result.attempts[0]


@lab
def test_a_responder_down_is_unknown(pki: LabPKI, checker: RevocationChecker) -> None:
    result = check(checker, pki, issue(pki, DEAD_BASE, ocsp=True))
    assert (result.status, result.reason) == (RevocationStatus.UNKNOWN, "responder unreachable")
    assert [line.split(" ", 1)[0] for line in result.attempts] == ["crl", "ocsp"]


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback server that accepts connections and never answers (bounded: closed after the test)."""
    listener = socket.create_server((SILENT_ADDRESS, 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.1)
            if ready:
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{SILENT_ADDRESS}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for sock in held:
            sock.close()
        listener.close()


@lab
def test_a_silent_responder_costs_one_budget_per_portal_at_most_and_is_remembered(
    pki: LabPKI, silent: str, checker: RevocationChecker
) -> None:
    costs, results = [], []
    for _portal in range(4):
        started = time.monotonic()
        results.append(check(checker, pki, issue(pki, silent, ocsp=True)))
        costs.append(time.monotonic() - started)
    assert {r.status for r in results} == {RevocationStatus.UNKNOWN}
    assert "responder unreachable" in (results[0].reason or "")
    assert max(costs) < BUDGET + 1.0, costs  # a few seconds per portal at most, whatever the responder does
    assert sum(costs[2:]) < 0.5, costs  # both URLs are known to be down for the rest of the run


# --- the lifecycle: an outage resolves nothing -----------------------------------------------------------------


def tls_observation(leaf: x509.Certificate, revocation: Revocation) -> TlsObservation:
    return TlsObservation(portal_url="https://portal.lab.soc.test/", host="portal.lab.soc.test", port=443,
                          address="127.0.0.1", observed_at=datetime.now(UTC), chain=[describe(leaf)],
                          trust=ChainTrust(anchored=True), hostname_matches=True, revocation=revocation)


@lab
def test_a_responder_outage_leaves_an_open_revoked_finding_open(pki: LabPKI, checker: RevocationChecker,
                                                                backend: Backend) -> None:
    leaf = issue(pki, DEAD_BASE)
    url, detail = "https://portal.lab.soc.test/", describe(leaf).sha256
    store = backend.findings
    revoked = make_finding(url, "tls.cert.revoked", "revoked", detail)
    tls10 = make_finding(url, "tls.protocol.tls10", "TLSv1.0 accepted")
    first = store.begin_run("inventory.yaml", 1)
    store.record_portal(first.id, url, [], [revoked, tls10])

    outage = tls_observation(leaf, check(checker, pki, leaf))
    assert outage.revocation is not None and outage.revocation.status is RevocationStatus.UNKNOWN
    assert outage.complete and evaluate_tls(outage) == []
    second = store.begin_run("inventory.yaml", 1)
    changes = store.record_portal(second.id, url, [_envelope("tls", outage)], evaluate_tls(outage))
    assert changes.resolved == [tls10.fingerprint]  # the rest of tls.* resolves; the revoked finding does not
    assert store.observations(second.id)[0].unjudged == ["tls.cert.revoked"]
    statuses = {f.check_id: f.status for f in store.list_findings()}
    assert statuses == {"tls.cert.revoked": FindingStatus.OPEN, "tls.protocol.tls10": FindingStatus.RESOLVED}

    # The responder answers again and says good (the certificate was reinstated): now it resolves.
    answered = tls_observation(leaf, Revocation(status=RevocationStatus.GOOD, method=RevocationMethod.CRL))
    third = store.begin_run("inventory.yaml", 1)
    assert store.record_portal(third.id, url, [_envelope("tls", answered)], []).resolved == [revoked.fingerprint]
