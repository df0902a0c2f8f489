"""`soc worker`: the scheduler alone, in the foreground, one line per job run."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from soc.cli.common import DbOption, InventoryOption, console, errors, fail, settings_with, shown, state
from soc.core.clock import LOCAL_ZONE
from soc.core.errors import InputError
from soc.core.models import JobOutcome, JobRun
from soc.schemas.jobs import JobInfo
from soc.store import StoreError

_STYLE = {JobOutcome.SUCCESS: "green", JobOutcome.FAILED: "bold red", JobOutcome.SKIPPED: "yellow",
          JobOutcome.RUNNING: "cyan"}


def run_line(run: JobRun) -> str:
    """One job run as the worker prints it (Rich markup): when, job, slot, outcome, scan run, error."""
    slot = run.slot.astimezone(LOCAL_ZONE).strftime("%d/%m %H:%M:%S")
    end = run.finished_at or run.started_at
    took = _duration((end - run.started_at).total_seconds())
    parts = [end.astimezone(LOCAL_ZONE).strftime("%H:%M:%S"), f"[bold]{run.job}[/]", f"{run.trigger} {slot}",
             f"[{_STYLE[run.outcome]}]{run.outcome.value}[/]", took]
    if run.scan_run_id:
        parts.append(f"scan run {run.scan_run_id[:12]}")
    if run.error:
        parts.append(shown(run.error))
    elif reason := run.detail.get("reason"):
        parts.append(shown(reason))
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min {rest:02d} s"


def _job_line(info: JobInfo) -> str:
    when = info.next_run.astimezone(LOCAL_ZONE).strftime("%d/%m/%Y %H:%M:%S") if info.next_run else "—"
    return f"  [bold]{info.name}[/]  {shown(info.schedule)}  next {when}  — {info.description} / {info.description_en}"


def worker(ctx: typer.Context, db: DbOption = None, inventory: InventoryOption = None) -> None:
    """Chạy bộ lập lịch ở tiền cảnh / Run the scheduler in the foreground until Ctrl-C or SIGTERM.

    Prints one line per job run. Ctrl-C exits 130, SIGTERM 0, at once: a run still going is recorded as
    abandoned by the next start (its process is gone) and reported by the health check.
    """
    from soc.scheduler import SocScheduler

    settings = settings_with(db)
    if inventory is not None:
        settings = settings.model_copy(update={"inventory": inventory})
    if settings.inventory is None:
        errors.print("[yellow]Chưa có danh mục / no inventory:[/] the portal scan fails until --inventory or "
                     "SOC_INVENTORY names one.")
    scheduler = SocScheduler(settings, state(ctx).clock, on_run=lambda run: console.print(run_line(run),
                                                                                         soft_wrap=True))
    stop = threading.Event()

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, terminate)
    code = 0
    try:
        try:
            scheduler.start()
        except (StoreError, InputError) as exc:
            fail(str(exc))
        console.print(f"Bộ lập lịch đang chạy / scheduler running on {shown(settings.db)} (Ctrl-C to stop):")
        for info in scheduler.job_infos():
            console.print(_job_line(info), soft_wrap=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        code = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        scheduler.shutdown(wait=False)
    errors.print("[bold yellow]Đã dừng / Stopped.[/]")
    if code:
        raise typer.Exit(code)
    from soc.cli import exit_at_once  # a job thread still running must not hold the process

    exit_at_once(0)
