"""TLS collector: sslyze's Python API over many portals at once, one `TlsObservation` per portal.

Flow: a quick reachability probe for every portal (in parallel) so that a silent, resetting or
non-TLS host costs seconds and is classified the same way every time; then one sslyze Scanner
for all reachable portals; each result is turned into an observation as soon as it arrives,
and the chain is anchored (completing it from AIA when the server omits intermediates).
"""

from __future__ import annotations

import errno
import socket
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from traceback import TracebackException
from typing import Any

from cryptography import x509

from collectors.aia import AiaFetcher, AiaFetchError
from collectors.bigcert import CLIENT_LIMIT_BYTES, BigCertificateError, ServerCertificates, read_certificates
from collectors.certificates import (
    AnchorSet,
    SignatureCheckError,
    anchor_set,
    anchoring_stores,
    ca_issuers_urls,
    describe,
    find_issuer,
    hostname_matches,
    read_extra_anchors,
)
from collectors.revocation import RevocationChecker, RevocationConfig, not_checked, unchecked_reason
from soc.core.clock import utcnow
from soc.core.net import IPNetwork
from soc.core.observations import (
    AcceptedCipher,
    ChainTrust,
    OversizedCertificate,
    Revocation,
    RevocationStatus,
    TlsObservation,
    Unreachable,
)

CIPHER_COMMANDS = {
    "ssl_2_0_cipher_suites": "SSLv2",
    "ssl_3_0_cipher_suites": "SSLv3",
    "tls_1_0_cipher_suites": "TLSv1.0",
    "tls_1_1_cipher_suites": "TLSv1.1",
    "tls_1_2_cipher_suites": "TLSv1.2",
    "tls_1_3_cipher_suites": "TLSv1.3",
}
OTHER_COMMANDS = (
    "certificate_info",
    "heartbleed",
    "robot",
    "openssl_ccs_injection",
    "tls_compression",
    "session_renegotiation",
    "tls_fallback_scsv",
)
SCAN_COMMANDS = (*CIPHER_COMMANDS, *OTHER_COMMANDS)
"""The sslyze scan commands we run (their attribute names in AllScanCommandsAttempts)."""

NOT_TLS_REASONS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                   "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST"}
MAX_ERROR = 300
RESET_ERRNOS = {errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE, errno.ECONNABORTED}


@dataclass(frozen=True)
class TlsTarget:
    """One portal to scan."""

    portal_url: str
    host: str
    port: int
    address: str | None = None


@dataclass(frozen=True)
class TlsScanConfig:
    """Knobs of one TLS scan (from Settings and the inventory's settings)."""

    trust_stores: Sequence[Path] = ()
    allowed_networks: Sequence[IPNetwork] = ()
    concurrent_portals: int = 16
    connections_per_host: int = 5
    network_timeout: int = 5
    network_retries: int = 1
    probe_timeout: float = 4.0
    aia_timeout: float = 4.0
    aia_max_bytes: int = 65536
    revocation_timeout: float = 3.0
    """Seconds the revocation check of one portal may take (CRL and OCSP requests together)."""
    crl_max_bytes: int = 2 * 1024 * 1024


ProgressCallback = Callable[[str, TlsTarget], None]
"""Called with ('reachable' | 'unreachable' | 'scanned', target) as work progresses."""


