"""The scheduled jobs: what each one does, and running one — recorded in our job-run history and audited.

`run_job` never raises for a job that fails: the failure (type and message) is recorded and the job is
tried again at its next slot, so the scheduler never stops. Only an interrupt (KeyboardInterrupt,
SystemExit) goes through, after the run is recorded as interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from checks.ops import job_subject
from checks.trustlabel import label_slug
from soc.core.clock import local_date, today
from soc.core.collectors import SCAN_COLLECTORS
from soc.core.errors import InputError
from soc.core.models import JobOutcome, JobRun, RunOwner, RunStatus, ScanRun
from soc.core.observations import LabelObservation, TrustLabelStatus
from soc.core.process import current_process, is_running
from soc.core.report_records import ReportKind, month_period, previous_month, quarter_of, quarter_period
from soc.core.settings import Settings
from soc.core.text import Text
from soc.inventory import Inventory, Portal, load_inventory
from soc.scan.pipeline import ScanReport
from soc.services import ops
from soc.services.compliance import evaluate, record_kpis
from soc.services.context import ServiceContext, ServiceError
from soc.services.drills import evaluate_actions
from soc.services.findings import expire_risk_acceptances
from soc.services.scans import scan_portals
from soc.services.schedule import cron_trigger
from soc.services.sla import apply_deadlines

MAX_ERROR = 2000
"""Characters of a failure's text kept in the job history."""
CHANGE_EMAIL = "change_email"
"""The change e-mail after each portal scan: a job run of its own, not scheduled."""
LABEL_LOOKBACK = timedelta(days=90)


@dataclass(frozen=True)
class JobResult:
    """How a handler ended when it did not raise."""

    outcome: JobOutcome = JobOutcome.SUCCESS
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    """Why it failed, for a handler that ends failed without an exception."""


@dataclass
class JobCall:
    """What a handler is given: its context, its run record (kept current by `update`), where the inventory
    is when the caller names one, and the schedules (for the health check)."""

    context: ServiceContext
    run: JobRun
    inventory_path: Path | None
    schedules: Mapping[str, Any]

    def update(self, **values: Any) -> JobRun:
        """Record something about the run while it runs (e.g. the scan run's id)."""
        assert self.run.id is not None
        self.run = self.context.backend.jobs.update(self.run.id, **values)
        return self.run

    def inventory(self, required: bool = True) -> tuple[Inventory | None, Path | None]:
        """The inventory the job works on (the caller's path, else `settings.inventory`); ServiceError when
        `required` and none is configured, InventoryError when it cannot be read."""
        path = self.inventory_path or self.context.settings.inventory
        if path is None:
            if required:
                raise ServiceError("no inventory to scan: set SOC_INVENTORY (or soc worker --inventory PATH)")
            return None, None
        return load_inventory(path), path


