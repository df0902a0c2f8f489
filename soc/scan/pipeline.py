"""The scan pipeline: inventory → collectors → checks → store, one portal at a time into the store.

The collectors (TLS, HTTP + trust label, ports) run side by side in their own threads and report
typed observations to one queue; the main thread applies the checks, grades the portal and commits
it as soon as every selected collector has spoken for it. So a crash or Ctrl-C loses nothing
already stored and leaves the run incomplete, and a collector that fails yields a typed failed
observation — which resolves none of that collector's earlier findings.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import thread as futures_thread
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol, cast

from pydantic import BaseModel

from checks.grading import annotate_evidence, portal_score, tls_grade
from checks.http import hsts_max_age
from soc.core.clock import Clock
from soc.core.errors import InputError
from soc.core.models import Finding, Observation, PortalChanges, PortalScan, ScanRun
from soc.core.observations import HttpObservation, TlsObservation
from soc.core.process import current_process
from soc.core.settings import Settings
from soc.inventory import Inventory, Portal, normalise_portal_url
from soc.scan.collectors import SCAN_TABLE, covered_by, runners_for
from soc.scan.job import DONE, EVENT, ScanJob
from soc.scan.runners import Runner
from soc.store.protocols import FindingStore

POLL_SECONDS = 0.1
HEARTBEAT_SECONDS = 5.0
"""How often the main thread tells the store the run's process is alive (a dead one is known by its silence)."""


class ScanObserver(Protocol):
    """Receives progress events of a scan (the CLI's progress bar, later the scheduler's log)."""

    def portal_event(self, portal: Portal, event: str) -> None:
        """`event`: 'reachable' / 'unreachable' (TLS probe), or a collector name when its observation is in."""

    def portal_done(self, result: PortalResult) -> None:
        """A portal's findings are stored."""


@dataclass
class PortalResult:
    """One portal's outcome in a run."""

    portal: Portal
    typed: dict[str, BaseModel]
    """Collector → its typed observation (a `FailedObservation` when the collector gave none)."""
    findings: list[Finding]
    changes: PortalChanges
    assessment: PortalScan

    @property
    def tls(self) -> TlsObservation | None:
        """The TLS observation, when TLS was scanned and the collector answered."""
        typed = self.typed.get("tls")
        return typed if isinstance(typed, TlsObservation) else None


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


class UnknownPortalError(InputError):
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


@dataclass
class _Work:
    """A portal being assembled from its collectors' observations."""

    portal: Portal
    waiting: set[str]
    observations: dict[str, Observation] = field(default_factory=dict)
    typed: dict[str, BaseModel] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _envelope(collector: str, item: BaseModel) -> Observation:
    """The stored form of a typed observation (its JSON, with the collector and completeness)."""
    return Observation(collector=collector, portal_url=getattr(item, "portal_url"),  # noqa: B009
                       observed_at=getattr(item, "observed_at"),  # noqa: B009 - every observation has both
                       complete=bool(getattr(item, "complete", False)),
                       unjudged=list(getattr(item, "unjudged", ())), data=item.model_dump(mode="json"))


def _guard(job: ScanJob, name: str, runner: Runner) -> None:
    """Run a collector; if it dies, every portal it did not report gets a failed observation."""
    covered = {collector: set[str]() for collector in covered_by(name, job.only)}
    error = f"collector {name} gave no observation"
    try:
        for collector, url in runner(job):
            covered.setdefault(collector, set()).add(url)
            if job.cancelled.is_set():
                break  # closing the runner releases what it holds (clients, temporary files)
    except Exception as exc:  # a collector bug must not stall or kill the run
        error = f"collector {name} failed: {type(exc).__name__}: {exc}"
    finally:
        for collector, done in covered.items():  # every portal must hear from every selected collector
            for url in job.portals:
                if url not in done and not job.cancelled.is_set():
                    job.emit(collector, url, job.failed(collector, url, error))
        job.emit(DONE, name, None)