@dataclass
class _Probe:
    target: TlsTarget
    address: str | None = None
    unreachable: Unreachable | None = None
    error: str | None = None
    oversized: OversizedCertificate | None = None
    """The certificate exceeds the client's limit: sslyze cannot scan this server."""
    big_chain: ServerCertificates | None = None
    """The oversized certificate message, read past the limit (TLS ≤ 1.2 only)."""
    started: float = field(default_factory=time.monotonic)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def _probe_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def probe(target: TlsTarget, timeout: float) -> _Probe:
    """Resolve, connect and attempt one TLS handshake; classify a failure, or leave it to sslyze.

    A handshake refused by the server (no shared suite, say) is not "unreachable": sslyze, which
    speaks far older protocols, decides. Silence, resets and non-TLS answers are final.
    """
    result = _Probe(target)
    try:
        infos = socket.getaddrinfo(target.address or target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        result.unreachable, result.error = Unreachable.DNS, f"cannot resolve {target.host}: {exc}"
        return result
    result.address = str(infos[0][4][0])
    try:
        with socket.create_connection((result.address, target.port), timeout=timeout) as sock:
            _probe_handshake(sock, target, result)
    except ConnectionRefusedError:
        result.unreachable, result.error = Unreachable.REFUSED, f"connection refused by {result.address}"
    except TimeoutError:
        result.unreachable, result.error = Unreachable.TIMEOUT, f"no TCP connection within {timeout:g} s"
    except OSError as exc:
        if exc.errno in RESET_ERRNOS:  # the peer reset before or while the TLS socket was set up
            result.unreachable, result.error = Unreachable.RESET, "connection reset during the TLS handshake"
            return result
        result.unreachable, result.error = Unreachable.OTHER, _short(f"{type(exc).__name__}: {exc}")
    if result.oversized is not None and result.unreachable is None:
        _read_oversized(result, timeout)
    return result


def _server_name(host: str) -> str | None:
    return None if host.replace(".", "").isdigit() or ":" in host else host


def _read_oversized(result: _Probe, timeout: float) -> None:
    """Confirm a handshake message over the client's limit is the certificate, and read it past the limit."""
    assert result.oversized is not None and result.address is not None
    target = result.target
    try:
        big = read_certificates(result.address, target.port, _server_name(target.host), timeout)
    except BigCertificateError as exc:  # e.g. TLS 1.3 only: the certificate is encrypted, its size unknown
        result.oversized.message_bytes = exc.message_bytes
        result.oversized.read_error = _short(str(exc))
        return
    if big.message_bytes <= CLIENT_LIMIT_BYTES:
        result.oversized = None  # another message was too large: left to sslyze, which will say so
        return
    result.oversized.message_bytes = big.message_bytes
    result.big_chain = big


def _probe_handshake(sock: socket.socket, target: TlsTarget, result: _Probe) -> None:
    server_name = _server_name(target.host)
    try:
        with _probe_context().wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False) as tls:
            tls.do_handshake()
    except TimeoutError:
        result.unreachable = Unreachable.TIMEOUT
        result.error = "accepted the TCP connection but gave no TLS answer in time"
    except (ConnectionResetError, BrokenPipeError):
        result.unreachable, result.error = Unreachable.RESET, "connection reset during the TLS handshake"
    except ssl.SSLError as exc:
        if exc.reason in NOT_TLS_REASONS:
            result.unreachable, result.error = Unreachable.NOT_TLS, _short(f"not a TLS answer ({exc.reason})")
        elif exc.reason == "EXCESSIVE_MESSAGE_SIZE":  # sslyze's client has the same limit and would fail too
            result.oversized = OversizedCertificate(client_limit_bytes=CLIENT_LIMIT_BYTES)
        # other handshake failures: left to sslyze


