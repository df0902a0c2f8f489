"""The portal lab: real TLS servers on loopback with deliberately bad configurations.

Used by the tests, the demo and the benchmarks::

    with PortalLab(Path(tmp)) as lab:
        scan(lab.inventory_path)          # every lab.cases[i].expected must be reported

All PKI is generated at start-up under the lab's work directory.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from soc.lab.cases import (
    CASE_NAMES,
    Behaviour,
    CaseSpec,
    LabCase,
    aia_address,
    case_host,
    inventory_yaml,
    registry_address,
    select_cases,
    slot_address,
)
from soc.lab.pki import LabPKI, write_dh1024_params
from soc.lab.ports import PortListeners
from soc.lab.registry import RegistryServer
from soc.lab.servers import (
    AIAServer,
    ConnectionTracker,
    Handler,
    LabError,
    LabServer,
    Waker,
    garbage_handler,
    plain_http_handler,
    reserve_closed_port,
    reset_handler,
    server_context,
    silent_handler,
    tls_handler,
)
from soc.lab.web import http_responder, https_responder, label_slug, registry_entry

__all__ = ["CASE_NAMES", "LabCase", "LabError", "PortalLab"]

STOP_TIMEOUT = 3.0
"""Upper bound, in seconds, on stopping the whole lab."""

_BROKEN_HANDLERS: dict[Behaviour, Handler] = {
    Behaviour.SILENT: silent_handler,
    Behaviour.GARBAGE: garbage_handler,
    Behaviour.RESET: reset_handler,
}


class PortalLab:
    """A context manager running every selected lab case on its own loopback address."""

    def __init__(
        self,
        workdir: Path,
        port: int = 0,
        base_address: str = "127.0.10.",
        cases: Iterable[str] | None = None,
        replicas: int = 1,
        http_port: int | None = None,
    ) -> None:
        """Configure the lab; nothing is generated or bound before `start` / `__enter__`.

        `port=0` gives each server an ephemeral port; a fixed port is used on every address.
        `replicas=N` runs N copies of each case ("good", "good-2", … hosts) on further addresses.
        """
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        self.workdir = Path(workdir)
        self.port = port
        self.http_port = (8080 if port else 0) if http_port is None else http_port
        """Port of every portal's http:// listener (8080 with a fixed HTTPS port, else ephemeral)."""
        self.base_address = base_address
        self.replicas = replicas
        self._specs = select_cases(None if cases is None else list(cases))
        aia_address(base_address)  # validates the prefix (loopback /24) before anything starts
        self.cases: list[LabCase] = []
        self.trust_store_path = self.workdir / "pki" / "root-ca.pem"
        self.inventory_path = self.workdir / "inventory.yaml"
        self._tracker = ConnectionTracker()
        self._waker: Waker | None = None
        self._aia: AIAServer | None = None
        self._servers: list[LabServer] = []
        self._listeners: list[PortListeners] = []
        self._registry: RegistryServer | None = None

    def __enter__(self) -> PortalLab:
        """Start the lab (see `start`)."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the lab (see `stop`)."""
        self.stop()

    @property
    def aia_url(self) -> str:
        """The caIssuers URL of the issuing CA (valid while the lab runs)."""
        if self._aia is None:
            raise LabError("the lab is not running")
        return self._aia.url

    def case(self, name: str) -> LabCase:
        """The first running case called `name`."""
        for case in self.cases:
            if case.name == name:
                return case
        raise KeyError(name)

    def start(self) -> None:
        """Generate the PKI, start the AIA server and every portal, write the inventory."""
        if self._waker is not None:
            raise LabError("the lab is already running")
        self._waker = Waker()
        self._tracker = ConnectionTracker()
        self.cases = []
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def _start_all(self) -> None:
        """Body of `start`; on failure the caller stops whatever was started."""
        pki_dir = self.workdir / "pki"
        pki = LabPKI(pki_dir)
        dh_params = write_dh1024_params(pki_dir / "dh1024.pem")
        self._aia = AIAServer(aia_address(self.base_address), pki.intermediate_der, pki.revocation)
        self._aia.start()
        self._registry = RegistryServer(registry_address(self.base_address))
        self._registry.start()
        for slot, (replica, spec) in enumerate(self._plan(), start=1):
            address = slot_address(self.base_address, slot)
            host = case_host(spec.name, replica)
            slug = label_slug(host, slot)
            port = self._start_case(spec, host, address, pki, dh_params, slug)
            case = LabCase(spec.name, host, address, port, spec.expected, spec.description, slug=slug)
            if spec.behaviour is Behaviour.TLS:
                case = self._start_web_extras(spec, case)
            self.cases.append(case)
        registry_url = self._registry.base_url
        self.inventory_path.write_text(inventory_yaml(self.cases, self.trust_store_path, registry_url), "utf-8")

    def _start_web_extras(self, spec: CaseSpec, case: LabCase) -> LabCase:
        """The case's http:// listener, its extra open ports and its registry entry."""
        assert self._waker is not None and self._registry is not None
        respond = http_responder(spec.http, case.url, case.host, spec.description, case.slug)
        server = LabServer(case.address, self.http_port, plain_http_handler(respond), self._tracker, self._waker)
        self._servers.append(server)
        server.start()
        if spec.http.open_ports:
            listeners = PortListeners(case.address, spec.http.open_ports, banner=b"lab service\r\n")
            self._listeners.append(listeners)
            listeners.start()
        entry = registry_entry(spec.http.badge, case.host)
        if entry is not None:
            self._registry.add(case.slug, entry)
        http_url = f"http://{case.host}/" if server.port == 80 else f"http://{case.host}:{server.port}/"
        return dataclasses.replace(case, http_url=http_url)

    def _plan(self) -> Iterator[tuple[int, CaseSpec]]:
        """(replica number, case spec) for every portal, replica by replica."""
        for replica in range(1, self.replicas + 1):
            for spec in self._specs:
                yield replica, spec

    def _start_case(self, spec: CaseSpec, host: str, address: str, pki: LabPKI, dh_params: Path, slug: str) -> int:
        """Start the server of one portal (none for "refused"); return its port."""
        if spec.behaviour is Behaviour.REFUSED:
            return reserve_closed_port(address, self.port)
        assert self._waker is not None
        handler = self._handler(spec, host, pki, dh_params, slug)
        server = LabServer(address, self.port, handler, self._tracker, self._waker)
        self._servers.append(server)
        server.start()
        return server.port

    def _handler(self, spec: CaseSpec, host: str, pki: LabPKI, dh_params: Path, slug: str) -> Handler:
        """The connection handler of a case (TLS cases get their certificate issued here)."""
        if spec.behaviour is not Behaviour.TLS:
            return _BROKEN_HANDLERS[spec.behaviour]
        assert self._aia is not None
        files = pki.issue_leaf(spec.leaf, host, self.aia_url, send_issuer=spec.tls.send_issuer,
                               revocation_base=self._aia.base_url)
        context = server_context(spec.tls, files, dh_params if spec.tls.dh1024 else None)
        return tls_handler(context, https_responder(host, spec.description, spec.http, slug))

    def stop(self) -> None:
        """Stop every server and connection, joining all threads within STOP_TIMEOUT seconds."""
        deadline = time.monotonic() + STOP_TIMEOUT
        if self._waker is not None:
            self._waker.fire()
        for server in self._servers:
            server.stop(deadline)
        self._tracker.stop(deadline)
        if self._aia is not None:
            self._aia.stop(deadline)
        for listeners in self._listeners:
            listeners.stop()
        if self._registry is not None:
            self._registry.stop()
        self._listeners = []
        self._registry = None
        if self._waker is not None:
            self._waker.close()
        self._servers = []
        self._aia = None
        self._waker = None