Handler = Callable[[JobCall], JobResult]


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job."""

    name: str
    setting: str
    """Attribute of `ScheduleSettings` holding its cron expression."""
    handler: Handler
    description: Text


def spread_starts(portal_urls: Sequence[str], window_seconds: float, rng: random.Random) -> dict[str, float]:
    """Seconds after the slot each portal starts: the window cut in equal parts, one portal (shuffled) in
    each at a random point of it — spread evenly, never in the same order twice (0: all at once)."""
    if window_seconds <= 0 or not portal_urls:
        return {}
    order = list(portal_urls)
    rng.shuffle(order)
    step = window_seconds / len(order)
    return {url: (index + rng.random()) * step for index, url in enumerate(order)}


def _portal_scan(call: JobCall) -> JobResult:
    context = call.context
    inventory, path = call.inventory()
    assert inventory is not None
    portals = list(inventory.portals)
    if not portals:
        return JobResult(JobOutcome.SKIPPED, {"reason": "the inventory has no portals"})
    # a scheduled scan spreads its portals over the window; a scan someone asked for now starts at once
    window = context.settings.schedule.scan_window_minutes if call.run.trigger == "schedule" else 0
    batches = shared_batches(context, portals)
    reports: list[ScanReport] = []

    def begun(run: ScanRun) -> None:
        call.update(scan_run_id=run.id)

    for key, batch in batches:
        me, slot = current_process(), call.run.slot.astimezone(UTC)
        if key is not None and not context.backend.findings.claim(f"portal_scan:{slot:%Y%m%dT%H%MZ}:{key}",
                                                                 f"{me.host}:{me.pid}"):
            continue  # another worker sharing the store scans this batch of the slot
        share = window * 60 * len(batch) / len(portals)
        starts = spread_starts([portal.url for portal in batch], share, random.Random())
        reports.append(scan_portals(context, inventory, str(path), batch, SCAN_COLLECTORS, on_begin=begun,
                                    start_after=starts))
    if not reports:
        return JobResult(JobOutcome.SKIPPED, {"reason": "other workers sharing the store took every batch of "
                                              "this slot", "batches": len(batches)})
    report = ScanReport(run=reports[-1].run, collectors=reports[-1].collectors,
                        portals=[result for item in reports for result in item.portals])
    deadlines = apply_deadlines(context, inventory)
    email = change_email(context, call.run, report)
    runs = [item.run for item in reports]
    detail: dict[str, Any] = {"scan_run": report.run.id, "status": report.run.status.value,
              "portals": sum(run.portal_count for run in runs), "portals_done": sum(run.portals_done for run in runs),
              "window_minutes": window, **report.totals(), "deadlines_set": deadlines,
              "change_email": {"run": email.id, "outcome": email.outcome.value}}
    if len(batches) > 1:
        detail |= {"batches": len(batches), "scan_runs": [run.id for run in runs]}
    failed = [run for run in runs if run.status is not RunStatus.COMPLETE]
    if failed:
        return JobResult(JobOutcome.FAILED, detail, error=f"scan run {failed[0].id} ended {failed[0].status.value}")
    return JobResult(JobOutcome.SUCCESS, detail)


def shared_batches(context: ServiceContext, portals: Sequence[Portal]) -> list[tuple[str | None, list[Portal]]]:
    """How a scan slot is split between workers: on the embedded store one batch, unclaimed (one worker per
    store); on the search backend batches of `store.claim_batch` portals in URL order, each with a key that
    names the inventory's portals and the batch, so workers with the same inventory claim the same batches."""
    if context.settings.store.backend != "search":
        return [(None, list(portals))]
    ordered = sorted(portals, key=lambda portal: portal.url)
    digest = hashlib.sha256("\n".join(portal.url for portal in ordered).encode()).hexdigest()[:16]
    size = context.settings.store.claim_batch
    count = (len(ordered) + size - 1) // size
    return [(f"{digest}:{number + 1}/{count}", ordered[number * size:(number + 1) * size]) for number in range(count)]


def change_email(context: ServiceContext, scan_job: JobRun, report: ScanReport) -> JobRun:
    """Send the change e-mail of a scan, as its own job run (same slot and trigger as the scan's): skipped
    when SMTP is not configured, failed with the delivery errors when it could not be delivered."""
    run = begin(context, CHANGE_EMAIL, scan_job.slot, scan_job.trigger, scan_run_id=report.run.id)

    def send(_call: JobCall) -> JobResult:
        if context.settings.smtp.host is None:
            return JobResult(JobOutcome.SKIPPED, {"reason": "SMTP is not configured (SOC_SMTP__HOST)"})
        from soc.services.notify import send_change_email

        delivery = send_change_email(context, report)
        detail = {"attempts": delivery.attempts, "recipients": len(delivery.recipients),
                  "refused": len(delivery.refused)}
        if delivery.delivered:
            return JobResult(JobOutcome.SUCCESS, detail)
        return JobResult(JobOutcome.FAILED, detail, error="; ".join(delivery.errors) or "not delivered")

    return _execute(JobCall(context, run, None, {}), send)


