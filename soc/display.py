"""Rendering for the terminal (Rich): tables and progress. Nothing here decides anything.

All text shown may come from scanned servers: Rich markup in it is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from soc.inventory import Portal
from soc.models import ScanRun, Severity, StoredFinding
from soc.pipeline import PortalResult, ScanReport

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MANY_PORTALS = 25
"""Above this, finished portals leave the progress display to keep the screen readable."""


def local_time(moment: datetime | None) -> str:
    """A stored UTC time as shown to users (Asia/Ho_Chi_Minh)."""
    return moment.astimezone(LOCAL_ZONE).strftime("%d/%m/%Y %H:%M") if moment else "—"


def severity_text(severity: Severity) -> str:
    """Coloured severity label."""
    return f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]"


class ProgressDisplay:
    """A ScanObserver that draws an overall bar and one bar per portal (probe → scan → stored)."""

    STEPS = 3

    def __init__(self, console: Console, portals: Sequence[Portal]) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self._overall = self._progress.add_task("[bold]Tổng / Total", total=len(portals), state="")
        self._tasks: dict[str, TaskID] = {
            p.url: self._progress.add_task(escape(p.url), total=self.STEPS, state="chờ / queued") for p in portals
        }
        self._hide_done = len(portals) > MANY_PORTALS

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def portal_event(self, portal: Portal, event: str) -> None:
        """Advance a portal's bar."""
        state = {"reachable": "đang quét / scanning", "unreachable": "không kết nối / unreachable",
                 "scanned": "đã quét / scanned"}.get(event, event)
        done = {"reachable": 1, "unreachable": 2, "scanned": 2}.get(event, 0)
        self._progress.update(self._tasks[portal.url], completed=done, state=state)

    def portal_done(self, result: PortalResult) -> None:
        """Close a portal's bar and advance the overall one."""
        counts = f"{len(result.findings)} phát hiện / findings"
        task = self._tasks[result.portal.url]
        self._progress.update(task, completed=self.STEPS, state=counts, visible=not self._hide_done)
        self._progress.advance(self._overall)


def summary_table(report: ScanReport) -> Table:
    """Per-portal summary: reachability, findings by severity, changes."""
    table = Table(title=f"Kết quả quét / Scan results — {report.run.id[:8]} ({report.run.status.value})")
    table.add_column("Cổng / Portal")
    table.add_column("TLS")
    for severity in Severity:
        table.add_column(severity.value, justify="right", style=SEVERITY_STYLE[severity])
    table.add_column("Mới / New", justify="right")
    table.add_column("Đã khắc phục / Resolved", justify="right")
    for result in report.portals:
        counts = {s: 0 for s in Severity}
        for finding in result.findings:
            counts[finding.severity] += 1
        obs = result.observation
        reach = "[green]OK[/]" if obs.unreachable is None else f"[red]{obs.unreachable.value}[/]"
        table.add_row(escape(result.portal.url), reach, *(str(counts[s] or "") for s in Severity),
                      str(len(result.changes.new) + len(result.changes.reopened) or ""),
                      str(len(result.changes.resolved) or ""))
    return table


def findings_table(findings: Sequence[StoredFinding], title: str = "Phát hiện / Findings") -> Table:
    """Findings grouped by portal: severity, check id, title (vi, en) with evidence, status, id.

    Evidence comes from the scanned server: escaped and truncated.
    """
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("Mức\nSev.", no_wrap=True)
    table.add_column("Mã kiểm tra\nCheck", no_wrap=True)
    table.add_column("Phát hiện\nFinding", overflow="fold", min_width=24)
    table.add_column("Trạng thái\nStatus", no_wrap=True)
    table.add_column("ID", no_wrap=True)
    ordered = sorted(findings, key=lambda f: (f.portal_url, f.severity.rank, f.check_id))
    portal = None
    for f in ordered:
        if f.portal_url != portal:
            portal = f.portal_url
            table.add_section()
            table.add_row("", "", f"[bold]{escape(portal)}[/]", "", "")
        evidence = f.evidence if len(f.evidence) <= 200 else f.evidence[:199] + "…"
        text = f"{escape(f.title_vi)}\n[dim]{escape(f.title_en)} — {escape(evidence)}[/]"
        table.add_row(severity_text(f.severity), f.check_id, text, f.status.value, f.fingerprint[:10])
    return table


def runs_table(runs: Sequence[ScanRun]) -> Table:
    """Recent scan runs."""
    table = Table(title="Lượt quét / Scan runs")
    for column in ("ID", "Bắt đầu / Started", "Kết thúc / Finished", "Trạng thái / Status", "Cổng / Portals",
                   "Danh mục / Inventory"):
        table.add_column(column)
    for run in runs:
        table.add_row(run.id[:12], local_time(run.started_at), local_time(run.finished_at), run.status.value,
                      f"{run.portals_done}/{run.portal_count}", escape(run.inventory))
    return table
