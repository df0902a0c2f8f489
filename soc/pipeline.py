"""The scan pipeline: inventory → collectors → checks → store, one portal at a time into the store.

The collectors (TLS, HTTP + trust label, ports) run side by side in their own threads and report
observations to one queue; the main thread applies the checks, grades the portal and commits
it as soon as every selected collector has spoken for it. So a crash or Ctrl-C loses nothing
already stored and leaves the run incomplete, and a collector that fails marks its observations
incomplete — which resolves none of that collector's earlier findings.
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from checks import CheckContext, evaluate_tls
from checks.grading import annotate_evidence, portal_score, tls_grade
from checks.http import evaluate_http, hsts_max_age
from checks.ports import evaluate_ports
from checks.trustlabel import evaluate_label
from soc.inventory import Inventory, Portal, normalise_portal_url
from soc.models import Finding, Observation, PortalChanges, PortalScan, ScanRun, utcnow
from soc.observations import HttpObservation, LabelObservation, TlsObservation
from soc.settings import Settings
from soc.store.base import Store

COLLECTORS = ("tls", "http", "label", "ports")
"""Every collector, in the order they are reported."""
POLL_SECONDS = 0.2


class ScanObserver(Protocol):
    """Receives progress events of a scan."""

    def portal_event(self, portal: Portal, event: str) -> None:
        """`event`: 'reachable' / 'unreachable' (TLS probe), or a collector name when its observation is in."""

    def portal_done(self, result: PortalResult) -> None:
        """A portal's findings are stored."""


@dataclass
class PortalResult:
    """One portal's outcome in a run."""

    portal: Portal
    observations: dict[str, Observation]
    findings: list[Finding]
    changes: PortalChanges
    assessment: PortalScan

    @property
    def tls(self) -> TlsObservation | None:
        """The typed TLS observation, when TLS was scanned and the collector answered."""
        data = self.observations.get("tls")
        return TlsObservation.model_validate(data.data) if data and "portal_url" in data.data else None


@dataclass
class ScanReport:
    """What `run_scan` returns: the run and every portal's outcome, in inventory order."""

    run: ScanRun
    collectors: tuple[str, ...]
    portals: list[PortalResult] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        """new / reopened / still_open / resolved counts over all portals."""
        keys = ("new", "reopened", "still_open", "resolved")
        return {key: sum(len(getattr(r.changes, key)) for r in self.portals) for key in keys}

    def to_json(self) -> dict[str, Any]:
        """The documented, stable `--json` shape (see docs/json-output.md)."""
        return {
            "schema": "soc.scan/1",
            "run": self.run.model_dump(mode="json"),
            "collectors": list(self.collectors),
            "changes": self.totals(),
            "portals": [_portal_json(result) for result in self.portals],
        }


def _portal_json(result: PortalResult) -> dict[str, Any]:
    change = {fp: "new" for fp in result.changes.new} | {fp: "reopened" for fp in result.changes.reopened}
    tls, assessment = result.tls, result.assessment
    return {
        "url": result.portal.url,
        "host": result.portal.host,
        "port": result.portal.port,
        "address": tls.address if tls else (str(result.portal.address) if result.portal.address else None),
        "agency": result.portal.agency,
        "name": result.portal.name,
        "reachable": tls.unreachable is None if tls else None,
        "complete": assessment.complete,
        "collectors": assessment.collectors,
        "grade": assessment.tls_grade,
        "grade_without_trust": assessment.grade_without_trust,
        "grade_reasons": assessment.reasons,
        "score": assessment.score,
        "category_scores": assessment.category_scores,
        "protocols": tls.protocols if tls else {},
        "errors": {name: _errors(obs) for name, obs in result.observations.items() if _errors(obs)},
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
                "change": change.get(f.fingerprint, "still_open"),
            }
            for f in sorted(result.findings, key=lambda f: (f.severity.rank, f.check_id))
        ],
        "changes": {
            "new": len(result.changes.new) + len(result.changes.reopened),
            "still_open": len(result.changes.still_open),
            "resolved": len(result.changes.resolved),
        },
        "resolved": result.changes.resolved,
    }