def _assess(run_id: str, work: _Work, only: tuple[str, ...], clock: Clock) -> tuple[list[Finding], PortalScan]:
    tls, http = work.typed.get("tls"), work.typed.get("http")
    tls_assessed = isinstance(tls, TlsObservation) and tls.complete
    hsts = hsts_max_age(http) if isinstance(http, HttpObservation) else None
    grade = tls_grade(work.findings, tls_assessed, hsts)
    assessed = [c for c in only if c in work.observations and work.observations[c].complete]
    grade = portal_score(grade, work.findings, assessed)
    label = work.observations.get("label")
    label_valid = None if label is None or not label.complete else not any(
        f.check_id.startswith("trustlabel.") for f in work.findings)
    scan = PortalScan(
        run_id=run_id, portal_url=work.portal.url, recorded_at=clock.now(),
        collectors={c: work.observations[c].complete for c in only if c in work.observations},
        tls_grade=grade.tls_grade, grade_without_trust=grade.grade_without_trust, score=grade.score,
        category_scores=grade.category_scores, reasons=grade.reasons, label_valid=label_valid,
    )
    return annotate_evidence(work.findings), scan


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Ctrl-C sets a flag instead of raising wherever the main thread is (possibly inside a store
    transaction); the pipeline raises KeyboardInterrupt itself between two portals, within POLL_SECONDS.
    A second Ctrl-C before that (the main thread waiting on a busy store, say) raises at once: SQLite
    rolls back a transaction cut short, and the run is then recognised as abandoned at the next start."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted.is_set
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def run_scan(
    inventory: Inventory,
    store: FindingStore,
    settings: Settings,
    clock: Clock,
    portals: Sequence[Portal],
    only: tuple[str, ...],
    inventory_name: str = "inventory",
    observer: ScanObserver | None = None,
    on_begin: Callable[[ScanRun], None] | None = None,
    start_after: Mapping[str, float] | None = None,
) -> ScanReport:
    """Scan `portals` with the `only` collectors, store everything, return the report.

    `on_begin` is told the run as soon as it exists (the services audit it). `start_after` delays
    portals (URL → seconds after the start; see `ScanJob.start_offset`). KeyboardInterrupt (Ctrl-C)
    ends the scan between two portals: what is stored stays, the run is marked incomplete, and the
    interrupt is raised again.
    """
    run = store.begin_run(inventory_name, len(portals), owner=current_process())
    report = ScanReport(run=run, collectors=only)
    job = ScanJob(inventory, settings, {p.url: p for p in portals}, only, clock, start_after=dict(start_after or {}))
    works = {p.url: _Work(p, set(only)) for p in portals}
    complete = False
    try:
        with _deferred_interrupt() as interrupted:
            if on_begin is not None:
                on_begin(run)
            threads = [threading.Thread(target=_guard, args=(job, name, runner), name=f"collector-{name}", daemon=True)
                       for name, runner in runners_for(only).items()]
            for thread in threads:
                thread.start()
            _collect(job, works, report, store, observer, len(threads), interrupted)
        complete = len(report.portals) == len(portals)
    except BaseException:
        _abandon_collectors(job)
        raise
    finally:
        report.run = store.finish_run(run.id, complete)
    order = {p.url: i for i, p in enumerate(portals)}
    report.portals.sort(key=lambda r: order[r.portal.url])
    return report


def _abandon_collectors(job: ScanJob) -> None:
    """The scan ends early (Ctrl-C, a store failure): tell the collectors to stop, and let the process
    exit without waiting for them.

    A collector's pool worker may sit in a socket read for as long as a hostile portal likes, and
    concurrent.futures joins every worker it started when the interpreter exits, daemon or not. The
    scan's workers are daemon threads (their pools are made in the daemon collector threads), so taking
    them off that list — now, and again at exit for pools made meanwhile — leaves nothing to wait for.
    """
    job.cancelled.set()
    _release_pool_workers()
    _release_pool_workers_at_exit()


@functools.cache
def _release_pool_workers_at_exit() -> None:
    register = getattr(threading, "_register_atexit", None)  # private, as is the list: both guarded
    if register is not None:
        with contextlib.suppress(RuntimeError):  # the interpreter is already exiting
            register(_release_pool_workers)  # runs before concurrent.futures' join (imported first, runs last)


def _release_pool_workers() -> None:
    workers = cast(MutableMapping[threading.Thread, Any], getattr(futures_thread, "_threads_queues", {}))
    for worker in list(workers):
        if worker.daemon:
            workers.pop(worker, None)


def _collect(job: ScanJob, works: dict[str, _Work], report: ScanReport, store: FindingStore,
             observer: ScanObserver | None, running: int, interrupted: Callable[[], bool]) -> None:
    """The main thread's loop: judge each observation as it arrives, store each portal once complete."""
    beat = time.monotonic()
    while running:
        if interrupted():
            raise KeyboardInterrupt
        if time.monotonic() - beat >= HEARTBEAT_SECONDS:
            store.heartbeat(report.run.id)
            beat = time.monotonic()
        try:
            collector, url, item = job.events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if collector == DONE:
            running -= 1
            continue
        work = works[url]
        if collector == EVENT:
            if observer:
                observer.portal_event(work.portal, str(item))
            continue
        if collector not in work.waiting:
            continue  # a duplicate (e.g. a failed placeholder after a late real answer)
        work.waiting.discard(collector)
        work.observations[collector] = _envelope(collector, item)
        work.typed[collector] = item
        if isinstance(item, SCAN_TABLE[collector].kind.observation):
            work.findings += SCAN_TABLE[collector].evaluate(item, work.portal, job.inventory)
        if observer:
            observer.portal_event(work.portal, collector)
        if not work.waiting:
            report.portals.append(_record(store, report.run.id, work, job))
            if observer:
                observer.portal_done(report.portals[-1])


def _record(store: FindingStore, run_id: str, work: _Work, job: ScanJob) -> PortalResult:
    findings, assessment = _assess(run_id, work, job.only, job.clock)
    observations = [work.observations[c] for c in job.only if c in work.observations]
    changes = store.record_portal(run_id, work.portal.url, observations, findings, assessment)
    return PortalResult(work.portal, dict(work.typed), findings, changes, assessment)


def errors_of(result: PortalResult) -> dict[str, Any]:
    """Collector → what did not answer (probe errors, timeouts), for collectors that reported a problem."""
    errors: dict[str, Any] = {}
    for name, typed in result.typed.items():
        error = (getattr(typed, "command_errors", None) or getattr(typed, "error", None)
                 or getattr(typed, "redirect_error", None))
        if error:
            errors[name] = error
    return errors

