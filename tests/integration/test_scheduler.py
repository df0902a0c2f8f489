"""The scheduler on a real SQLite store: a real scan of the portal lab at its slot, a restart that keeps the
jobs and their history, a missed slot found from the schedule and that history, a failing job that does
not stop the scheduler, 'run now', and `soc worker` in the foreground.

APScheduler runs on real time with triggers of a few seconds; our records use a FixedClock set to the
moment the test starts, which the test moves on to put a slot beyond the misfire grace.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger

from checks.ops import when
from soc.core.clock import LOCAL_ZONE, FixedClock
from soc.core.models import FindingStatus, JobOutcome, JobRun, RunStatus
from soc.core.settings import ScheduleSettings, Settings
from soc.inventory import Portal, load_inventory
from soc.lab import PortalLab
from soc.scan.pipeline import PortalResult
from soc.scheduler import SocScheduler
from soc.services.context import ServiceError, open_context
from soc.services.jobs import run_job
from soc.services.scans import scan_portals
from soc.store import Backend, open_backend

T = TypeVar("T")
NEVER = "0 3 1 1 *"
"""A cron that does not come due while a test runs (03:00 on 1 January)."""
SOC = str(Path(sys.executable).parent / "soc")


def settings_for(db: Path, inventory: Path) -> Settings:
    """Every job far away except those a test gives a short trigger; all portals at once; a 1-minute grace."""
    schedule = ScheduleSettings(portal_scan=NEVER, registry_refresh=NEVER, compliance=NEVER, freshness=NEVER,
                                monthly_report=NEVER, scan_window_minutes=0, misfire_grace_minutes=1)
    return Settings(db=db, inventory=inventory, schedule=schedule)


def wait_for(what: str, found: Callable[[], T | None], timeout: float = 25.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def runs(backend: Backend, job: str) -> list[JobRun]:
    return backend.jobs.runs(job=job, limit=50)


def finished(backend: Backend, job: str, count: int = 1) -> list[JobRun] | None:
    done = [run for run in runs(backend, job) if run.outcome is not JobOutcome.RUNNING]
    return done if len(done) >= count else None


def finished_run(backend: Backend, run: JobRun) -> JobRun | None:
    now = backend.jobs.get(run.id or 0)
    return now if now is not None and now.finished_at is not None else None


def lab_inventory(lab: PortalLab, tmp_path: Path, cases: tuple[str, ...]) -> Path:
    data = yaml.safe_load(lab.inventory_path.read_text(encoding="utf-8"))
    urls = {lab.case(name).url for name in cases}
    data["portals"] = [portal for portal in data["portals"] if portal["url"] in urls]
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.lab
def test_a_scan_runs_at_its_slot_a_restart_keeps_jobs_and_history_and_a_missed_slot_is_found(
    lab: PortalLab, tmp_path: Path
) -> None:
    db = tmp_path / "soc.db"
    settings = settings_for(db, lab_inventory(lab, tmp_path, ("expired",)))
    start = datetime.now(UTC)
    clock = FixedClock(start)
    slot = (start + timedelta(seconds=4)).replace(microsecond=0)
    triggers = {"portal_scan": CronTrigger(second=slot.second, timezone=LOCAL_ZONE)}  # once a minute, at that second
    backend = open_backend(db, clock)
    try:
        first = SocScheduler(settings, clock, triggers=triggers)
        first.start()
        try:
            scan = wait_for("the scheduled scan", lambda: finished(backend, "portal_scan"))[0]
        finally:
            first.shutdown(wait=True)

        # The scan ran for its slot (not for the moment it began), and its results are stored.
        assert (scan.outcome, scan.trigger, scan.slot, scan.error) == (JobOutcome.SUCCESS, "schedule", slot, None)
        assert scan.scan_run_id is not None and scan.detail["scan_run"] == scan.scan_run_id
        stored = backend.findings.get_run(scan.scan_run_id)
        assert stored is not None and stored.status is RunStatus.COMPLETE and stored.portals_done == 1
        expired = lab.case("expired").url
        assert {f.check_id for f in backend.findings.list_findings(portal_url=expired)} == {"tls.cert.expired"}
        email = runs(backend, "change_email")
        assert [(run.outcome, run.slot, run.scan_run_id) for run in email] == [
            (JobOutcome.SKIPPED, slot, scan.scan_run_id)]
        assert email[0].detail["reason"].startswith("SMTP is not configured")
        startup = runs(backend, "freshness")
        assert [(run.trigger, run.outcome) for run in startup] == [("startup", JobOutcome.SUCCESS)]

        # The scheduler is down across the next slot; our clock is now past it by more than the grace.
        ids = {row[0] for row in sqlite3.connect(db).execute("SELECT id FROM apscheduler_jobs")}
        assert ids == {"portal_scan", "registry_refresh", "compliance", "freshness", "monthly_report"}
        clock.advance(slot + timedelta(seconds=125) - start)
        second = SocScheduler(settings, clock, triggers=triggers)
        second.start()
        try:
            infos = {info.name: info for info in second.job_infos()}
        finally:
            second.shutdown(wait=True)

        # The job store kept the job with the next slot the first scheduler left; the history is whole.
        assert infos["portal_scan"].next_run == slot + timedelta(minutes=1)
        assert infos["portal_scan"].last_success == scan.finished_at
        assert [run.id for run in runs(backend, "portal_scan")] == [scan.id]
        assert [run.trigger for run in runs(backend, "freshness")] == ["startup", "startup"]
        scheduled = backend.audit.entries(action_prefix="job.schedule", subject="job:portal_scan")
        assert len(scheduled) == 1, "an unchanged schedule is not given again"

        # The start-up health check found the slot nobody ran.
        missed = backend.findings.list_findings(check_ids=["ops.schedule_missed"])
        assert [(f.portal_url, f.status) for f in missed] == [("job:portal_scan", FindingStatus.OPEN)]
        assert missed[0].evidence == f"portal_scan: 1 of 2 slot(s) without a run: {when(slot + timedelta(minutes=1))}"
        assert not backend.findings.list_findings(check_ids=["ops.job_failed", "ops.job_stuck"])

        # The registry refresh asks the lab's registry about the portal's badge, read from the stored scan.
        with open_context(settings, clock, "tester") as context:
            refresh = run_job(context, "registry_refresh", clock.now(), "manual")
        assert (refresh.outcome, refresh.error) == (JobOutcome.SUCCESS, None)
        assert (refresh.detail["with_badge_slug"], refresh.detail["answers"]) == (1, {"registry:listed": 1})
    finally:
        backend.close()


def test_a_failing_job_is_recorded_and_tried_again_at_its_next_slot_and_run_now_works(tmp_path: Path) -> None:
    db, missing = tmp_path / "soc.db", tmp_path / "gone.yaml"
    clock = FixedClock(datetime.now(UTC))
    scheduler = SocScheduler(settings_for(db, missing), clock,
                             triggers={"portal_scan": CronTrigger(second="*/2", timezone=LOCAL_ZONE)})
    backend = open_backend(db, clock)
    try:
        scheduler.start()
        failures = wait_for("two failed slots", lambda: finished(backend, "portal_scan", 2), timeout=10)
        assert scheduler.running
        assert all(run.outcome is JobOutcome.FAILED for run in failures)
        assert len({run.slot for run in failures}) == len(failures), "each slot is its own run"
        assert failures[0].error == f"InventoryError: {missing}: file not found"

        started = scheduler.run_now("freshness", actor="alice")
        assert (started.trigger, started.outcome) == ("manual", JobOutcome.RUNNING)
        with pytest.raises(ServiceError, match="already going"):
            scheduler.run_now("freshness", actor="alice")
        with pytest.raises(ServiceError, match="unknown"):
            scheduler.run_now("backup", actor="alice")
        done = wait_for("the manual run", lambda: finished_run(backend, started))
        assert done.outcome is JobOutcome.FAILED  # the inventory is gone: jobs are checked, portals are not
        assert done.error is not None and done.error.endswith("(jobs checked, portals not)")
        failed = backend.findings.list_findings(check_ids=["ops.job_failed"], portal_url="job:portal_scan")
        assert [f.status for f in failed] == [FindingStatus.OPEN]
        assert f"InventoryError: {missing}: file not found" in failed[0].evidence
        entry = backend.audit.entries(action_prefix="job.run", subject="job:freshness", limit=1)[0]
        assert (entry.actor, entry.after and entry.after["trigger"]) == ("alice", "manual")
        assert wait_for("a later slot", lambda: finished(backend, "portal_scan", len(failures) + 1), timeout=10)
    finally:
        scheduler.shutdown(wait=True)
        backend.close()


class Arrivals:
    """When (seconds after the scan began) each portal's first probe answer and each observation came in."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.at: dict[tuple[str, str], float] = {}

    def portal_event(self, portal: Portal, event: str) -> None:
        self.at.setdefault((portal.url, event), time.monotonic() - self.began)

    def portal_done(self, result: PortalResult) -> None:
        pass