def _label_slugs(context: ServiceContext) -> dict[str, str]:
    """Host → the registry slug of its badge, from each portal's latest stored label observation."""
    store, slugs = context.backend.findings, {}
    seen: set[str] = set()
    for scan in store.latest_portal_scans(context.clock.now() - LABEL_LOOKBACK):  # newest first per portal
        if scan.portal_url in seen:
            continue
        for stored in store.observations(scan.run_id, scan.portal_url):
            if stored.collector != "label":
                continue
            seen.add(scan.portal_url)
            with contextlib.suppress(ValidationError):  # a failed label observation has no badges
                label = LabelObservation.model_validate(stored.data)
                slug = label_slug(label.badges, label.host)
                if slug is not None:
                    slugs[label.host] = slug
    return slugs


def _answer(status: TrustLabelStatus) -> str:
    word = {True: "listed", False: "not_listed", None: "unverified"}[status.found]
    return f"{status.source}:{word}"


def _registry_refresh(call: JobCall) -> JobResult:
    """Re-read and validate the label snapshot, then ask for every portal's domain: the snapshot answers at
    once, the registry's detail page (slug from the portal's latest badge) only when the cached answer
    is older than `trustlabel.cache_hours`, one request per `min_interval_s` — the next scan finds the
    cache warm. Failed when every registry request failed."""
    from soc.scan.runners import registry_for

    context = call.context
    inventory, _path = call.inventory()
    assert inventory is not None
    slugs = _label_slugs(context)
    answers: Counter[str] = Counter()
    errors: list[str] = []
    with registry_for(inventory, context.settings) as registry:
        for host in sorted({portal.host for portal in inventory.portals}):
            status = registry.lookup(host, slugs.get(host))
            answers[_answer(status)] += 1
            if status.source == "registry" and status.error:
                errors.append(f"{host}: {status.error}")
    label = inventory.settings.trustlabel
    detail: dict[str, Any] = {"snapshot": str(label.snapshot) if label.snapshot else None,
                              "registry": label.registry_url, "domains": sum(answers.values()),
                              "with_badge_slug": len(slugs), "answers": dict(answers)}
    asked = sum(count for key, count in answers.items() if key.startswith("registry:"))
    if asked and len(errors) >= asked:
        return JobResult(JobOutcome.FAILED, detail, error=f"every registry request failed: {errors[0]}")
    if errors:
        detail["errors"] = errors[:20]
    return JobResult(JobOutcome.SUCCESS, detail)


def _compliance(call: JobCall) -> JobResult:
    inventory, _path = call.inventory(required=False)
    day = today(call.context.clock)
    run = evaluate(call.context, day)
    confirmed = evaluate_actions(call.context)  # done corrective actions that the latest scans bear out
    deadlines = apply_deadlines(call.context, inventory)
    kept = record_kpis(call.context, inventory, day) if inventory is not None else 0
    return JobResult(JobOutcome.SUCCESS, {"compliance_run": run.id, "as_of": day.isoformat(),
                                          "status": run.status.value, "deadlines_set": deadlines,
                                          "drill_actions_confirmed": confirmed, "kpi_rows": kept})


def _freshness(call: JobCall) -> JobResult:
    """Risk acceptances that expired reopen; then the ops check. An inventory that cannot be read does not
    stop the job checks (portals are then not judged) but fails the run, saying why."""
    context, problem = call.context, None
    inventory = None
    try:
        inventory, _path = call.inventory(required=False)
    except InputError as exc:
        problem = exc
    expired = expire_risk_acceptances(context, inventory)
    report = ops.check(context, inventory, call.schedules, (CHANGE_EMAIL,))
    deadlines = apply_deadlines(context, inventory)
    detail = {"ops_run": report.run.id, "subjects": report.subjects, "opened": report.opened,
              "resolved": report.resolved, "abandoned_runs": report.abandoned,
              "risk_acceptances_expired": len(expired), "deadlines_set": deadlines}
    if problem is not None:
        return JobResult(JobOutcome.FAILED, detail, error=f"{error_text(problem)} (jobs checked, portals not)")
    return JobResult(JobOutcome.SUCCESS, detail)


