"""How each collector is driven for a scan: targets from the inventory, configuration from settings.

Each runner runs in its own thread, hands every observation to the pipeline with `job.emit`
and yields (collector, portal_url) for what it covered, so the pipeline can mark the rest failed
if the runner dies.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import BaseModel

from checks.trustlabel import badge_matches_host, label_slug
from collectors.http import HttpCollector, HttpScanConfig, HttpTarget
from collectors.ports import DEFAULT_PORTS, RISKY_PORTS, PortsScanConfig, PortsTarget, scan_ports
from collectors.registry import TrustLabelRegistry
from collectors.tls import TlsCollector, TlsScanConfig, TlsTarget
from soc.core.observations import HttpObservation, LabelObservation, TlsObservation, Unreachable
from soc.core.settings import Settings
from soc.inventory import Inventory, Portal
from soc.scan.job import EVENT, ScanJob, Target

Runner = Callable[[ScanJob], Iterator[tuple[str, str]]]
"""Drives one collector (or two: 'label' rides on the HTTP runner, it needs the homepage)."""


class _OfPortal(Protocol):
    @property
    def portal_url(self) -> str: ...


T = TypeVar("T", bound=_OfPortal)
R = TypeVar("R")


def in_waves(job: ScanJob, targets: Sequence[T], scan: Callable[[list[T]], Iterator[R]]) -> Iterator[R]:
    """What `scan` yields for the targets, each wave of them (`ScanJob.waves`) started at its time.

    Without start offsets (every CLI scan) this is `scan(targets)` in the caller's thread. Otherwise one
    thread starts the waves as they come due and each wave runs in its own thread, so a slow portal never
    holds back a later one; their results come back here as they arrive. A wave that fails does not stop
    the others: its error is raised once every wave has ended (the pipeline then marks what it did not
    report as failed). Cancelling the scan stops the waiting at once.
    """
    by_url = {target.portal_url: target for target in targets}
    waves = job.waves(by_url)
    if not waves or (len(waves) == 1 and waves[0][0] <= 0):
        yield from scan(list(targets))
        return
    results: queue.SimpleQueue[tuple[R | None, BaseException | None, bool]] = queue.SimpleQueue()
    stop = threading.Event()

    def run_wave(members: list[T]) -> None:
        items = None
        try:
            items = scan(members)
            for item in items:
                results.put((item, None, False))
                if stop.is_set() or job.cancelled.is_set():
                    break
        except BaseException as exc:  # reported to the consumer, raised there
            results.put((None, exc, False))
        finally:
            close = getattr(items, "close", None)  # a generator releases what it holds (clients, files)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
            results.put((None, None, True))

    def launch() -> None:
        for number, (offset, urls) in enumerate(waves):
            if not job.wait_until(offset) or stop.is_set():
                for _ in waves[number:]:
                    results.put((None, None, True))
                return
            threading.Thread(target=run_wave, args=([by_url[url] for url in urls],), name="scan-wave",
                             daemon=True).start()

    threading.Thread(target=launch, name="scan-waves", daemon=True).start()
    pending, error = len(waves), None
    try:
        while pending and not job.cancelled.is_set():
            try:
                item, failure, done = results.get(timeout=0.2)
            except queue.Empty:
                continue
            if done:
                pending -= 1
            elif failure is not None:
                error = error or failure
            else:
                yield cast(R, item)  # an item: neither a failure nor the end of a wave
    finally:
        stop.set()
    if error is not None:
        raise error


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
        portal_budget=settings.tls_portal_budget,
        connection_life=settings.tls_connection_life,
    )


def run_tls(job: ScanJob) -> Iterator[tuple[str, str]]:
    """Drive the TLS collector."""
    portals = list(job.portals.values())
    targets = []
    for portal in portals:
        where = job.target(portal)
        if where.address is None:  # refused by the address policy, or no DNS answer: never contacted
            job.emit(EVENT, portal.url, "unreachable")
            job.emit("tls", portal.url, not_scanned_tls(portal, where, job))
            yield "tls", portal.url
            continue
        targets.append(TlsTarget(portal.url, portal.host, portal.port, where.address))
    collector = TlsCollector(tls_config(job.inventory, job.settings, portals))

    def progress(event: str, target: TlsTarget) -> None:
        job.emit(EVENT, target.portal_url, event)

    try:
        for obs in in_waves(job, targets, lambda wave: collector.scan(wave, progress)):
            job.emit("tls", obs.portal_url, obs)
            yield "tls", obs.portal_url
    finally:
        collector.close()


def not_scanned_tls(portal: Portal, where: Target, job: ScanJob) -> TlsObservation:
    """The TLS observation of a portal that is not contacted: `tls.unreachable` with the reason."""
    reason = Unreachable.NOT_ALLOWED if where.refused else Unreachable.DNS
    return TlsObservation(portal_url=portal.url, host=portal.host, port=portal.port, address=None,
                          observed_at=job.clock.now(), unreachable=reason, error=where.refused or where.unresolved)


def not_scanned_http(portal: Portal, where: Target, job: ScanJob) -> HttpObservation:
    """The HTTP observation of a portal that is not contacted: `http.unreachable` with the reason."""
    return HttpObservation(portal_url=portal.url, host=portal.host, address=None, observed_at=job.clock.now(),
                           start_url=portal.redirect_start, error=where.refused or where.unresolved)


def registry_for(inventory: Inventory, settings: Settings) -> TrustLabelRegistry:
    """The trust-label registry client: the SOC's snapshot first, then the registry's detail pages."""
    label = inventory.settings.trustlabel
    return TrustLabelRegistry(
        snapshot=label.snapshot,
        base_url=label.registry_url,
        timeout=settings.registry_timeout,
        deadline=settings.http_request_deadline,
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
                            registry=status, page_cut=obs.page_cut)


def http_config(inventory: Inventory, settings: Settings) -> HttpScanConfig:
    """HTTP collector configuration from the process settings and the inventory's settings."""
    return HttpScanConfig(
        allowed_networks=inventory.settings.allowed_networks, timeout=settings.http_timeout,
        max_redirects=settings.http_max_redirects, max_body=settings.http_max_body,
        concurrent_portals=settings.concurrent_portals, connections_per_host=settings.connections_per_host,
        request_deadline=settings.http_request_deadline, portal_budget=settings.http_portal_budget,
    )