@pytest.mark.lab
def test_the_scan_engine_starts_a_portal_after_its_offset_in_every_collector(lab: PortalLab, tmp_path: Path) -> None:
    db = tmp_path / "soc.db"
    inventory = load_inventory(lab_inventory(lab, tmp_path, ("good", "expired")))
    good, late = lab.case("good").url, lab.case("expired").url
    with open_context(Settings(db=db), FixedClock(datetime.now(UTC)), "tester") as context:
        arrivals = Arrivals()
        report = scan_portals(context, inventory, "lab", inventory.portals, ("tls", "http", "ports"), arrivals,
                              start_after={late: 2.0})
    assert report.run.status is RunStatus.COMPLETE and len(report.portals) == 2
    for collector in ("reachable", "http", "ports"):
        assert arrivals.at[(late, collector)] >= 2.0, (collector, arrivals.at)
    assert arrivals.at[(good, "reachable")] < arrivals.at[(late, "reachable")]


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)], ids=["ctrl-c", "sigterm"])
def test_soc_worker_runs_in_the_foreground_until_stopped(tmp_path: Path, stop: signal.Signals, code: int) -> None:
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "SOC_SCHEDULE__FRESHNESS": NEVER}
    process = subprocess.Popen([SOC, "worker", "--db", str(tmp_path / "soc.db"), "--inventory",
                                str(tmp_path / "gone.yaml")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env | {k: v for k, v in os.environ.items() if k.startswith("FAKETIME")})
    watchdog = threading.Timer(30, process.kill)  # a worker that never prints must not hang the suite
    watchdog.start()
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "monthly_report" in line:
                break
        process.send_signal(stop)
        out, err = process.communicate(timeout=10)
    finally:
        watchdog.cancel()
        process.kill()
    text = "".join(lines) + out
    assert process.returncode == code, text + err
    assert "freshness  startup" in text and "failed" in text and "gone.yaml: file not found" in text
    assert "portal_scan  0 1 * * *  next" in text
    assert "Stopped" in err


def test_one_scheduler_per_store_a_second_is_refused_until_the_first_stops(tmp_path: Path) -> None:
    """`soc serve` and `soc worker` on one store would run every job twice: the second process is refused."""
    settings = settings_for(tmp_path / "soc.db", tmp_path / "none.yaml")
    first = SocScheduler(settings, FixedClock(datetime.now(UTC)), startup_check=False)
    first.start()
    try:
        refused = subprocess.run([SOC, "worker", "--db", str(settings.db)], capture_output=True, text=True,
                                 timeout=60, env={**os.environ, "COLUMNS": "300"})
        assert refused.returncode == 2, refused.stderr
        assert f"already runs in process {os.getpid()}" in refused.stderr and "--no-scheduler" in refused.stderr
        assert first.running
    finally:
        first.shutdown(wait=False)
    again = SocScheduler(settings, FixedClock(datetime.now(UTC)), startup_check=False)
    again.start()  # the lease was given back
    try:
        assert again.running
    finally:
        again.shutdown(wait=False)


def test_the_lease_of_a_dead_scheduler_is_taken_over(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "soc.db", tmp_path / "none.yaml")
    clock = FixedClock(datetime.now(UTC))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    with open_context(settings, clock, "tester") as context:
        from soc.core.process import current_process

        me = current_process()
        dead = me.model_copy(update={"pid": int(gone.stdout), "started": "gone"})
        assert context.backend.jobs.acquire_lease("scheduler", dead, clock.now(), lambda *_: False) is None
    scheduler = SocScheduler(settings, clock, startup_check=False)
    scheduler.start()
    try:
        assert scheduler.running
    finally:
        scheduler.shutdown(wait=False)


@pytest.mark.lab
def test_a_scheduled_scan_sends_its_change_email_and_a_delivery_failure_is_in_the_job_history(
    lab: PortalLab, tmp_path: Path
) -> None:
    from aiosmtpd.controller import Controller

    from soc.core.settings import SmtpSettings
    from tests.integration.test_change_email import Received, free_port

    received, port = Received(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = settings_for(tmp_path / "soc.db", lab_inventory(lab, tmp_path, ("expired",)))
        smtp = SmtpSettings(host="127.0.0.1", port=port, starttls=False, recipients=["soc@dongnai.gov.vn"],
                            attempts=2, retry_seconds=0)
        clock = FixedClock(datetime.now(UTC))
        with open_context(settings.model_copy(update={"smtp": smtp}), clock, "scheduler") as context:
            scan_run = run_job(context, "portal_scan", clock.now())
            assert scan_run.outcome is JobOutcome.SUCCESS, scan_run.error
            [sent] = runs(context.backend, "change_email")
            assert (sent.outcome, sent.slot, sent.scan_run_id) == (JobOutcome.SUCCESS, scan_run.slot,
                                                                    scan_run.scan_run_id)
            message = received.message()
            assert message["To"] == "soc@dongnai.gov.vn"
            assert "Xấu đi / Regressed" in message["Subject"] and "1 mới / new" in message["Subject"]
            body = message.get_body(("plain",))
            assert body is not None and "tls.cert.expired" in body.get_content()

            clock.advance(timedelta(days=1))
            down = smtp.model_copy(update={"port": free_port()})  # nothing listens there
            context.settings = context.settings.model_copy(update={"smtp": down})
            second = run_job(context, "portal_scan", clock.now())
            assert second.outcome is JobOutcome.SUCCESS  # the scan stands; the e-mail is its own run
            failed = runs(context.backend, "change_email")[0]
            assert failed.outcome is JobOutcome.FAILED and failed.detail["attempts"] == 2
            assert failed.error is not None and "cannot connect" in failed.error
            assert len(received.envelopes) == 1
    finally:
        controller.stop()
