"""The table of collectors: what each is called, what it observes, and which checks it speaks for.

A complete observation of a collector resolves that collector's unseen findings (its check-id
prefixes) and nothing else; the scan engine (`soc.scan.collectors`) adds how each is driven and
judged. `compliance` is evidence from the register and `ops` from the scheduler's history, not from a
scan: they have no runner.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from soc.core.observations import (
    ComplianceObservation,
    DrillObservation,
    HttpObservation,
    LabelObservation,
    OpsObservation,
    PortsObservation,
    TlsObservation,
)


@dataclass(frozen=True)
class CollectorKind:
    """One source of evidence."""

    name: str
    observation: type[BaseModel]
    """The typed observation it yields for one portal or subject."""
    check_prefixes: tuple[str, ...]
    """The check ids its complete observations are evidence for."""
    runner: str | None
    """The scan runner that drives it ('label' rides on 'http': it needs the homepage); None: not scanned."""


COLLECTORS: dict[str, CollectorKind] = {kind.name: kind for kind in (
    CollectorKind("tls", TlsObservation, ("tls.",), runner="tls"),
    CollectorKind("http", HttpObservation, ("http.",), runner="http"),
    CollectorKind("label", LabelObservation, ("trustlabel.",), runner="http"),
    CollectorKind("ports", PortsObservation, ("ports.",), runner="ports"),
    CollectorKind("compliance", ComplianceObservation, ("approval.", "malware."), runner=None),
    CollectorKind("ops", OpsObservation, ("ops.",), runner=None),
    CollectorKind("drill", DrillObservation, ("drill.",), runner=None),
)}

SCAN_COLLECTORS: tuple[str, ...] = tuple(name for name, kind in COLLECTORS.items() if kind.runner)
"""Every collector a portal scan runs, in the order they are reported."""


def collector(name: str) -> CollectorKind:
    """The collector called `name`; ValueError for an unknown one."""
    try:
        return COLLECTORS[name]
    except KeyError:
        raise ValueError(f"unknown collector {name!r} (known: {', '.join(COLLECTORS)})") from None


def check_prefixes(name: str) -> tuple[str, ...]:
    """The check-id prefixes a collector's observations speak for; ValueError for an unknown collector."""
    return collector(name).check_prefixes