def run_http(job: ScanJob) -> Iterator[tuple[str, str]]:
    """Drive the HTTP collector and, when selected, the trust-label lookups that need its homepage.

    Every homepage and every label lookup is handed to the pipeline the moment it is ready: a slow
    portal's homepage never holds back another portal's label (nor its storing).
    """
    targets, not_scanned = [], []
    for portal in job.portals.values():
        where = job.target(portal)
        if where.address is None:  # refused by the address policy, or no DNS answer: never contacted
            not_scanned.append(not_scanned_http(portal, where, job))
        else:
            targets.append(HttpTarget(portal.url, portal.host, where.address, portal.redirect_start))
    collector = HttpCollector(http_config(job.inventory, job.settings))
    registry = registry_for(job.inventory, job.settings) if "label" in job.only else None
    ready: queue.SimpleQueue[tuple[str, BaseModel]] = queue.SimpleQueue()
    pages = ThreadPoolExecutor(max_workers=max(1, min(job.settings.concurrent_portals, len(targets))),
                               thread_name_prefix="http")
    labels = ThreadPoolExecutor(max_workers=4, thread_name_prefix="label")

    def label_ready(url: str, future: Future[LabelObservation]) -> None:
        try:
            ready.put(("label", future.result()))
        except BaseException as exc:  # a lookup bug (or a cancelled one) is that portal's failed label, not a hang
            ready.put(("label", job.failed("label", url, f"label lookup failed: {type(exc).__name__}: {exc}")))

    def page_read(obs: HttpObservation) -> None:
        ready.put(("http", obs))
        if registry is not None:
            try:
                labels.submit(label_observation, obs, registry, job).add_done_callback(
                    functools.partial(label_ready, obs.portal_url))
            except RuntimeError as exc:  # the run is being stopped: no more lookups
                ready.put(("label", job.failed("label", obs.portal_url, f"not looked up: {exc}")))

    def page_ready(url: str, future: Future[HttpObservation]) -> None:
        try:
            obs = future.result()
        except BaseException as exc:  # observe() records failures itself; this is a bug or a cancellation
            failed = f"HTTP collector failed: {type(exc).__name__}: {exc}"
            for name in ("http", "label") if registry is not None else ("http",):
                ready.put((name, job.failed(name, url, failed)))
            return
        page_read(obs)

    expected = (len(targets) + len(not_scanned)) * (2 if registry is not None else 1)
    try:
        for obs in not_scanned:
            page_read(obs)
        for target in sorted(targets, key=lambda t: job.start_offset(t.portal_url)):
            pages.submit(_when_due, job, collector.observe, target).add_done_callback(
                functools.partial(page_ready, target.portal_url))
        while expected and not job.cancelled.is_set():
            try:
                name, item = ready.get(timeout=0.2)
            except queue.Empty:
                continue
            expected -= 1
            url = getattr(item, "portal_url")  # noqa: B009 - every observation has one
            if name in job.only:
                job.emit(name, url, item)
                yield name, url
    finally:
        pages.shutdown(wait=False, cancel_futures=True)
        labels.shutdown(wait=False, cancel_futures=True)
        collector.close()
        if registry is not None:
            registry.close()


def _when_due(job: ScanJob, observe: Callable[[HttpTarget], HttpObservation], target: HttpTarget) -> HttpObservation:
    """`observe(target)` once the portal's start offset has passed (the scan cancelled first: an error)."""
    if not job.wait_until(job.start_offset(target.portal_url)):
        raise RuntimeError("the scan was stopped before this portal's turn")
    return observe(target)


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
        where = job.target(portal)
        if where.address is None:  # refused by the address policy, or no DNS answer: never contacted
            job.emit("ports", portal.url, job.failed("ports", portal.url, where.refused or where.unresolved or ""))
            yield "ports", portal.url
            continue
        targets.append(PortsTarget(portal.url, where.address))
    config = PortsScanConfig(ports=ports, host_timeout_s=settings.ports_host_timeout,
                             max_parallel_hosts=settings.concurrent_portals)
    for obs in in_waves(job, targets, lambda wave: scan_ports(wave, config)):
        job.emit("ports", obs.portal_url, obs)
        yield "ports", obs.portal_url
