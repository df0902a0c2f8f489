"""The portal lab's servers really behave as their cases say (checked with Python's ssl, no sslyze)."""

from __future__ import annotations

import contextlib
import html
import ipaddress
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from soc.lab import CASE_NAMES, LabCase, LabError, PortalLab
from soc.lab.cases import ATTRIBUTE_PAYLOAD, HOSTILE_SERVER, SCRIPT_PAYLOAD, slot_address

pytestmark = [
    pytest.mark.lab,
    pytest.mark.filterwarnings(r"ignore:ssl\.TLSVersion\.TLSv1:DeprecationWarning"),
]

LEGACY_CLIENT_CIPHERS = "DEFAULT@SECLEVEL=0"


def trusting_context(lab: PortalLab, extra_pem: str | None = None) -> ssl.SSLContext:
    """A verifying client context that trusts the lab root (and `extra_pem`)."""
    context = ssl.create_default_context(cafile=str(lab.trust_store_path))
    if extra_pem is not None:
        context.load_verify_locations(cadata=extra_pem)
    return context


def lenient_context(
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1,
    ciphers: str = LEGACY_CLIENT_CIPHERS,
) -> ssl.SSLContext:
    """A non-verifying client context that accepts legacy protocols, keys and suites."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(ciphers)
    context.minimum_version = minimum
    context.maximum_version = maximum
    return context


@contextmanager
def tls_to(case: LabCase, context: ssl.SSLContext, timeout: float = 5.0) -> Iterator[ssl.SSLSocket]:
    """A completed TLS connection to a lab case, SNI set to its host."""
    with (
        socket.create_connection((case.address, case.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=case.host) as tls,
    ):
        yield tls


def peer_cert(case: LabCase) -> x509.Certificate:
    """The leaf a case presents (fetched without verification)."""
    with tls_to(case, lenient_context()) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def verify_error(case: LabCase, context: ssl.SSLContext) -> int:
    """The OpenSSL verify code that makes a verifying handshake with `case` fail."""
    with pytest.raises(ssl.SSLCertVerificationError) as info, tls_to(case, context):
        pass
    return info.value.verify_code


def sent_chain(tls: ssl.SSLSocket) -> list[bytes] | None:
    """DER certificates the server sent, when this Python can tell (public on 3.13+)."""
    internal = getattr(tls, "_sslobj", None)
    getter = getattr(tls, "get_unverified_chain", None) or getattr(internal, "get_unverified_chain", None)
    if getter is None:
        return None
    return [cert if isinstance(cert, bytes) else ssl.PEM_cert_to_DER_cert(cert.public_bytes()) for cert in getter()]


def http_get(tls: ssl.SSLSocket, host: str) -> bytes:
    """Send a GET / and read the whole answer (bounded)."""
    tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    for _ in range(32):
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def san_names(cert: x509.Certificate) -> list[str]:
    """dNSNames of a certificate's SAN."""
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_every_case_runs_on_its_own_loopback_address(lab: PortalLab) -> None:
    assert [case.name for case in lab.cases] == list(CASE_NAMES)
    addresses = [case.address for case in lab.cases]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(address).is_loopback for address in addresses)
    assert lab.case("good").address == lab.cases[0].address and lab.cases[0].address.endswith(".1")
    assert lab.case("expired").url == f"https://expired.lab.soc.test:{lab.case('expired').port}/"


def test_inventory_lists_every_case(lab: PortalLab) -> None:
    inventory = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    assert inventory["agencies"] == [{"id": "lab", "name": "Phòng thí nghiệm cổng thông tin (lab)"}]
    portals = inventory["portals"]
    assert [portal["url"] for portal in portals] == [case.url for case in lab.cases]
    assert [portal["address"] for portal in portals] == [case.address for case in lab.cases]
    assert [portal["name"] for portal in portals] == [case.description for case in lab.cases]
    assert {portal["agency"] for portal in portals} == {"lab"}
    settings = inventory["settings"]
    assert settings["trust_stores"] == [str(lab.trust_store_path.resolve())]
    assert lab.trust_store_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert settings["expiry_warning_days"] == 30
    assert settings["allowed_networks"] == ["127.0.0.0/8"]


