"""The scan pipeline: inventory → collectors → checks → store, one portal at a time into the store.

Each portal's result is committed as soon as it arrives, so a crash or Ctrl-C loses nothing
already scanned and leaves the run marked incomplete. Progress is reported to an observer;
how it is shown (Rich, logs, the scheduler) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from checks import CheckContext, evaluate_tls
from collectors.tls import TlsCollector, TlsScanConfig, TlsTarget
from soc.inventory import Inventory, Portal, normalise_portal_url
from soc.models import Finding, Observation, PortalChanges, ScanRun
from soc.observations import TlsObservation
from soc.settings import Settings
from soc.store.base import Store


class ScanObserver(Protocol):
    """Receives progress events of a scan."""

    def portal_event(self, portal: Portal, event: str) -> None:
        """`event` is 'reachable', 'unreachable' (probe done) or 'scanned'."""

    def portal_done(self, result: PortalResult) -> None:
        """A portal's findings are stored."""


@dataclass
class PortalResult:
    """One portal's outcome in a run."""

    portal: Portal
    observation: TlsObservation
    findings: list[Finding]
    changes: PortalChanges


@dataclass
class ScanReport:
    """What `run_scan` returns: the run and every portal's outcome, in inventory order."""

    run: ScanRun
    portals: list[PortalResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented, stable `--json` shape (see docs/json-output.md)."""
        return {
            "schema": "soc.scan/1",
            "run": self.run.model_dump(mode="json"),
            "portals": [_portal_json(result) for result in self.portals],
        }


def _portal_json(result: PortalResult) -> dict[str, Any]:
    obs = result.observation
    status = {fp: "new" for fp in result.changes.new} | {fp: "reopened" for fp in result.changes.reopened}
    return {
        "url": result.portal.url,
        "host": result.portal.host,
        "port": result.portal.port,
        "address": obs.address,
        "agency": result.portal.agency,
        "name": result.portal.name,
        "reachable": obs.unreachable is None,
        "complete": obs.complete,
        "protocols": obs.protocols,
        "errors": obs.command_errors,
        "findings": [
            {
                "check_id": f.check_id,
                "severity": f.severity.value,
                "title": f.title_vi,
                "title_en": f.title_en,
                "evidence": f.evidence,
                "remediation": f.remediation_vi,
                "remediation_en": f.remediation_en,
                "fingerprint": f.fingerprint,
                "change": status.get(f.fingerprint, "still_open"),
            }
            for f in sorted(result.findings, key=lambda f: (f.severity.rank, f.check_id))
        ],
        "resolved": result.changes.resolved,
    }


class UnknownPortalError(ValueError):
    """A --portal URL that is not in the inventory."""


def select_portals(inventory: Inventory, urls: Sequence[str]) -> list[Portal]:
    """The inventory's portals, or only those named (by URL, in any spelling of the same URL)."""
    if not urls:
        return list(inventory.portals)
    by_url = {p.url: p for p in inventory.portals}
    wanted: dict[str, Portal] = {}
    for url in urls:
        try:
            key = normalise_portal_url(url)
        except ValueError as exc:
            raise UnknownPortalError(f"--portal {url}: {exc}") from None
        if key not in by_url:
            raise UnknownPortalError(f"--portal {url}: not in the inventory")
        wanted[key] = by_url[key]
    return list(wanted.values())


def scan_config(inventory: Inventory, settings: Settings) -> TlsScanConfig:
    """Collector configuration from the process settings and the inventory's settings."""
    return TlsScanConfig(
        trust_stores=inventory.settings.trust_stores,
        aia_allowed_networks=inventory.settings.aia_allowed_networks,
        concurrent_portals=settings.concurrent_portals,
        connections_per_host=settings.connections_per_host,
        network_timeout=settings.network_timeout,
        network_retries=settings.network_retries,
        probe_timeout=settings.probe_timeout,
        aia_timeout=settings.aia_timeout,
        aia_max_bytes=settings.aia_max_bytes,
    )


def run_scan(
    inventory: Inventory,
    store: Store,
    settings: Settings,
    inventory_name: str | Path = "inventory",
    portal_urls: Sequence[str] = (),
    observer: ScanObserver | None = None,
) -> ScanReport:
    """Scan the selected portals, store everything, and return the report."""
    portals = select_portals(inventory, portal_urls)
    by_url = {p.url: p for p in portals}
    targets = [TlsTarget(p.url, p.host, p.port, str(p.address) if p.address else None) for p in portals]
    context = CheckContext(expiry_warning_days=inventory.settings.expiry_warning_days)
    run = store.begin_run(str(inventory_name), len(portals))
    report = ScanReport(run=run)
    collector = TlsCollector(scan_config(inventory, settings))
    complete = False
    try:
        def events(event: str, target: TlsTarget) -> None:
            if observer:
                observer.portal_event(by_url[target.portal_url], event)

        for obs in collector.scan(targets, events):
            findings = evaluate_tls(obs, context)
            observation = Observation(collector="tls", portal_url=obs.portal_url, observed_at=obs.observed_at,
                                      complete=obs.complete, data=obs.model_dump(mode="json"))
            changes = store.record_portal(run.id, obs.portal_url, [observation], findings)
            result = PortalResult(by_url[obs.portal_url], obs, findings, changes)
            report.portals.append(result)
            if observer:
                observer.portal_done(result)
        complete = len(report.portals) == len(portals)
    finally:
        collector.close()
        report.run = store.finish_run(run.id, complete)
    order = {p.url: i for i, p in enumerate(portals)}
    report.portals.sort(key=lambda r: order[r.portal.url])
    return report
