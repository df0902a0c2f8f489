"""Ports collector against real nmap and real listeners on 127.0.40.x (nothing mocked, loopback only)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import nmap  # type: ignore[import-untyped]
import pytest

from collectors.ports import (
    DEFAULT_PORTS,
    NMAP_MISSING,
    NMAP_TOP_100_TCP,
    RISKY_PORTS,
    PortsScanConfig,
    PortsTarget,
    batches,
    nmap_arguments,
    nmap_available,
    port_spec,
    read_report,
    scan_ports,
)
from soc.core.observations import PortsObservation
from soc.lab.ports import PortListeners
from soc.lab.servers import LabError, reserve_closed_port

pytestmark = pytest.mark.lab  # starts real servers on loopback

FAST: dict[str, Any] = {"host_timeout_s": 10}


def scan(targets: list[PortsTarget], **config: Any) -> dict[str, PortsObservation]:
    """Run scan_ports and index the observations by portal URL (each portal must appear once)."""
    observations = list(scan_ports(targets, PortsScanConfig(**{**FAST, **config})))
    by_url = {o.portal_url: o for o in observations}
    assert len(by_url) == len(observations) == len(targets)
    return by_url


def services(observation: PortsObservation) -> dict[int, str | None]:
    """Open port → nmap service name."""
    return {p.port: p.service for p in observation.open_ports}


def test_risky_and_unexpected_ports_reported_with_service_names() -> None:
    address = "127.0.40.1"
    closed = [reserve_closed_port(address, 5432), reserve_closed_port(address, 27017), reserve_closed_port(address, 0)]
    ports = [3306, 6379, 8081, *closed]
    with PortListeners(address, [3306, 6379, 8081], banner=b"220 lab\r\n"):
        observation = scan([PortsTarget("https://portal.example.gov.vn/", address)], ports=ports)[
            "https://portal.example.gov.vn/"
        ]
    assert observation.error is None and observation.complete
    assert services(observation) == {3306: "mysql", 6379: "redis", 8081: "blackice-icecap"}
    assert {3306, 6379} <= set(RISKY_PORTS) and 8081 not in RISKY_PORTS
    assert all(p.product is None for p in observation.open_ports)
    assert observation.ports_scanned == port_spec(ports)
    assert observation.address == address and observation.duration_s > 0


def test_portals_sharing_an_address_are_scanned_once() -> None:
    with PortListeners("127.0.40.2", [6379]) as listeners:
        result = scan(
            [
                PortsTarget("https://a.example.gov.vn/", "127.0.40.2"),
                PortsTarget("https://b.example.gov.vn/", "127.0.40.2"),
                PortsTarget("https://c.example.gov.vn/", "127.0.40.3"),
            ],
            ports=[6379, 3306],
        )
        connections = listeners.connections(6379)
    a, b, c = (result[f"https://{x}.example.gov.vn/"] for x in "abc")
    assert connections == 1, "one nmap connect per scan of the shared address"
    assert services(a) == services(b) == {6379: "redis"}
    assert a.duration_s == b.duration_s and a.error is None and b.error is None
    assert c.open_ports == [] and c.error is None


def test_each_address_of_a_batch_gets_its_own_ports() -> None:
    addresses = [f"127.0.40.{i}" for i in range(10, 20)]
    targets = [PortsTarget(f"https://p{i}.example.gov.vn/", a) for i, a in enumerate(addresses)]
    with PortListeners("127.0.40.11", [3306]), PortListeners("127.0.40.17", [6379, 8081]):
        result = scan(targets, ports=[3306, 6379, 8081], hosts_per_nmap=4, max_parallel_hosts=8)
    found = {o.address: sorted(services(o)) for o in result.values() if o.open_ports}
    assert found == {"127.0.40.11": [3306], "127.0.40.17": [6379, 8081]}
    assert all(o.error is None for o in result.values())


def test_a_target_that_is_not_an_ip_literal_is_refused_without_a_scan() -> None:
    with PortListeners("127.0.0.1", [0]) as listeners:
        port = listeners.ports[0]
        result = scan(
            [PortsTarget("https://x.gov.vn/", "localhost"), PortsTarget("https://y.gov.vn/", "")],
            ports=[port],
        )
        connections = listeners.connections(port)
    assert connections == 0
    for observation in result.values():
        assert observation.error is not None and "not an IP address literal" in observation.error
        assert observation.open_ports == [] and observation.duration_s == 0


def test_missing_nmap_gives_errors_not_exceptions(tmp_path: Path) -> None:
    missing = str(tmp_path / "nmap")
    result = scan(
        [PortsTarget("https://a.gov.vn/", "127.0.40.4"), PortsTarget("https://b.gov.vn/", "127.0.40.5")],
        nmap_path=missing,
    )
    assert [o.error for o in result.values()] == [NMAP_MISSING, NMAP_MISSING]
    assert not any(o.complete for o in result.values())
    assert not nmap_available(missing)
    assert nmap_available()


def test_a_host_timeout_is_an_error_for_that_host_only() -> None:
    command = ["nmap", "-oX", "-", "-p", "1-1000", *nmap_arguments(10).split(), "127.0.40.6", "127.0.40.7"]
    command[command.index("10s")] = "1ms"
    xml = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    assert 'timedout="true"' in xml
    report = nmap.PortScanner().analyse_nmap_xml_scan(xml)
    outcome = read_report(report, xml, ["127.0.40.6", "127.0.40.7", "127.0.40.8"])
    assert outcome["127.0.40.6"][1] is not None and "timeout" in outcome["127.0.40.6"][1]
    assert outcome["127.0.40.8"] == ([], "nmap did not report the host (down or absent)")


def test_port_spec_is_compact() -> None:
    assert port_spec([443, 80, 23, 21, 22, 22]) == "21-23,80,443"
    assert port_spec([1, 2, 3, 5, 7, 8, 65535]) == "1-3,5,7-8,65535"
    assert port_spec(range(1, 1025)) == "1-1024"
    for bad in ([], [0], [65536]):
        with pytest.raises(ValueError):
            port_spec(bad)


def test_default_ports_hold_the_top_ports_and_every_risky_port() -> None:
    assert set(RISKY_PORTS) <= set(DEFAULT_PORTS)
    assert set(NMAP_TOP_100_TCP) <= set(DEFAULT_PORTS) and len(set(NMAP_TOP_100_TCP)) == 100
    assert sorted(set(DEFAULT_PORTS)) == DEFAULT_PORTS
    assert set(RISKY_PORTS) == {21, 23, 139, 445, 3389, 5900, 1433, 1521, 3306, 5432, 6379, 9200, 11211, 27017}


def test_config_refuses_unbounded_limits() -> None:
    bad_configs: list[dict[str, Any]] = [
        {"host_timeout_s": 0},
        {"max_parallel_hosts": 0},
        {"ports": []},
        {"hosts_per_nmap": 0},
    ]
    for bad in bad_configs:
        with pytest.raises(ValueError):
            PortsScanConfig(**bad)
    config = PortsScanConfig(max_parallel_hosts=16, hosts_per_nmap=8)
    assert (config.batch_size, config.processes) == (8, 2)


def test_batches_keep_address_families_apart() -> None:
    addresses = ["127.0.40.1", "::1", "127.0.40.2", "127.0.40.3", "fe80::1"]
    assert batches(addresses, 2) == [["127.0.40.1", "127.0.40.2"], ["127.0.40.3"], ["::1", "fe80::1"]]


def test_port_listeners_refuse_addresses_outside_127() -> None:
    for address in ("10.0.0.1", "192.168.1.10", "::1", "localhost", "0.0.0.0"):  # each refused
        with pytest.raises(LabError, match=r"127\.0\.0\.0/8"):
            PortListeners(address, [8081])


def test_port_listeners_name_the_address_and_port_they_cannot_bind() -> None:
    with PortListeners("127.0.40.20", [0]) as first:
        taken = first.ports[0]
        with pytest.raises(LabError, match=rf"127\.0\.40\.20:{taken}"):
            PortListeners("127.0.40.20", [taken]).start()


def test_port_listeners_send_the_banner_and_stop_quickly() -> None:
    listeners = PortListeners("127.0.40.21", [0, 0], banner=b"+OK lab\r\n")
    with listeners:
        idle = socket.create_connection(("127.0.40.21", listeners.ports[1]), timeout=2)
        with socket.create_connection(("127.0.40.21", listeners.ports[0]), timeout=2) as client:
            assert client.recv(64) == b"+OK lab\r\n"
        started = time.monotonic()
    assert time.monotonic() - started < 2.0
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.40.21", listeners.ports[0]), timeout=2).close()