def per_server_limit(probes: Sequence[_Probe], per_address: int) -> int:
    """sslyze's per-server connection limit so that no address gets more than `per_address` at once.

    sslyze limits connections per scan request; portals sharing one address (virtual hosts) would
    multiply that, so the limit is divided by the largest number of portals on one address.
    """
    sharing = Counter(p.address for p in probes)
    return max(1, per_address // max(sharing.values(), default=1))


def _connectivity_error(trace: TracebackException | None) -> tuple[Unreachable, str]:
    name = trace.exc_type.__name__ if trace is not None and trace.exc_type is not None else "unknown"
    text = _short(f"{name}: {''.join(trace.format_exception_only()).strip()}") if trace else name
    if "Timed" in name:
        return Unreachable.TIMEOUT, text
    if "Rejected" in name and "Handshake" not in name:
        return Unreachable.REFUSED, text
    if "Tls" in name or "Handshake" in name:
        return Unreachable.HANDSHAKE, text
    return Unreachable.OTHER, text


def _attempt_error(attempt: Any) -> str:
    trace = attempt.error_trace
    last = "".join(trace.format_exception_only()).strip() if trace is not None else ""
    return _short(f"{attempt.error_reason.value if attempt.error_reason else 'error'}: {last}")


def _cipher(protocol: str, accepted: Any) -> AcceptedCipher:
    suite, key = accepted.cipher_suite, accepted.ephemeral_key
    kex_type = kex_curve = None
    if key is not None:
        type_name = str(key.type_name)
        kex_type = {"DH": "DH", "EC": "ECDH", "X25519": "ECDH", "X448": "ECDH"}.get(type_name, type_name)
        kex_curve = getattr(key, "curve_name", None)
    return AcceptedCipher(
        protocol=protocol,
        name=suite.name,
        openssl_name=suite.openssl_name,
        key_size=suite.key_size,
        kex_type=kex_type,
        kex_size=key.size if key is not None else None,
        kex_curve=kex_curve,
    )


class TlsCollector:
    """Scans portals' TLS; one instance per scan run (holds the anchors and the AIA cache)."""

    def __init__(self, config: TlsScanConfig) -> None:
        self.config = config
        extra = read_extra_anchors(config.trust_stores)
        self._store_errors = extra.errors
        self._anchors: AnchorSet = anchor_set(extra.certificates)
        self._aia = AiaFetcher(config.allowed_networks, config.aia_timeout, config.aia_max_bytes)
        self._revocation = RevocationChecker(RevocationConfig(
            config.allowed_networks, config.revocation_timeout, config.crl_max_bytes))
        self._custom_ca_file = self._combined_trust_store(extra.pem)

    @staticmethod
    def _combined_trust_store(pem: bytes) -> Path | None:
        if not pem:
            return None
        fd, name = tempfile.mkstemp(suffix=".pem", prefix="soc-anchors-")
        with open(fd, "wb") as handle:  # bytes: PEM files may carry UTF-8 comments
            handle.write(pem)
        return Path(name)

    def close(self) -> None:
        """Release the HTTP clients and the temporary trust store file."""
        self._aia.close()
        self._revocation.close()
        if self._custom_ca_file is not None:
            self._custom_ca_file.unlink(missing_ok=True)

    def scan(self, targets: Sequence[TlsTarget], progress: ProgressCallback | None = None) -> Iterator[TlsObservation]:
        """Yield one observation per target, in completion order."""
        notify = progress or (lambda _event, _target: None)
        reachable: list[_Probe] = []
        workers = max(1, min(self.config.concurrent_portals, len(targets)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tls-probe") as pool:
            for result in pool.map(lambda t: probe(t, self.config.probe_timeout), targets):
                if result.unreachable is None and result.oversized is not None:
                    notify("reachable", result.target)
                    yield self._noting_store_errors(self._oversized(result))
                    notify("scanned", result.target)
                elif result.unreachable is None:
                    notify("reachable", result.target)
                    reachable.append(result)
                else:
                    notify("unreachable", result.target)
                    yield self._unreachable(result, result.unreachable, result.error or "")
        if reachable:
            yield from self._sslyze(reachable, notify)

    def _unreachable(self, probe_result: _Probe, kind: Unreachable, error: str) -> TlsObservation:
        target = probe_result.target
        return TlsObservation(
            portal_url=target.portal_url, host=target.host, port=target.port, address=probe_result.address,
            observed_at=utcnow(), duration_s=round(time.monotonic() - probe_result.started, 3),
            unreachable=kind, error=error,
        )

    def _oversized(self, item: _Probe) -> TlsObservation:
        """What can be known of a server whose certificate no TLS client accepts: sslyze cannot scan it."""
        target, oversized = item.target, item.oversized
        assert oversized is not None
        obs = TlsObservation(portal_url=target.portal_url, host=target.host, port=target.port, address=item.address,
                             observed_at=utcnow(), oversized_certificate=oversized)
        obs.command_errors["sslyze"] = (
            f"not scanned: the server's certificate exceeds the {CLIENT_LIMIT_BYTES} bytes TLS clients accept "
            "(sslyze's too); protocols, cipher suites and vulnerabilities unknown")
        big = item.big_chain
        if big is None or not big.chain:
            obs.command_errors["certificate_info"] = oversized.read_error or "certificate not readable"
        else:
            if big.version is not None:
                obs.protocols[big.version] = True
            try:
                self._chain_facts(obs, big.chain)
            except Exception as exc:  # as in _safe_observation: a surprise is recorded, never fatal to the run
                obs.command_errors["collector"] = _short(f"{type(exc).__name__}: {exc}")
        obs.duration_s = round(time.monotonic() - item.started, 3)
        return obs

    def _sslyze(self, probes: Sequence[_Probe], notify: ProgressCallback) -> Iterator[TlsObservation]:
        import sslyze

        requests: dict[str, _Probe] = {}
        scan_requests = []
        extra = sslyze.ScanCommandsExtraArguments(
            certificate_info=sslyze.CertificateInfoExtraArgument(custom_ca_file=self._custom_ca_file)
            if self._custom_ca_file else None
        )
        for item in probes:
            target = item.target
            request = sslyze.ServerScanRequest(
                server_location=sslyze.ServerNetworkLocation(target.host, target.port, ip_address=item.address),
                network_configuration=sslyze.ServerNetworkConfiguration(
                    tls_server_name_indication=target.host,
                    network_timeout=self.config.network_timeout,
                    network_max_retries=self.config.network_retries,
                ),
                scan_commands={sslyze.ScanCommand(name) for name in SCAN_COMMANDS},
                scan_commands_extra_arguments=extra,
            )
            requests[str(request.uuid)] = item
            scan_requests.append(request)
        scanner = sslyze.Scanner(
            per_server_concurrent_connections_limit=per_server_limit(probes, self.config.connections_per_host),
            concurrent_server_scans_limit=self.config.concurrent_portals,
        )
        scanner.queue_scans(scan_requests)
        for result in scanner.get_results():
            item = requests[str(result.uuid)]
            if result.scan_result is None:
                kind, error = _connectivity_error(result.connectivity_error_trace)
                observation = self._unreachable(item, kind, error)
            else:
                observation = self._safe_observation(item, result.scan_result)
            notify("scanned", item.target)
            yield self._noting_store_errors(observation)

    def _noting_store_errors(self, obs: TlsObservation) -> TlsObservation:
        """A configured trust store unusable since the inventory was checked: the observation is incomplete
        (resolves nothing) and an unanchored chain gets no trust verdict — its anchor may be the one missing."""
        if self._store_errors and obs.unreachable is None:
            obs.command_errors["trust_stores"] = _short("; ".join(self._store_errors))
            if obs.trust is not None and not obs.trust.anchored:
                obs.trust = None
        return obs

    def _safe_observation(self, item: _Probe, attempts: Any) -> TlsObservation:
        """Convert sslyze's result; a surprise in one portal's data is recorded, never fatal to the run."""
        try:
            return self._observation(item, attempts)
        except Exception as exc:
            target = item.target
            return TlsObservation(
                portal_url=target.portal_url, host=target.host, port=target.port, address=item.address,
                observed_at=utcnow(), command_errors={"collector": _short(f"{type(exc).__name__}: {exc}")},
            )

    def _observation(self, item: _Probe, attempts: Any) -> TlsObservation:
        target = item.target
        obs = TlsObservation(portal_url=target.portal_url, host=target.host, port=target.port,
                             address=item.address, observed_at=utcnow())
        for command, protocol in CIPHER_COMMANDS.items():
            attempt = getattr(attempts, command)
            if attempt.result is None:
                obs.command_errors[command] = _attempt_error(attempt)
                continue
            accepted = attempt.result.accepted_cipher_suites
            obs.protocols[protocol] = bool(accepted)
            obs.accepted_ciphers += [_cipher(protocol, a) for a in accepted]
        for command in OTHER_COMMANDS:
            attempt = getattr(attempts, command)
            if attempt.result is None:
                obs.command_errors[command] = _attempt_error(attempt)
            else:
                self._apply(obs, command, attempt.result)
        obs.duration_s = round(time.monotonic() - item.started, 3)
        return obs

    def _apply(self, obs: TlsObservation, command: str, result: Any) -> None:
        if command == "certificate_info":
            self._certificates(obs, result)
        elif command == "heartbleed":
            obs.heartbleed = result.is_vulnerable_to_heartbleed
        elif command == "openssl_ccs_injection":
            obs.ccs_injection = result.is_vulnerable_to_ccs_injection
        elif command == "robot":
            obs.robot = result.robot_result.name
        elif command == "tls_compression":
            obs.compression = result.supports_compression
        elif command == "session_renegotiation":
            obs.secure_renegotiation = result.supports_secure_renegotiation
        elif command == "tls_fallback_scsv":
            obs.fallback_scsv = result.supports_fallback_scsv

    def _certificates(self, obs: TlsObservation, result: Any) -> None:
        if not result.certificate_deployments:
            obs.command_errors["certificate_info"] = "no certificate received"
            return
        deployment = result.certificate_deployments[0]
        obs.trusted_stores = [
            r.trust_store.name for r in deployment.path_validation_results if r.was_validation_successful
        ]
        chain: list[x509.Certificate] = list(deployment.received_certificate_chain)
        self._chain_facts(obs, chain)
        obs.revocation = self._revocation_of(chain, obs, getattr(deployment, "ocsp_response", None))

    def _revocation_of(self, chain: list[x509.Certificate], obs: TlsObservation, stapled: Any) -> Revocation:
        """The leaf's revocation status, asked only of an anchored chain's issuer."""
        why = unchecked_reason(obs.chain[0], obs.trust, obs.observed_at)
        if why is not None:
            return not_checked(why)
        issuer = self._issuer(chain)
        if issuer is None:
            return Revocation(status=RevocationStatus.UNKNOWN, reason="issuer certificate not available")
        return self._revocation.check(chain[0], issuer, stapled, obs.observed_at)

    def _issuer(self, chain: list[x509.Certificate]) -> x509.Certificate | None:
        """The leaf's issuer: sent, an anchor, or behind the leaf's caIssuers URL (cached by the AIA fetcher)."""
        leaf = chain[0]
        found = find_issuer(leaf, [*chain[1:], *self._anchors.named_issuers(leaf)])
        for url in ca_issuers_urls(leaf)[:2] if found is None else []:
            try:
                found = find_issuer(leaf, self._aia.fetch(url))
            except AiaFetchError:
                continue
            if found is not None:
                break
        return found

    def _chain_facts(self, obs: TlsObservation, chain: list[x509.Certificate]) -> None:
        """The sent chain's certificates, host-name match and anchoring (whoever read the chain)."""
        obs.chain = [describe(cert) for cert in chain]
        obs.hostname_matches = hostname_matches(chain[0], obs.host)
        try:
            obs.trust = self._anchor(chain, obs)
        except SignatureCheckError as exc:  # "cannot tell" is not "untrusted": no trust verdict, incomplete
            obs.trust = None
            obs.command_errors["trust"] = _short(str(exc))

    def _anchor(self, chain: list[x509.Certificate], obs: TlsObservation) -> ChainTrust:
        stores = anchoring_stores(chain, self._anchors)
        if stores:
            return ChainTrust(anchored=True, anchored_stores=stores)
        trust = ChainTrust(anchored=False, error="no path from the sent chain to a trust anchor")
        fetched, errors = self._complete_from_aia(chain)
        trust.aia_urls_fetched = [url for url, _ in fetched]
        trust.aia_error = "; ".join(str(e) for e in errors) or None
        if fetched:
            completed = chain + [cert for _, certs in fetched for cert in certs]
            trust.anchored_with_aia = bool(anchoring_stores(completed, self._anchors))
        if not trust.anchored_with_aia and any(e.transient for e in errors):
            # The issuer could not be downloaded this time: untrusted or merely incomplete is unknown.
            obs.command_errors["aia"] = _short(trust.aia_error or "AIA fetch failed")
        return trust

    def _complete_from_aia(
        self, chain: list[x509.Certificate]
    ) -> tuple[list[tuple[str, list[x509.Certificate]]], list[AiaFetchError]]:
        """Follow caIssuers from the last certificate upward, a few levels at most."""
        fetched: list[tuple[str, list[x509.Certificate]]] = []
        errors: list[AiaFetchError] = []
        current = chain[-1]
        for _level in range(3):
            urls = ca_issuers_urls(current)[:2]
            certs: list[x509.Certificate] = []
            for url in urls:
                try:
                    certs = self._aia.fetch(url)
                except AiaFetchError as exc:
                    errors.append(exc)
                    continue
                fetched.append((url, certs))
                break
            if not certs or certs[0].issuer == certs[0].subject:
                break
            current = certs[0]
        return fetched, errors
