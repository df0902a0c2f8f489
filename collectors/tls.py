"""TLS collector: sslyze's Python API over many portals at once, one `TlsObservation` per portal.

Flow, for each portal in its own lane (up to `concurrent_portals` at once), so that no portal waits
for another: a quick reachability probe so that a silent, resetting or non-TLS host costs seconds and
is classified the same way every time; then sslyze for that portal alone; then the observation, with
the chain anchored (completing it from AIA when the server omits intermediates) and revocation asked.

Every step is bounded in wall-clock time, not only per read (a server may send one byte a second):
the probe by `probe_timeout`, each sslyze connection by `connection_life` and the whole portal by
`portal_budget` (sslyze's own timeouts are per read, so its connections are cut from outside, see
`_ScanGuard`); a portal out of time is `Unreachable.TOO_SLOW`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import queue
import socket
import ssl
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
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
from collectors.deadline import WATCHDOG, Deadline
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
from soc.core.process import owned_temp_file, remove_owned_temp_file

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
SSLYZE_GRACE_S = 3.0
"""Once a portal's connections are cut, how long its sslyze threads get to notice before the lane moves on."""
RESOLVERS = 16
"""Threads resolving the portals' host names up front (so the per-address connection limit is known)."""


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
    portal_budget: float = 120.0
    """Seconds one portal may take in all (probe, sslyze, AIA, revocation); past it the portal is too slow."""
    connection_life: float = 6.0
    """Longest life of one sslyze connection: a server keeping one open longer (it trickles) is too slow."""


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
    deadline: float | None = None
    """When this portal's time is over (time.monotonic); None outside a scan."""
    resolved: threading.Event = field(default_factory=threading.Event)
    guard: _ScanGuard | None = None
    """The bounds on this portal's sslyze scan, while it runs."""


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