def _monthly_report(call: JobCall) -> JobResult:
    """On its slot (day 1 of the month by default), the previous month's report in Vietnamese, archived and
    e-mailed with its PDF; when that month closes a quarter, the quarter's report to the People's Committee
    too. Failed (and tried again at the next slot, or by run-now) when a report cannot be built or an e-mail
    cannot be delivered after the SMTP retries; skipped sending when SMTP is not configured."""
    from soc.services import report_archive  # imports WeasyPrint: only the run that needs it pays for it

    context = call.context
    inventory, _path = call.inventory()
    assert inventory is not None
    month = previous_month(local_date(call.run.slot))
    wanted = [(ReportKind.MONTHLY, month_period(month))]
    if month.month % 3 == 0:
        wanted.append((ReportKind.QUARTERLY, quarter_period(month.year, quarter_of(month))))
    built = [report_archive.generate(context, inventory, kind, period, "vi") for kind, period in wanted]
    detail: dict[str, Any] = {"reports": [{"id": report.id, "kind": report.kind.value, "period": report.period,
                                           "sha256": report.sha256} for report in built]}
    if context.settings.smtp.host is None:
        detail["email"] = "SMTP is not configured (SOC_SMTP__HOST)"
        return JobResult(JobOutcome.SUCCESS, detail)
    errors: list[str] = []
    for report in built:
        delivery = report_archive.send_report(context, inventory, report)
        detail.setdefault("emails", []).append({"report": report.id, "delivered": delivery.delivered,
                                                "attempts": delivery.attempts,
                                                "recipients": len(delivery.recipients),
                                                "refused": len(delivery.refused)})
        if not delivery.delivered:
            errors.append(f"report {report.period} not e-mailed: " + ("; ".join(delivery.errors) or "not delivered"))
    if errors:
        return JobResult(JobOutcome.FAILED, detail, error="; ".join(errors))
    return JobResult(JobOutcome.SUCCESS, detail)


JOBS: dict[str, JobSpec] = {spec.name: spec for spec in (
    JobSpec("portal_scan", "portal_scan", _portal_scan,
            Text(vi="Quét toàn bộ cổng thông tin (rải đều trong khung giờ)",
                 en="Scan every portal (starts spread over the window)")),
    JobSpec("registry_refresh", "registry_refresh", _registry_refresh,
            Text(vi="Làm mới trạng thái nhãn Tín nhiệm mạng", en="Refresh the trust-label registry status")),
    JobSpec("compliance", "compliance", _compliance,
            Text(vi="Đánh giá tuân thủ hằng ngày; xác nhận hành động khắc phục sau diễn tập",
                 en="Daily compliance evaluation; drill corrective actions confirmed")),
    JobSpec("freshness", "freshness", _freshness,
            Text(vi="Kiểm tra sức khỏe: tác vụ lỡ lịch, lỗi, treo; dữ liệu cũ; chấp nhận rủi ro hết hạn",
                 en="Health check: missed, failed, stuck jobs; stale data; expired risk acceptances")),
    JobSpec("monthly_report", "monthly_report", _monthly_report,
            Text(vi="Báo cáo tháng gửi lãnh đạo (và báo cáo quý đầu mỗi quý), lưu trữ và gửi thư",
                 en="Monthly report to leadership (and the quarterly one at each quarter's start), archived, "
                 "e-mailed")),
)}
"""Every scheduled job, by name (the scheduler's job ids)."""


def cron_of(settings: Settings, name: str) -> str:
    """The cron expression job `name` runs on."""
    return str(getattr(settings.schedule, JOBS[name].setting))


def default_triggers(settings: Settings) -> dict[str, Any]:
    """Every job's trigger from its cron expression in the settings."""
    return {name: cron_trigger(cron_of(settings, name)) for name in JOBS}


