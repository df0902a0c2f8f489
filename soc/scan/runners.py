"""How each collector is driven for a scan: targets from the inventory, configuration from settings.

Each runner runs in its own thread, hands every observation to the pipeline with `job.emit`
and yields (collector, portal_url) for what it covered, so the pipeline can mark the rest failed
if the runner dies.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import timedelta
from urllib.parse import urlsplit

from checks.trustlabel import badge_matches_host, label_slug
from collectors.http import HttpCollector, HttpScanConfig, HttpTarget
from collectors.ports import DEFAULT_PORTS, RISKY_PORTS, PortsScanConfig, PortsTarget, scan_ports
from collectors.registry import TrustLabelRegistry
from collectors.tls import TlsCollector, TlsScanConfig, TlsTarget
from soc.core.observations import HttpObservation, LabelObservation
from soc.core.settings import Settings
from soc.inventory import Inventory, Portal
from soc.scan.job import EVENT, ScanJob, resolve_address

Runner = Callable[[ScanJob], Iterator[tuple[str, str]]]
"""Drives one collector (or two: 'label' rides on the HTTP runner, it needs the homepage)."""


def tls_config(inventory: Inventory, settings: Settings, portals: list[Portal]) -> TlsScanConfig:
    """TLS collector configuration from the process settings and the inventory's settings."""
    return TlsScanConfig(
        trust_stores=inventory.settings.trust_stores,
        allowed_networks=inventory.settings.allowed_networks,
        concurrent_portals=settings.concurrent_portals,
        connections_per_host=settings.connections_per_host,
        network_timeout=settings.network_timeout,
        network_retries=settings.network_retries,
        probe_timeout=settings.probe_timeout,
        aia_timeout=settings.aia_timeout,
        aia_max_bytes=settings.aia_max_bytes,
        revocation_timeout=settings.revocation_timeout,
        crl_max_bytes=settings.crl_max_bytes,
    )


def run_tls(job: ScanJob) -> Iterator[tuple[str, str]]:
    """Drive the TLS collector."""
    portals = list(job.portals.values())
    targets = [TlsTarget(p.url, p.host, p.port, str(p.address) if p.address else None) for p in portals]
    collector = TlsCollector(tls_config(job.inventory, job.settings, portals))
    try:
        for obs in collector.scan(targets, lambda event, target: job.emit(EVENT, target.portal_url, event)):
            job.emit("tls", obs.portal_url, obs)
            yield "tls", obs.portal_url
    finally:
        collector.close()


def registry_for(inventory: Inventory, settings: Settings) -> TrustLabelRegistry:
    """The trust-label registry client: the SOC's snapshot first, then the registry's detail pages."""
    label = inventory.settings.trustlabel
    return TrustLabelRegistry(
        snapshot=label.snapshot,
        base_url=label.registry_url,
        timeout=settings.registry_timeout,
        min_interval=label.min_interval_s,
        cache_ttl=timedelta(hours=label.cache_hours),
        cache_path=settings.db.parent / "trustlabel-cache.json",
    )


def label_observation(obs: HttpObservation, registry: TrustLabelRegistry, job: ScanJob) -> LabelObservation:
    """The trust-label evidence of one portal: its homepage badges and the registry's word."""
    page_read = obs.error is None
    status = registry.lookup(obs.host, label_slug(obs.badges, obs.host)) if page_read else None
    return LabelObservation(portal_url=obs.portal_url, host=obs.host, observed_at=job.clock.now(), page_read=page_read,
                            badges=obs.badges, badge_for_host=any(badge_matches_host(b, obs.host) for b in obs.badges),
                            registry=status)


def run_http(job: ScanJob) -> Iterator[tuple[str, str]]:
    """Drive the HTTP collector and, when selected, the trust-label lookups that need its homepage."""
    settings = job.settings
    config = HttpScanConfig(
        allowed_networks=job.inventory.settings.allowed_networks, timeout=settings.http_timeout,
        max_redirects=settings.http_max_redirects, max_body=settings.http_max_body,
        concurrent_portals=settings.concurrent_portals, connections_per_host=settings.connections_per_host,
    )
    targets = [HttpTarget(p.url, p.host, str(p.address) if p.address else None, p.redirect_start)
               for p in job.portals.values()]
    collector = HttpCollector(config)
    registry = registry_for(job.inventory, settings) if "label" in job.only else None
    try:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="label") as pool:
            pending: list[Future[LabelObservation]] = []
            for obs in collector.scan(targets):
                if "http" in job.only:
                    job.emit("http", obs.portal_url, obs)
                    yield "http", obs.portal_url
                if registry is not None:
                    pending.append(pool.submit(label_observation, obs, registry, job))
                pending = yield from _emit_labels(job, [f for f in pending if f.done()], pending)
            yield from _emit_labels(job, as_completed(pending), pending)
    finally:
        collector.close()
        if registry is not None:
            registry.close()


def _emit_labels(
    job: ScanJob, finished: Iterable[Future[LabelObservation]], pending: list[Future[LabelObservation]]
) -> Generator[tuple[str, str], None, list[Future[LabelObservation]]]:
    """Hand finished label lookups to the pipeline as they complete (not after the slowest homepage)."""
    left = list(pending)
    for future in finished:
        label = future.result()
        job.emit("label", label.portal_url, label)
        left.remove(future)
        yield "label", label.portal_url
    return left


def http_port(portal: Portal) -> int:
    """The TCP port of the portal's http:// URL."""
    return urlsplit(portal.redirect_start).port or 80


def expected_ports(portal: Portal) -> set[int]:
    """Ports meant to be open: the declared ones plus the portal's own HTTPS and HTTP ports."""
    return set(portal.expected_ports) | {portal.port, http_port(portal)}


def risky_ports(inventory: Inventory) -> dict[int, str]:
    """Built-in risky ports plus the inventory's extra ones."""
    return {**RISKY_PORTS, **inventory.settings.ports.extra_risky}


def run_ports(job: ScanJob) -> Iterator[tuple[str, str]]:
    """Drive the ports collector over each portal's address (resolved once)."""
    settings, inventory = job.settings, job.inventory
    ports = inventory.settings.ports.scan or sorted(set(DEFAULT_PORTS) | set(risky_ports(inventory)))
    targets = []
    for portal in job.portals.values():
        address = resolve_address(portal)
        if address is None:
            job.emit("ports", portal.url, job.failed("ports", portal.url, f"cannot resolve {portal.host}"))
            yield "ports", portal.url
            continue
        targets.append(PortsTarget(portal.url, address))
    config = PortsScanConfig(ports=ports, host_timeout_s=settings.ports_host_timeout,
                             max_parallel_hosts=settings.concurrent_portals)
    for obs in scan_ports(targets, config):
        job.emit("ports", obs.portal_url, obs)
        yield "ports", obs.portal_url
