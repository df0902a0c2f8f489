"""Collector rules that protect the scanner: AIA fetching of hostile URLs, host-name matching, probing."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from collectors.aia import AiaFetcher, AiaFetchError, parse_certificates
from collectors.certificates import describe, hostname_matches
from collectors.tls import TlsTarget, probe
from soc.core.observations import Unreachable

pytestmark = pytest.mark.lab  # starts real servers on loopback

LOOPBACK = [ip_network("127.0.0.0/8")]


def make_cert(names: list[str], common_name: str = "x") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256())


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes, dict[str, str]]]] = {}

    def do_GET(self) -> None:
        status, body, headers = self.routes.get(self.path, (404, b"", {}))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def aia_server() -> Iterator[str]:
    cert = make_cert(["ca.example"])
    _Handler.routes = {
        "/ca.cer": (200, cert.public_bytes(Encoding.DER), {}),
        "/ca.pem": (200, cert.public_bytes(Encoding.PEM), {}),
        "/big.cer": (200, b"0" * 200_000, {}),
        "/html": (200, b"<html>not a certificate</html>", {}),
        "/moved": (302, b"", {"Location": "http://127.0.0.1:1/ca.cer"}),
    }
    server = http.server.ThreadingHTTPServer(("127.0.30.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.30.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_aia_fetch_reads_der_and_pem_and_caches(aia_server: str) -> None:
    fetcher = AiaFetcher(LOOPBACK, timeout=2, max_bytes=65536)
    assert fetcher.fetch(f"{aia_server}/ca.cer")[0].subject == fetcher.fetch(f"{aia_server}/ca.pem")[0].subject
    _Handler.routes.clear()  # served from the cache from now on
    assert fetcher.fetch(f"{aia_server}/ca.cer")
    fetcher.close()


@pytest.mark.parametrize(
    ("path", "message"),
    [("/big.cer", "larger than 65536 bytes"), ("/html", "not a DER/PEM certificate"), ("/moved", "HTTP 302"),
     ("/missing", "HTTP 404")],
)
def test_aia_fetch_refuses_what_is_not_a_small_certificate(aia_server: str, path: str, message: str) -> None:
    fetcher = AiaFetcher(LOOPBACK, timeout=2, max_bytes=65536)
    with pytest.raises(AiaFetchError, match=message):
        fetcher.fetch(aia_server + path)
    fetcher.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/ca.cer",          # loopback, not allowed by default
        "http://169.254.169.254/latest/",   # link-local metadata service: refused, never contacted
        "http://[::1]/ca.cer",
    ],
)
def test_aia_fetch_refuses_non_public_addresses_unless_allowed(url: str) -> None:
    fetcher = AiaFetcher([], timeout=1, max_bytes=1024)
    with pytest.raises(AiaFetchError, match="outside the allowed addresses"):
        fetcher.fetch(url)
    fetcher.close()


@pytest.mark.parametrize("url", ["ldap://ca.example/cn=x", "https://127.0.0.1/ca.cer", "file:///etc/passwd"])
def test_aia_fetch_refuses_other_schemes(url: str) -> None:
    with pytest.raises(AiaFetchError, match="only http"):
        AiaFetcher(LOOPBACK, timeout=1, max_bytes=1024).fetch(url)


def test_parse_certificates_rejects_garbage() -> None:
    with pytest.raises(AiaFetchError):
        parse_certificates(b"\x30\x82garbage")


@pytest.mark.parametrize(
    ("names", "host", "matches"),
    [
        (["portal.dongnai.gov.vn"], "portal.dongnai.gov.vn", True),
        (["PORTAL.dongnai.gov.vn."], "portal.dongnai.gov.vn", True),
        (["*.dongnai.gov.vn"], "stp.dongnai.gov.vn", True),
        (["*.dongnai.gov.vn"], "a.stp.dongnai.gov.vn", False),
        (["*.dongnai.gov.vn"], "dongnai.gov.vn", False),
        (["*.vn"], "gov.vn", False),
        (["other.gov.vn"], "portal.dongnai.gov.vn", False),
        ([], "x", False),  # a Common Name alone is not accepted, as in browsers
    ],
)
def test_hostname_matching_follows_rfc_6125(names: list[str], host: str, matches: bool) -> None:
    assert hostname_matches(make_cert(names), host) is matches


def test_certificate_text_fields_are_bounded() -> None:
    info = describe(make_cert(["a.example"], common_name="A" * 64))
    huge = make_cert([("x" * 60 + ".") * 4 + "example"] * 300)
    assert len(describe(huge).san_dns) == 100
    assert info.key_type == "EC" and info.key_size == 256 and info.self_signed


def test_probe_classifies_a_refused_port_quickly() -> None:
    result = probe(TlsTarget("https://x.test:9/", "x.test", 9, "127.0.30.2"), timeout=2)
    assert result.unreachable is Unreachable.REFUSED


def test_sslyze_connection_limit_is_shared_by_portals_on_one_address() -> None:
    from collectors.tls import _Probe, per_server_limit

    def on(address: str) -> _Probe:
        return _Probe(TlsTarget("https://x/", "x", 443, address), address=address)

    assert per_server_limit([on("127.0.0.1"), on("127.0.0.2")], 5) == 5
    assert per_server_limit([on("127.0.0.1"), on("127.0.0.1"), on("127.0.0.2")], 5) == 2
    assert per_server_limit([on("127.0.0.1")] * 9, 5) == 1


def test_path_building_is_not_exponential_in_hostile_chains() -> None:
    """Many certificates with one subject and one key all 'issue' each other: bounded work, no anchor."""
    import time as clock

    from collectors.certificates import AnchorSet, anchoring_stores

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loop")])
    now = datetime.now(UTC)
    chain = [x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(serial).not_valid_before(now).not_valid_after(now + timedelta(days=1))
             .sign(key, hashes.SHA256()) for serial in range(1, 14)]
    started = clock.monotonic()
    assert anchoring_stores(chain, AnchorSet([])) == []
    assert clock.monotonic() - started < 5


def test_aia_failures_say_whether_they_are_transient(aia_server: str) -> None:
    fetcher = AiaFetcher(LOOPBACK, timeout=1, max_bytes=65536)
    with pytest.raises(AiaFetchError) as missing:
        fetcher.fetch(f"{aia_server}/missing")
    with pytest.raises(AiaFetchError) as refused:
        fetcher.fetch("http://127.0.30.3:9/ca.cer")  # nothing listens: a network failure
    with pytest.raises(AiaFetchError) as bad:
        fetcher.fetch("http://127.0.30.1:99999/ca.cer")  # a hostile URL: refused, never raised as ValueError
    fetcher.close()
    assert (missing.value.transient, refused.value.transient, bad.value.transient) == (False, True, False)