def error_text(exc: BaseException) -> str:
    """A failure as the history keeps it: its type and message, bounded (never a traceback)."""
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def begin(context: ServiceContext, name: str, slot: datetime, trigger: str = "schedule", **values: Any) -> JobRun:
    """Record that a run of job `name` for `slot` starts now, in this process (ServiceError: unknown job)."""
    if name not in JOBS and name != CHANGE_EMAIL:
        raise ServiceError(f"job {name!r}: unknown (jobs: {', '.join(JOBS)})")
    if slot.utcoffset() is None:
        raise ServiceError(f"job {name}: slot {slot.isoformat()} has no time zone")
    me = current_process()
    return context.backend.jobs.start(JobRun(job=name, slot=slot.astimezone(UTC), started_at=context.clock.now(),
                                             trigger=trigger, host=me.host, pid=me.pid, **values))


def execute(context: ServiceContext, run: JobRun, inventory_path: Path | None = None,
            schedules: Mapping[str, Any] | None = None) -> JobRun:
    """Run the handler of a started run and record how it ended (see `run_job`)."""
    call = JobCall(context, run, inventory_path, default_triggers(context.settings) if schedules is None
                   else schedules)
    return _execute(call, JOBS[run.job].handler)


def run_job(context: ServiceContext, name: str, slot: datetime, trigger: str = "schedule",
            inventory_path: Path | None = None, schedules: Mapping[str, Any] | None = None) -> JobRun:
    """Run job `name` for `slot` now: its start, its end (success, skipped, or failed with the error's type
    and message) and the audit entry `job.run` are recorded; returns the finished run.

    Never raises for a failing job; KeyboardInterrupt / SystemExit propagate once the run is recorded as
    interrupted. `schedules`: the triggers the health check judges by (default: the settings' crons).

    Workers sharing a search store all fire every slot: the portal scan splits its portals between them
    (`shared_batches`); any other job's scheduled slot is run by the worker that claims it first, and
    recorded as skipped by the others (one monthly report, one e-mail, not one per worker).
    """
    if trigger == "schedule" and name != "portal_scan" and context.settings.store.backend == "search":
        me = current_process()
        if not context.backend.findings.claim(f"job:{name}:{slot.astimezone(UTC):%Y%m%dT%H%MZ}", f"{me.host}:{me.pid}"):
            return record_skipped(context, name, slot, trigger,
                                  "another worker sharing the store runs this slot (SOC_STORE__BACKEND=search)")
    return execute(context, begin(context, name, slot, trigger), inventory_path, schedules)


def record_skipped(context: ServiceContext, name: str, slot: datetime, trigger: str, reason: str) -> JobRun:
    """Record a slot that was not run, and why (e.g. the previous run still going)."""
    run = begin(context, name, slot, trigger)
    return _execute(JobCall(context, run, None, {}), lambda _call: JobResult(JobOutcome.SKIPPED, {"reason": reason}))


def running_run(context: ServiceContext, name: str) -> JobRun | None:
    """A run of job `name` still going in a live process (of this host, or of another one), or None."""
    for run in context.backend.jobs.runs(job=name, outcome=JobOutcome.RUNNING, limit=20):
        if run.host is None or run.pid is None or is_running(RunOwner(host=run.host, pid=run.pid)) is not False:
            return run
    return None


def _execute(call: JobCall, handler: Handler) -> JobRun:
    try:
        result = handler(call)
    except Exception as exc:  # the job failed; the scheduler must go on
        result = JobResult(JobOutcome.FAILED, error=error_text(exc))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            _finish(call, JobResult(JobOutcome.FAILED, error=f"interrupted ({type(exc).__name__})"))
        raise
    return _finish(call, result)


def _finish(call: JobCall, result: JobResult) -> JobRun:
    context, run = call.context, call.run
    assert run.id is not None
    error = None if result.error is None else result.error[:MAX_ERROR]
    done = context.backend.jobs.finish(run.id, result.outcome, context.clock.now(), error=error,
                                       detail={**run.detail, **result.detail})
    context.audit("job.run", job_subject(run.job), after={
        "run": done.id, "slot": done.slot.isoformat(), "trigger": done.trigger, "outcome": done.outcome.value,
        "error": done.error, "scan_run": done.scan_run_id})
    return done
