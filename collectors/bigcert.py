"""Reading a certificate message larger than TLS clients accept.

OpenSSL (Python's `ssl`, sslyze's nassl) and BoringSSL (Chrome, Android) refuse a Certificate
message over 100 KiB (`max_cert_list`), and neither Python nor nassl can raise that limit: such a
server cannot be scanned at all. Up to TLS 1.2 the Certificate message travels in clear, so this
module lets OpenSSL write a TLS 1.2 ClientHello into a memory BIO, sends it, and reads the
server's answer itself up to the end of the Certificate message. Only the framing is read here
(record, handshake message, certificate list); every certificate is parsed by `cryptography`.
Bounded in bytes, certificates, socket reads and time.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field

from cryptography import x509

CLIENT_LIMIT_BYTES = 100 * 1024
"""OpenSSL's and BoringSSL's default max_cert_list (SSL_MAX_CERT_LIST_DEFAULT)."""
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest Certificate message read (the protocol allows 16 MiB); a larger one is measured, not read."""
MAX_CERTIFICATES = 64
MAX_RECORD_BYTES = 2**14 + 2048
"""TLSCiphertext.length bound (RFC 5246 §6.2.3)."""
MAX_READS = 10_000
MAX_BEFORE_CERTIFICATE = 64 * 1024
"""Bytes of handshake messages accepted before the Certificate message (ServerHello and its extensions)."""

HANDSHAKE, ALERT = 22, 21
SERVER_HELLO, CERTIFICATE, SERVER_KEY_EXCHANGE, SERVER_HELLO_DONE = 2, 11, 12, 14
VERSIONS = {0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2"}
ALERTS = {40: "handshake_failure", 47: "illegal_parameter", 70: "protocol_version", 71: "insufficient_security",
          80: "internal_error", 112: "unrecognized_name"}


class BigCertificateError(Exception):
    """The certificate could not be read; `message_bytes` is its size when the header was seen."""

    def __init__(self, message: str, message_bytes: int | None = None) -> None:
        super().__init__(message)
        self.message_bytes = message_bytes


@dataclass(frozen=True)
class ServerCertificates:
    """What the server sent up to its Certificate message, in a TLS ≤ 1.2 handshake."""

    version: str | None
    """Protocol of the ServerHello, e.g. 'TLSv1.2'."""
    message_bytes: int
    """Size of the Certificate handshake message body."""
    chain: list[x509.Certificate] = field(default_factory=list)
    """The certificates, leaf first (at most MAX_CERTIFICATES)."""
    total_certificates: int = 0


def client_hello(server_name: str | None) -> bytes:
    """The ClientHello OpenSSL writes for a TLS ≤ 1.2 handshake (every suite but anonymous ones)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ALL:!aNULL:@SECLEVEL=0")
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the ServerHello, which is ours to read
        tls.do_handshake()
    return outgoing.read()


class _Reader:
    """Reassembles handshake messages from the records of one connection (bounded)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline
        self._raw = bytearray()
        self._handshake = bytearray()
        self._reads = 0

    def _receive(self) -> None:
        remaining = self._deadline - time.monotonic()
        self._reads += 1
        if remaining <= 0 or self._reads > MAX_READS:
            raise BigCertificateError("the server's answer did not arrive in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError as exc:
            raise BigCertificateError("the server's answer did not arrive in time") from exc
        if not chunk:
            raise BigCertificateError("the server closed the connection during the handshake")
        self._raw += chunk

    def _record(self) -> None:
        while len(self._raw) < 5:
            self._receive()
        kind, length = self._raw[0], int.from_bytes(self._raw[3:5], "big")
        if length > MAX_RECORD_BYTES or kind not in (HANDSHAKE, ALERT):
            raise BigCertificateError(f"not a TLS handshake record (type {kind}, {length} bytes)")
        while len(self._raw) < 5 + length:
            self._receive()
        fragment = bytes(self._raw[5 : 5 + length])
        del self._raw[: 5 + length]
        if kind == ALERT:
            code = fragment[1] if len(fragment) > 1 else -1
            raise BigCertificateError(f"the server refused a TLS 1.2 handshake (alert {ALERTS.get(code, code)})")
        self._handshake += fragment

    def header(self) -> tuple[int, int]:
        """(type, length) of the next handshake message, reading records as needed."""
        while len(self._handshake) < 4:
            self._record()
        return self._handshake[0], int.from_bytes(self._handshake[1:4], "big")

    def body(self, length: int) -> bytes:
        """The body of the next handshake message (whose header was just read)."""
        while len(self._handshake) < 4 + length:
            self._record()
        body = bytes(self._handshake[4 : 4 + length])
        del self._handshake[: 4 + length]
        return body


def _certificates(body: bytes) -> tuple[list[x509.Certificate], int]:
    total = int.from_bytes(body[:3], "big")
    if total != len(body) - 3:
        raise BigCertificateError("malformed Certificate message (list length)", len(body))
    chain: list[x509.Certificate] = []
    offset, count = 3, 0
    while offset < len(body):
        size = int.from_bytes(body[offset : offset + 3], "big")
        der = body[offset + 3 : offset + 3 + size]
        if len(der) != size or size == 0:
            raise BigCertificateError("malformed Certificate message (entry length)", len(body))
        count += 1
        if len(chain) < MAX_CERTIFICATES:
            try:
                chain.append(x509.load_der_x509_certificate(der))
            except ValueError as exc:
                raise BigCertificateError(f"certificate #{count} cannot be parsed: {exc}", len(body)) from exc
        offset += 3 + size
    return chain, count


def read_certificates(address: str, port: int, server_name: str | None, timeout: float,
                      deadline: float | None = None) -> ServerCertificates:
    """Handshake up to the server's Certificate message (TLS ≤ 1.2) and return its certificates.

    The whole exchange ends by `timeout` seconds from now, or by `deadline` (time.monotonic) if sooner:
    each read waits only for what is left, so a server trickling bytes is cut too.
    BigCertificateError when the server refuses TLS ≤ 1.2, sends no certificate, answers out of
    protocol or too slowly, or sends more than MAX_MESSAGE_BYTES (then the size is known).
    """
    own = time.monotonic() + timeout
    deadline = own if deadline is None else min(own, deadline)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise BigCertificateError("the server's answer did not arrive in time")
    version: str | None = None
    seen = 0
    try:
        with socket.create_connection((address, port), timeout=remaining) as sock:
            sock.sendall(client_hello(server_name))
            reader = _Reader(sock, deadline)
            while True:
                kind, length = reader.header()
                if kind == CERTIFICATE:
                    if length > MAX_MESSAGE_BYTES:
                        raise BigCertificateError(f"Certificate message of {length} bytes: not read", length)
                    chain, count = _certificates(reader.body(length))
                    return ServerCertificates(version, length, chain, count)
                if kind in (SERVER_KEY_EXCHANGE, SERVER_HELLO_DONE):
                    raise BigCertificateError("the server sent no certificate in a TLS 1.2 handshake")
                seen += 4 + length
                if seen > MAX_BEFORE_CERTIFICATE:
                    raise BigCertificateError("no Certificate message in the first 64 KiB of the handshake")
                body = reader.body(length)
                if kind == SERVER_HELLO and len(body) >= 2:
                    version = VERSIONS.get(int.from_bytes(body[:2], "big"))
    except OSError as exc:
        raise BigCertificateError(f"{type(exc).__name__}: {exc}") from exc