def test_good_handshakes_tls13_with_the_right_certificate(lab: PortalLab) -> None:
    good = lab.case("good")
    with tls_to(good, trusting_context(lab)) as tls:
        assert tls.version() == "TLSv1.3"
        chain = sent_chain(tls)
        answer = http_get(tls, good.host)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close" in answer
    assert b"<title>" in answer and answer.endswith(b"</html>")
    cert = peer_cert(good)
    assert san_names(cert) == ["good.lab.soc.test"]
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    if chain is not None:
        assert len(chain) == 2


def test_good_refuses_tls11(lab: PortalLab) -> None:
    legacy = lenient_context(maximum=ssl.TLSVersion.TLSv1_1)
    with pytest.raises(ssl.SSLError), tls_to(lab.case("good"), legacy):
        pass


def test_expired_and_expiring_soon_validity(lab: PortalLab) -> None:
    now = datetime.now(UTC)
    assert peer_cert(lab.case("expired")).not_valid_after_utc < now
    assert verify_error(lab.case("expired"), trusting_context(lab)) == 10
    expiring = peer_cert(lab.case("expiring_soon")).not_valid_after_utc
    assert now + timedelta(days=9) < expiring < now + timedelta(days=11)


def test_certificate_trust_failures(lab: PortalLab) -> None:
    assert verify_error(lab.case("wrong_host"), trusting_context(lab)) == 62
    assert san_names(peer_cert(lab.case("wrong_host"))) == ["other.lab.soc.test"]
    self_signed = peer_cert(lab.case("self_signed"))
    assert self_signed.issuer == self_signed.subject
    assert verify_error(lab.case("self_signed"), trusting_context(lab)) == 18
    untrusted = peer_cert(lab.case("untrusted_root"))
    assert untrusted.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Untrusted Lab Root"
    assert verify_error(lab.case("untrusted_root"), trusting_context(lab)) == 19


def test_incomplete_chain_sends_the_leaf_only(lab: PortalLab) -> None:
    with tls_to(lab.case("incomplete_chain"), lenient_context()) as tls:
        chain = sent_chain(tls)
    if chain is None:
        pytest.skip("this Python cannot list the certificates the server sent")
    assert len(chain) == 1


def test_incomplete_chain_completes_with_the_aia_intermediate(lab: PortalLab) -> None:
    case = lab.case("incomplete_chain")
    assert verify_error(case, trusting_context(lab)) == 20
    aia = peer_cert(case).extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]
    assert urls == [lab.aia_url]
    assert ipaddress.ip_address(str(urllib.parse.urlsplit(urls[0]).hostname)).is_loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urls[0], timeout=5) as response:
        assert response.headers["Content-Type"] == "application/pkix-cert"
        intermediate = x509.load_der_x509_certificate(response.read())
    pem = intermediate.public_bytes(serialization.Encoding.PEM).decode()
    with tls_to(case, trusting_context(lab, extra_pem=pem)) as tls:
        assert tls.version() == "TLSv1.3"
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(urls[0].replace("issuing-ca.cer", "other"), timeout=5)
    assert info.value.code == 404
    info.value.close()


def test_weak_key_and_weak_signature(lab: PortalLab) -> None:
    weak_key = peer_cert(lab.case("rsa1024")).public_key()
    assert isinstance(weak_key, rsa.RSAPublicKey) and weak_key.key_size == 1024
    sha1 = peer_cert(lab.case("sha1_leaf"))
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)
    verifying_legacy = trusting_context(lab)
    verifying_legacy.set_ciphers(LEGACY_CLIENT_CIPHERS)
    with tls_to(lab.case("sha1_leaf"), verifying_legacy) as tls:
        assert tls.version() == "TLSv1.3"
    md5 = peer_cert(lab.case("md5_leaf"))
    assert isinstance(md5.signature_hash_algorithm, hashes.MD5)
    assert md5.issuer == peer_cert(lab.case("good")).issuer  # the trusted issuing CA signed it