def _errors(observation: Observation) -> Any:
    data = observation.data
    return data.get("command_errors") or data.get("error") or data.get("redirect_error") or None


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


def parse_only(text: str | None) -> tuple[str, ...]:
    """'tls,http' → ('tls', 'http'); None or '' → every collector. ValueError names an unknown one."""
    if not text:
        return COLLECTORS
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in COLLECTORS]
    if unknown:
        raise ValueError(f"--only: unknown collector {unknown[0]!r} (choose from {', '.join(COLLECTORS)})")
    return tuple(n for n in COLLECTORS if n in names)


Emit = Callable[[str, str, "BaseModel | Observation"], None]
"""(collector, portal_url, typed observation or a failed placeholder) → the main thread."""


@dataclass
class _Work:
    """A portal being assembled from its collectors' observations."""

    portal: Portal
    waiting: set[str]
    observations: dict[str, Observation] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    tls_assessed: bool = False
    hsts: int | None = None


def _failed(collector: str, portal_url: str, error: str) -> Observation:
    return Observation(collector=collector, portal_url=portal_url, observed_at=utcnow(), complete=False,
                       data={"error": error[:500]})


class _Scan:
    """One run of the pipeline (holds the per-portal assembly and the collectors' threads)."""

    def __init__(self, inventory: Inventory, settings: Settings, portals: list[Portal], only: tuple[str, ...]):
        self.inventory, self.settings, self.only = inventory, settings, only
        self.portals = {p.url: p for p in portals}
        self.events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self.threads: list[threading.Thread] = []

    def start(self, observer: ScanObserver | None) -> None:
        from soc.runners import collector_runners

        for name, runner in collector_runners(self, observer).items():
            thread = threading.Thread(target=self._guard, args=(name, runner), name=f"collector-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def emit(self, collector: str, portal_url: str, item: BaseModel | Observation | str) -> None:
        """Called by collector threads."""
        self.events.put((collector, portal_url, item))

    def _guard(self, name: str, runner: Callable[[], Iterable[tuple[str, str]]]) -> None:
        """Run a collector; if it dies, every portal it did not report gets a failed observation."""
        covered = {name: set[str]() for name in self._collectors_of(name)}
        error = f"collector {name} gave no observation"
        try:
            for collector, url in runner():
                covered.setdefault(collector, set()).add(url)
        except Exception as exc:  # a collector bug must not stall or kill the run
            error = f"collector {name} failed: {type(exc).__name__}: {exc}"
        finally:
            for collector, done in covered.items():  # every portal must hear from every selected collector
                for url in self.portals:
                    if url not in done:
                        self.emit(collector, url, _failed(collector, url, error))
            self.events.put(("__done__", name, None))

    def _collectors_of(self, runner: str) -> list[str]:
        return [c for c in (["http", "label"] if runner == "http" else [runner]) if c in self.only]


def _to_observation(collector: str, item: BaseModel | Observation) -> tuple[Observation, BaseModel | None]:
    if isinstance(item, Observation):
        return item, None
    complete = bool(getattr(item, "complete", False))
    observed_at = getattr(item, "observed_at")  # noqa: B009 - every typed observation has it
    return Observation(collector=collector, portal_url=getattr(item, "portal_url"),  # noqa: B009
                       observed_at=observed_at, complete=complete, data=item.model_dump(mode="json")), item


def _evaluate(work: _Work, collector: str, typed: BaseModel | None, inventory: Inventory) -> None:
    if typed is None:
        return
    if isinstance(typed, TlsObservation):
        work.findings += evaluate_tls(typed, CheckContext(expiry_warning_days=inventory.settings.expiry_warning_days))
        work.tls_assessed = typed.complete
    elif isinstance(typed, HttpObservation):
        work.findings += evaluate_http(typed)
        work.hsts = hsts_max_age(typed)
    elif isinstance(typed, LabelObservation):
        work.findings += evaluate_label(typed)
    else:
        from soc.runners import expected_ports, risky_ports

        work.findings += evaluate_ports(typed, expected_ports(work.portal), risky_ports(inventory))  # type: ignore[arg-type]


def _label_valid(work: _Work) -> bool | None:
    """Trust label verified valid: a complete label observation and no trust-label finding."""
    label = work.observations.get("label")
    if label is None or not label.complete:
        return None
    return not any(f.check_id.startswith("trustlabel.") for f in work.findings)


def _assess(run_id: str, work: _Work, only: tuple[str, ...]) -> tuple[list[Finding], PortalScan]:
    grade = tls_grade(work.findings, work.tls_assessed, work.hsts)
    assessed = [c for c in only if work.observations.get(c) is not None and work.observations[c].complete]
    grade = portal_score(grade, work.findings, assessed)
    scan = PortalScan(
        run_id=run_id, portal_url=work.portal.url, recorded_at=utcnow(),
        collectors={c: work.observations[c].complete for c in only if c in work.observations},
        tls_grade=grade.tls_grade, grade_without_trust=grade.grade_without_trust, score=grade.score,
        category_scores=grade.category_scores, reasons=grade.reasons, label_valid=_label_valid(work),
    )
    return annotate_evidence(work.findings), scan


def run_scan(
    inventory: Inventory,
    store: Store,
    settings: Settings,
    inventory_name: str | Path = "inventory",
    portal_urls: Sequence[str] = (),
    observer: ScanObserver | None = None,
    only: Sequence[str] = COLLECTORS,
) -> ScanReport:
    """Scan the selected portals with the selected collectors, store everything, return the report."""
    portals = select_portals(inventory, portal_urls)
    selected = tuple(c for c in COLLECTORS if c in only)
    run = store.begin_run(str(inventory_name), len(portals))
    report = ScanReport(run=run, collectors=selected)
    scan = _Scan(inventory, settings, portals, selected)
    works = {p.url: _Work(p, set(selected)) for p in portals}
    complete = False
    try:
        scan.start(observer)
        running = len(scan.threads)
        while running:
            try:
                collector, url, item = scan.events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if collector == "__done__":
                running -= 1
                continue
            work = works[url]
            if collector == "__event__":
                if observer:
                    observer.portal_event(work.portal, str(item))
                continue
            if collector not in work.waiting:
                continue  # a duplicate (e.g. a failed placeholder after a late real answer)
            observation, typed = _to_observation(collector, item)
            work.waiting.discard(collector)
            work.observations[collector] = observation
            _evaluate(work, collector, typed, inventory)
            if observer:
                observer.portal_event(work.portal, collector)
            if not work.waiting:
                report.portals.append(_record(store, run.id, work, selected))
                if observer:
                    observer.portal_done(report.portals[-1])
        complete = len(report.portals) == len(portals)
    finally:
        report.run = store.finish_run(run.id, complete)
    order = {p.url: i for i, p in enumerate(portals)}
    report.portals.sort(key=lambda r: order[r.portal.url])
    return report


def _record(store: Store, run_id: str, work: _Work, only: tuple[str, ...]) -> PortalResult:
    findings, assessment = _assess(run_id, work, only)
    observations = [work.observations[c] for c in only if c in work.observations]
    changes = store.record_portal(run_id, work.portal.url, observations, findings, assessment)
    return PortalResult(work.portal, dict(work.observations), findings, changes, assessment)


def resolve_address(portal: Portal) -> str | None:
    """The portal's configured address, or its host's first address from DNS (None if it has none)."""
    if portal.address is not None:
        return str(portal.address)
    try:
        return str(socket.getaddrinfo(portal.host, portal.port, type=socket.SOCK_STREAM)[0][4][0])
    except OSError:
        return None