def resolve(target: TlsTarget) -> tuple[str | None, str | None]:
    """(address, None): the configured address, else the host's first from DNS; (None, why) if it has none."""
    try:
        infos = socket.getaddrinfo(target.address or target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # UnicodeError: a label over 63 characters
        return None, f"cannot resolve {target.host}: {exc}"
    return str(infos[0][4][0]), None


def probe(target: TlsTarget, timeout: float, deadline: float | None = None) -> _Probe:
    """Resolve, connect and attempt one TLS handshake; classify a failure, or leave it to sslyze.

    A handshake refused by the server (no shared suite, say) is not "unreachable": sslyze, which
    speaks far older protocols, decides. Silence, resets and non-TLS answers are final. The connection
    and then the handshake each get `timeout` seconds in all (never beyond `deadline`): a server that
    sends nothing is `timeout`, one still sending an unfinished handshake at the end is `too_slow`.
    """
    result = _Probe(target)
    result.address, error = resolve(target)
    if result.address is None:
        result.unreachable, result.error = Unreachable.DNS, error
        return result

    def until() -> float:
        """`timeout` from now, never beyond the caller's deadline."""
        return time.monotonic() + timeout if deadline is None else min(time.monotonic() + timeout, deadline)

    if until() <= time.monotonic():
        result.unreachable, result.error = Unreachable.TOO_SLOW, "no time left for the reachability probe"
        return result
    try:
        with socket.create_connection((result.address, target.port), timeout=until() - time.monotonic()) as sock:
            _probe_handshake(sock, target, result, until())
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
        _read_oversized(result, timeout, deadline)
    return result


def _server_name(host: str) -> str | None:
    return None if host.replace(".", "").isdigit() or ":" in host else host


def _read_oversized(result: _Probe, timeout: float, deadline: float | None = None) -> None:
    """Confirm a handshake message over the client's limit is the certificate, and read it past the limit."""
    assert result.oversized is not None and result.address is not None
    target = result.target
    try:
        big = read_certificates(result.address, target.port, _server_name(target.host), timeout, deadline)
    except BigCertificateError as exc:  # e.g. TLS 1.3 only: the certificate is encrypted, its size unknown
        result.oversized.message_bytes = exc.message_bytes
        result.oversized.read_error = _short(str(exc))
        return
    if big.message_bytes <= CLIENT_LIMIT_BYTES:
        result.oversized = None  # another message was too large: left to sslyze, which will say so
        return
    result.oversized.message_bytes = big.message_bytes
    result.big_chain = big


def _probe_handshake(sock: socket.socket, target: TlsTarget, result: _Probe, deadline: float) -> None:
    """One TLS handshake through memory BIOs, ended by `deadline` however the bytes arrive (bytes counted)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = _probe_context().wrap_bio(incoming, outgoing, server_hostname=_server_name(target.host))
    received = 0
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(outgoing.read())
            if time.monotonic() >= deadline:
                raise TimeoutError
            sock.settimeout(deadline - time.monotonic())
            data = sock.recv(65536)
            received += len(data)
            if data:
                incoming.write(data)
            else:
                incoming.write_eof()
        with contextlib.suppress(OSError):
            sock.sendall(outgoing.read())  # our Finished: a polite end to the handshake
    except TimeoutError:
        if received:
            result.unreachable = Unreachable.TOO_SLOW
            result.error = (f"the TLS handshake was not over in time ({received} bytes received; the server "
                            "sends, but too slowly to finish it)")
        else:
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
        """sslyze reads extra anchors from a file: one named after this process, so a kill leaves no orphan."""
        return owned_temp_file("anchors", pem, ".pem") if pem else None  # bytes: PEM may carry UTF-8 comments

    def close(self) -> None:
        """Release the HTTP clients and the temporary trust store file."""
        self._aia.close()
        self._revocation.close()
        if self._custom_ca_file is not None:
            remove_owned_temp_file(self._custom_ca_file)

    def scan(self, targets: Sequence[TlsTarget], progress: ProgressCallback | None = None) -> Iterator[TlsObservation]:
        """Yield one observation per target, in completion order (a slow portal holds back no other)."""
        if not targets:
            return
        run = _Run(self, targets, progress or (lambda _event, _target: None))
        try:
            yield from run.observations()
        finally:
            run.stop()

    def _assess(self, item: _Probe, run: _Run) -> TlsObservation:
        """One portal from its DNS answer to its observation, within `portal_budget`."""
        item.started = time.monotonic()
        item.deadline = item.started + self.config.portal_budget
        target = item.target
        if not item.resolved.wait(max(0.0, item.deadline - time.monotonic())):
            item.unreachable = Unreachable.TOO_SLOW
            item.error = f"no DNS answer for {target.host} within {self.config.portal_budget:g} s"
        if item.unreachable is None:
            found = probe(dataclasses.replace(target, address=item.address), self.config.probe_timeout, item.deadline)
            item.unreachable, item.error = found.unreachable, found.error
            item.oversized, item.big_chain = found.oversized, found.big_chain
        if item.unreachable is not None:
            run.notify("unreachable", target)
            return self._unreachable(item, item.unreachable, item.error or "")
        run.notify("reachable", target)
        obs = self._oversized(item) if item.oversized is not None else self._sslyze(item, run.sharing(item))
        run.notify("scanned", target)
        return self._noting_store_errors(obs)

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
                self._chain_facts(obs, big.chain, item.deadline)
            except Exception as exc:  # as in _safe_observation: a surprise is recorded, never fatal to the run
                obs.command_errors["collector"] = _short(f"{type(exc).__name__}: {exc}")
        obs.duration_s = round(time.monotonic() - item.started, 3)
        return obs

    def _scan_request(self, item: _Probe) -> Any:
        import sslyze

        target = item.target
        extra = sslyze.ScanCommandsExtraArguments(
            certificate_info=sslyze.CertificateInfoExtraArgument(custom_ca_file=self._custom_ca_file)
            if self._custom_ca_file else None
        )
        return sslyze.ServerScanRequest(
            server_location=sslyze.ServerNetworkLocation(target.host, target.port, ip_address=item.address),
            network_configuration=sslyze.ServerNetworkConfiguration(
                tls_server_name_indication=target.host,
                network_timeout=self.config.network_timeout,
                network_max_retries=self.config.network_retries,
            ),
            scan_commands={sslyze.ScanCommand(name) for name in SCAN_COMMANDS},
            scan_commands_extra_arguments=extra,
        )

    def _sslyze(self, item: _Probe, sharing: Sequence[_Probe]) -> TlsObservation:
        """sslyze's scan of one portal, in its own thread, cut from outside when the portal's time is over."""
        import sslyze

        install_connection_guard()
        request = self._scan_request(item)
        assert item.deadline is not None
        guard = _ScanGuard(request.server_location, item.deadline, self.config.connection_life)
        limit = per_server_limit(sharing, self.config.connections_per_host)
        outcome: list[Any] = []

        def scan() -> None:
            try:
                scanner = sslyze.Scanner(per_server_concurrent_connections_limit=limit,
                                         concurrent_server_scans_limit=1)
                scanner.queue_scans([request])
                outcome.extend(scanner.get_results())
            except Exception as exc:  # recorded for the lane, which turns it into an observation
                outcome.append(exc)
            finally:
                guard.close()

        item.guard = guard
        guard.open()
        worker = threading.Thread(target=scan, name=f"tls-sslyze-{item.target.host[:40]}", daemon=True)
        worker.start()
        worker.join(guard.limit.remaining())
        if worker.is_alive() or guard.limit.fired:
            guard.limit.expire()  # cut every connection; sslyze's threads then finish at once
            worker.join(SSLYZE_GRACE_S)
            return self._unreachable(item, Unreachable.TOO_SLOW, guard.why(self.config.portal_budget))
        result = outcome[0] if outcome else RuntimeError("sslyze gave no result")
        if isinstance(result, Exception):
            raise result
        if result.scan_result is None:
            kind, error = _connectivity_error(result.connectivity_error_trace)
            return self._unreachable(item, kind, error)
        return self._safe_observation(item, result.scan_result)

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
                self._apply(obs, command, attempt.result, item.deadline)
        obs.duration_s = round(time.monotonic() - item.started, 3)
        return obs

    def _apply(self, obs: TlsObservation, command: str, result: Any, deadline: float | None) -> None:
        if command == "certificate_info":
            self._certificates(obs, result, deadline)
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

    def _certificates(self, obs: TlsObservation, result: Any, deadline: float | None) -> None:
        if not result.certificate_deployments:
            obs.command_errors["certificate_info"] = "no certificate received"
            return
        deployment = result.certificate_deployments[0]
        obs.trusted_stores = [
            r.trust_store.name for r in deployment.path_validation_results if r.was_validation_successful
        ]
        chain: list[x509.Certificate] = list(deployment.received_certificate_chain)
        self._chain_facts(obs, chain, deadline)
        obs.revocation = self._revocation_of(chain, obs, getattr(deployment, "ocsp_response", None), deadline)

    def _revocation_of(self, chain: list[x509.Certificate], obs: TlsObservation, stapled: Any,
                       deadline: float | None) -> Revocation:
        """The leaf's revocation status, asked only of an anchored chain's issuer."""
        why = unchecked_reason(obs.chain[0], obs.trust, obs.observed_at)
        if why is not None:
            return not_checked(why)
        issuer = self._issuer(chain, deadline)
        if issuer is None:
            return Revocation(status=RevocationStatus.UNKNOWN, reason="issuer certificate not available")
        return self._revocation.check(chain[0], issuer, stapled, obs.observed_at, deadline)

    def _issuer(self, chain: list[x509.Certificate], deadline: float | None) -> x509.Certificate | None:
        """The leaf's issuer: sent, an anchor, or behind the leaf's caIssuers URL (cached by the AIA fetcher)."""
        leaf = chain[0]
        found = find_issuer(leaf, [*chain[1:], *self._anchors.named_issuers(leaf)])
        for url in ca_issuers_urls(leaf)[:2] if found is None else []:
            try:
                found = find_issuer(leaf, self._aia.fetch(url, deadline))
            except AiaFetchError:
                continue
            if found is not None:
                break
        return found

    def _chain_facts(self, obs: TlsObservation, chain: list[x509.Certificate], deadline: float | None) -> None:
        """The sent chain's certificates, host-name match and anchoring (whoever read the chain)."""
        obs.chain = [describe(cert) for cert in chain]
        obs.hostname_matches = hostname_matches(chain[0], obs.host)
        try:
            obs.trust = self._anchor(chain, obs, deadline)
        except SignatureCheckError as exc:  # "cannot tell" is not "untrusted": no trust verdict, incomplete
            obs.trust = None
            obs.command_errors["trust"] = _short(str(exc))

    def _anchor(self, chain: list[x509.Certificate], obs: TlsObservation, deadline: float | None) -> ChainTrust | None:
        """How the chain is anchored; None (no verdict, observation incomplete) when an issuer could not be fetched."""
        stores = anchoring_stores(chain, self._anchors)
        if stores:
            return ChainTrust(anchored=True, anchored_stores=stores)
        trust = ChainTrust(anchored=False, error="no path from the sent chain to a trust anchor")
        fetched, errors = self._complete_from_aia(chain, deadline)
        trust.aia_urls_fetched = [url for url, _ in fetched]
        trust.aia_error = "; ".join(str(e) for e in errors) or None
        if fetched:
            completed = chain + [cert for _, certs in fetched for cert in certs]
            trust.anchored_with_aia = bool(anchoring_stores(completed, self._anchors))
        if not trust.anchored_with_aia and any(e.transient for e in errors):
            # The issuer could not be downloaded this time (down, silent, too slow): untrusted or merely
            # incomplete is unknown, so there is no trust verdict and the observation resolves nothing.
            obs.command_errors["aia"] = _short(f"trust verdict unknown: {trust.aia_error or 'AIA fetch failed'}")
            return None
        return trust

    def _complete_from_aia(
        self, chain: list[x509.Certificate], deadline: float | None
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
                    certs = self._aia.fetch(url, deadline)
                except AiaFetchError as exc:
                    errors.append(exc)
                    continue
                fetched.append((url, certs))
                break
            if not certs or certs[0].issuer == certs[0].subject:
                break
            current = certs[0]
        return fetched, errors


class _Run:
    """One scan's portals, each carried by a lane from its DNS answer to its observation, so none waits for another.

    Host names are resolved up front by a few threads: the per-address connection limit of a portal's
    sslyze scan depends on how many portals share its address.
    """

    def __init__(self, collector: TlsCollector, targets: Sequence[TlsTarget], notify: ProgressCallback) -> None:
        self.collector = collector
        self.notify = notify
        self.items = [_Probe(target) for target in targets]
        self._stopping = threading.Event()
        self._todo: queue.SimpleQueue[_Probe] = queue.SimpleQueue()
        self._unresolved: queue.SimpleQueue[_Probe] = queue.SimpleQueue()
        self._out: queue.SimpleQueue[TlsObservation | None] = queue.SimpleQueue()
        for item in self.items:
            self._todo.put(item)
            self._unresolved.put(item)
        lanes = max(1, min(collector.config.concurrent_portals, len(self.items)))
        self._lanes = [threading.Thread(target=self._lane, name=f"tls-lane-{i}", daemon=True) for i in range(lanes)]
        self._resolvers = [threading.Thread(target=self._resolver, name=f"tls-dns-{i}", daemon=True)
                           for i in range(min(RESOLVERS, len(self.items)))]
        for thread in [*self._resolvers, *self._lanes]:
            thread.start()

    def observations(self) -> Iterator[TlsObservation]:
        """Each portal's observation as soon as its lane has it."""
        running = len(self._lanes)
        while running:
            obs = self._out.get()
            if obs is None:
                running -= 1
            else:
                yield obs

    def stop(self) -> None:
        """Take no further portal and cut the sslyze scans still running (the consumer stopped early)."""
        self._stopping.set()
        for item in self.items:
            if item.guard is not None:
                item.guard.limit.expire("the scan was stopped")

    def sharing(self, item: _Probe) -> list[_Probe]:
        """The portals known to be on `item`'s address (itself included)."""
        return [other for other in self.items if other.resolved.is_set() and other.address == item.address]

    def _resolver(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._unresolved.get_nowait()
            except queue.Empty:
                return
            item.address, error = resolve(item.target)
            if item.address is None:
                item.unreachable, item.error = Unreachable.DNS, error
            item.resolved.set()

    def _lane(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    item = self._todo.get_nowait()
                except queue.Empty:
                    return
                self._out.put(self._safely(item))
        finally:
            self._out.put(None)

    def _safely(self, item: _Probe) -> TlsObservation:
        """A surprise in one portal is recorded in its observation, never fatal to the run."""
        try:
            return self.collector._assess(item, self)
        except Exception as exc:
            target = item.target
            return TlsObservation(
                portal_url=target.portal_url, host=target.host, port=target.port, address=item.address,
                observed_at=utcnow(), duration_s=round(time.monotonic() - item.started, 3),
                command_errors={"collector": _short(f"{type(exc).__name__}: {exc}")},
            )


# --- sslyze's connections, bounded from outside ----------------------------------------------------------------

_GUARDS: dict[int, _ScanGuard] = {}
"""Running portal scans by id() of their sslyze ServerNetworkLocation (which every connection is opened with)."""
_GUARDS_LOCK = threading.Lock()
_hook: list[Callable[..., socket.socket]] = []
"""The connection opener installed into sslyze, once per process."""


class _ScanGuard:
    """Bounds one portal's sslyze scan: the life of each connection and the end of the whole scan.

    sslyze's `network_timeout` is a socket timeout, so a server that trickles a byte before each one
    holds a connection (and the scan) for ever. Every connection sslyze opens for this portal is
    watched: one still open after `life` seconds, or any at the portal's deadline, makes the scan
    too slow — every connection is shut down and new ones are refused, so sslyze's threads finish at once.
    """

    def __init__(self, location: Any, deadline: float, life: float) -> None:
        self.location = location
        self.life = life
        self.limit = Deadline(max(0.0, deadline - time.monotonic()), what="the TLS scan")
        self._closed = False

    def open(self) -> None:
        """Route the scan's connections through this guard and arm the deadline."""
        with _GUARDS_LOCK:
            _GUARDS[id(self.location)] = self
        self.limit.arm()

    def close(self) -> None:
        """The scan is over: its connections are sslyze's business again."""
        self._closed = True
        self.limit.disarm()
        with _GUARDS_LOCK:
            if _GUARDS.get(id(self.location)) is self:
                del _GUARDS[id(self.location)]

    def connect(self, open_socket: Callable[[Any, float], socket.socket], location: Any,
                network_timeout: float) -> socket.socket:
        """Open one of the scan's connections (refused once its time is over), watched for its life."""
        if self.limit.expired:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "not connecting: this portal's TLS time is over")
        sock = open_socket(location, max(0.001, min(float(network_timeout), self.limit.remaining())))
        self.limit.watch(sock)
        end_of_life = time.monotonic() + self.life
        if end_of_life < self.limit.at:
            ref = weakref.ref(sock)
            WATCHDOG.call_at(end_of_life, lambda: self._outlived(ref))
        return sock

    def _outlived(self, ref: weakref.ref[socket.socket]) -> None:
        sock = ref()
        if self._closed or sock is None or sock.fileno() == -1:
            return
        self.limit.expire(f"an sslyze connection was still open after {self.life:g} s "
                          "(the server answers, but too slowly)")

    def why(self, budget: float) -> str:
        """What made the scan too slow."""
        return self.limit.reason or f"the TLS scan was not over within the portal's {budget:g} s budget"


def _guard_for(location: Any) -> _ScanGuard | None:
    with _GUARDS_LOCK:
        guard = _GUARDS.get(id(location))
        if guard is not None and guard.location is location:
            return guard
        same = [g for g in _GUARDS.values() if g.location == location]  # in case sslyze copied the location
    return same[0] if len(same) == 1 else None


def install_connection_guard() -> bool:
    """Make sslyze open its connections through `_ScanGuard`s (once per process); False if sslyze has no hook.

    Every sslyze connection (connectivity test and scan jobs) is opened by
    `sslyze.connection_helpers.tls_connection._open_socket(server_location, network_timeout)`; the
    wrapper passes through for locations no guard watches. Without the hook (another sslyze
    version) a portal's deadline still holds: its scan is abandoned, not cut.
    """
    from sslyze.connection_helpers import tls_connection

    with _GUARDS_LOCK:
        if _hook:
            return True
        found = getattr(tls_connection, "_open_socket", None)
        if not callable(found):
            return False
        original: Callable[[Any, float], socket.socket] = found

        def open_socket(server_location: Any, network_timeout: float) -> socket.socket:
            guard = _guard_for(server_location)
            if guard is None:
                return original(server_location, network_timeout)
            return guard.connect(original, server_location, network_timeout)

        _hook.append(open_socket)
        tls_connection._open_socket = open_socket
    return True