def test_many_sans_and_a_certificate_too_large_for_clients(lab: PortalLab) -> None:
    many = peer_cert(lab.case("many_sans")).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    names = many.value.get_values_for_type(x509.DNSName)
    assert len(names) == 500 and names[-1] == lab.case("many_sans").host
    with pytest.raises(ssl.SSLError, match="EXCESSIVE_MESSAGE_SIZE"), tls_to(lab.case("cert_too_large"),
                                                                             lenient_context()):
        pass  # Python's (OpenSSL's) client refuses a Certificate message over 100 KiB, as sslyze's does


def test_hostile_text_carries_its_payloads_in_title_server_and_subject(lab: PortalLab) -> None:
    case = lab.case("hostile_text")
    cert = peer_cert(case)
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == SCRIPT_PAYLOAD
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == ATTRIBUTE_PAYLOAD
    assert cert.issuer == cert.subject
    with tls_to(case, lenient_context()) as tls:
        answer = http_get(tls, case.host)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert f"Server: {HOSTILE_SERVER}".encode() in head.split(b"\r\n")
    title = html.escape(SCRIPT_PAYLOAD + ATTRIBUTE_PAYLOAD)
    assert f"<title>{title}</title>".encode() in body  # the title's text is the payload itself


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_legacy_tls_accepts_old_protocols(lab: PortalLab, version: ssl.TLSVersion) -> None:
    with tls_to(lab.case("legacy_tls"), lenient_context(minimum=version, maximum=version)) as tls:
        assert tls.version() == version.name.replace("_", ".")


def test_no_tls13_stops_at_tls12(lab: PortalLab) -> None:
    with tls_to(lab.case("no_tls13"), trusting_context(lab)) as tls:
        assert tls.version() == "TLSv1.2"
    tls13_only = lenient_context(minimum=ssl.TLSVersion.TLSv1_3)
    with pytest.raises(ssl.SSLError), tls_to(lab.case("no_tls13"), tls13_only):
        pass


@pytest.mark.parametrize("suite", ["NULL-SHA256", "AECDH-AES128-SHA", "AES128-GCM-SHA256"])
def test_null_anon_static_rsa_suites(lab: PortalLab, suite: str) -> None:
    client = lenient_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers=f"{suite}:@SECLEVEL=0")
    with tls_to(lab.case("null_anon_static_rsa"), client) as tls:
        assert (tls.cipher() or ('',))[0] == suite


def test_dhe1024_negotiates_a_1024_bit_dhe_suite(lab: PortalLab) -> None:
    suite = "DHE-RSA-AES128-GCM-SHA256"
    client = lenient_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers=f"{suite}:@SECLEVEL=0")
    with tls_to(lab.case("dhe1024"), client) as tls:
        assert (tls.cipher() or ('',))[0] == suite
    strict = lenient_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers=suite)
    with pytest.raises(ssl.SSLError, match="dh key too small"), tls_to(lab.case("dhe1024"), strict):
        pass


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("refused", ConnectionRefusedError),
        ("silent", TimeoutError),
        ("garbage", ssl.SSLError),
        ("reset", OSError),
    ],
)
def test_unreachable_cases_fail_fast(lab: PortalLab, name: str, error: type[OSError]) -> None:
    case = lab.case(name)
    assert case.expected == {"tls.unreachable", "http.unreachable"}
    started = time.monotonic()
    with pytest.raises(error), tls_to(case, lenient_context(), timeout=1.0):
        pass
    assert time.monotonic() - started < 2.0


def test_garbage_sends_an_ssh_banner(lab: PortalLab) -> None:
    case = lab.case("garbage")
    with socket.create_connection((case.address, case.port), timeout=2) as raw:
        assert raw.recv(29) == b"SSH-2.0-OpenSSH_9.2 not tls\r\n"


def test_handshake_failures_are_silent(lab: PortalLab, capfd: pytest.CaptureFixture[str]) -> None:
    good = lab.case("good")
    for _ in range(5):
        with pytest.raises(ssl.SSLError), tls_to(good, lenient_context(maximum=ssl.TLSVersion.TLSv1_1)):
            pass
        with socket.create_connection((good.address, good.port), timeout=2) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                raw.recv(64)
    time.sleep(0.2)
    assert capfd.readouterr().err == ""


def lab_threads() -> list[threading.Thread]:
    """Threads started by a lab that are still running."""
    return [thread for thread in threading.enumerate() if thread.name.startswith("lab-")]


