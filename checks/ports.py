"""Exposed-port checks: a `PortsObservation` in, findings out. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from checks.catalogue import make_finding
from soc.core.models import Finding
from soc.core.observations import PortsObservation


def evaluate_ports(obs: PortsObservation, expected: Collection[int], risky: Mapping[int, str]) -> list[Finding]:
    """One finding per risky open port (even if declared), one per other open port not declared."""
    findings = []
    for open_port in sorted(obs.open_ports, key=lambda p: p.port):
        service = open_port.service or "unknown"
        if open_port.product:
            service += f" ({open_port.product})"
        where = f"{obs.address}:{open_port.port}/tcp"
        if open_port.port in risky:
            evidence = f"{where} open — {service}; {risky[open_port.port]}"
            findings.append(make_finding(obs.portal_url, "ports.risky_open", evidence, str(open_port.port)))
        elif open_port.port not in expected:
            evidence = f"{where} open — {service}; expected: {', '.join(map(str, sorted(expected))) or 'none'}"
            findings.append(make_finding(obs.portal_url, "ports.unexpected_open", evidence, str(open_port.port)))
    return findings