def test_lab_stops_quickly_with_open_connections(tmp_path: Path) -> None:
    before = set(lab_threads())
    with PortalLab(tmp_path, cases=["good", "silent"], base_address="127.0.12.") as small:
        silent, good = small.case("silent"), small.case("good")
        idle = [socket.create_connection((case.address, case.port), timeout=2) for case in (silent, good)]
        time.sleep(0.2)
        started = time.monotonic()
    assert time.monotonic() - started < 3.0
    assert set(lab_threads()) <= before
    for sock in idle:
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((good.address, good.port), timeout=1).close()


def test_replicas_get_distinct_addresses_and_hosts(tmp_path: Path) -> None:
    with PortalLab(tmp_path, base_address="127.0.13.", replicas=3) as big:
        assert len(big.cases) == 3 * len(CASE_NAMES)
        assert len({case.address for case in big.cases}) == len(big.cases)
        assert len({case.host for case in big.cases}) == len(big.cases)
        third_good = next(case for case in big.cases if case.host == "good-3.lab.soc.test")
        with tls_to(third_good, trusting_context(big)) as tls:
            assert tls.version() == "TLSv1.3"
        inventory = yaml.safe_load(big.inventory_path.read_text(encoding="utf-8"))
        assert len(inventory["portals"]) == len(big.cases)


def test_fixed_port_is_shared_and_conflicts_are_named(tmp_path: Path) -> None:
    with socket.create_server(("127.0.14.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        with pytest.raises(LabError, match=f"127.0.14.1:{port}"):
            PortalLab(tmp_path / "a", port=port, base_address="127.0.14.", cases=["good"]).start()
    with PortalLab(tmp_path / "b", port=port, base_address="127.0.14.", cases=["good", "refused"]) as fixed:
        assert {case.port for case in fixed.cases} == {port}
        with tls_to(fixed.case("good"), trusting_context(fixed)) as tls:
            assert tls.version() == "TLSv1.3"


def test_addresses_spread_over_loopback_blocks_only() -> None:
    assert slot_address("127.0.10.", 1) == "127.0.10.1"
    assert slot_address("127.0.10.", 249) == "127.0.10.249"
    assert slot_address("127.0.10.", 250) == "127.0.11.1"
    with pytest.raises(ValueError, match="loopback"):
        PortalLab(Path("unused"), base_address="10.0.0.")


def _download(url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[str, bytes]:
    """GET (or POST `body`) a lab URL without any proxy; (Content-Type, body)."""
    assert ipaddress.ip_address(str(urllib.parse.urlsplit(url).hostname)).is_loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if content_type else {})
    with opener.open(request, timeout=5) as response:
        return response.headers["Content-Type"], response.read()


def test_the_lab_ca_publishes_a_real_crl_listing_the_revoked_case_only(lab: PortalLab) -> None:
    good, revoked = peer_cert(lab.case("good")), peer_cert(lab.case("revoked"))
    points = revoked.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    [url] = [name.value for point in points for name in point.full_name or []]
    assert url.endswith("/crl/issuing-ca.crl")
    assert good.extensions.get_extension_for_class(x509.CRLDistributionPoints).value == points
    content_type, der = _download(url)
    crl = x509.load_der_x509_crl(der)
    _, issuer_der = _download(lab.aia_url)
    assert content_type == "application/pkix-crl"
    assert crl.is_signature_valid(x509.load_der_x509_certificate(issuer_der).public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc is not None and crl.next_update_utc > datetime.now(UTC)
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(good.serial_number) is None


def test_the_lab_ocsp_responder_says_revoked_for_the_revoked_ocsp_case(lab: PortalLab) -> None:
    leaf = peer_cert(lab.case("revoked_ocsp"))
    assert not [e for e in leaf.extensions if isinstance(e.value, x509.CRLDistributionPoints)]
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    [url] = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
    issuer = x509.load_der_x509_certificate(_download(lab.aia_url)[1])
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    content_type, der = _download(url, request.public_bytes(serialization.Encoding.DER), "application/ocsp-request")
    response = ocsp.load_der_ocsp_response(der)
    assert content_type == "application/ocsp-response"
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED and response.serial_number == leaf.serial_number
