"""Rendering for the terminal (Rich): tables and progress. Nothing here decides anything.

All text shown may come from scanned servers: it goes through `shown` (control and bidi characters made
visible, Rich markup escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from soc.cli.common import shown
from soc.core.clock import local_time
from soc.core.models import ScanRun, Severity, StoredFinding
from soc.inventory import Portal
from soc.schemas.findings import DiffOutput
from soc.schemas.scan import ScanFinding, ScanOutput

if TYPE_CHECKING:  # the scan pipeline is heavy to import; commands that do not scan should not pay for it
    from soc.scan.pipeline import PortalResult

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
MANY_PORTALS = 25
"""Above this, finished portals leave the progress display to keep the screen readable."""


def severity_text(severity: Severity) -> str:
    """Coloured severity label."""
    return f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]"


class ProgressDisplay:
    """A ScanObserver that draws an overall bar and one bar per portal (one step per collector, then stored)."""

    def __init__(self, console: Console, portals: Sequence[Portal], collectors: Sequence[str]) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self._steps = len(collectors) + 1
        self._overall = self._progress.add_task("[bold]Tổng / Total", total=len(portals), state="")
        self._tasks: dict[str, TaskID] = {
            p.url: self._progress.add_task(shown(p.url), total=self._steps, state="chờ / queued") for p in portals
        }
        self._hide_done = len(portals) > MANY_PORTALS

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def portal_event(self, portal: Portal, event: str) -> None:
        """Advance a portal's bar when a collector reports; show the TLS probe's verdict."""
        task = self._tasks[portal.url]
        if event in ("reachable", "unreachable"):
            state = "đang quét / scanning" if event == "reachable" else "không kết nối / unreachable"
            self._progress.update(task, state=state)
        else:
            self._progress.update(task, advance=1, state=f"{event} ✓")

    def portal_done(self, result: PortalResult) -> None:
        """Close a portal's bar and advance the overall one."""
        counts = f"{len(result.findings)} phát hiện / findings"
        task = self._tasks[result.portal.url]
        self._progress.update(task, completed=self._steps, state=counts, visible=not self._hide_done)
        self._progress.advance(self._overall)


def _portal_label(url: str) -> str:
    """A portal URL as shown in narrow tables: without the scheme and the trailing slash."""
    return shown(url.removeprefix("https://").rstrip("/"))


def _severity_counts(findings: Sequence[ScanFinding]) -> str:
    counts = {s: 0 for s in Severity}
    for finding in findings:
        counts[finding.severity] += 1
    return " ".join(f"[{SEVERITY_STYLE[s]}]{s.value[0].upper()}{n}[/]" for s, n in counts.items() if n) or "—"


def summary_table(report: ScanOutput) -> Table:
    """Per-portal summary: TLS grade, score, findings by severity, changes since the last scan."""
    table = Table(title=f"Kết quả quét / Scan results — {report.run.id[:8]} ({report.run.status.value})")
    table.add_column("Cổng / Portal", no_wrap=True, overflow="ellipsis", max_width=48)
    table.add_column("TLS", no_wrap=True)
    table.add_column("Điểm\nScore", justify="right")
    table.add_column("Phát hiện\nFindings", no_wrap=True)
    table.add_column("Mới\nNew", justify="right")
    table.add_column("Còn\nOpen", justify="right")
    table.add_column("Hết\nGone", justify="right")
    for portal in report.portals:
        changes = portal.changes
        grade = portal.grade or "—"
        if portal.grade_without_trust:
            grade += f" ({portal.grade_without_trust})"
        table.add_row(_portal_label(portal.url), grade, str(portal.score if portal.score is not None else "—"),
                      _severity_counts(portal.findings), str(changes.new or ""), str(changes.still_open or ""),
                      str(changes.resolved or ""))
    totals = report.changes
    table.caption = (f"Tổng / Total: {totals.new + totals.reopened} mới / new, {totals.still_open} còn / "
                     f"still open, {totals.resolved} đã khắc phục / resolved\n"
                     "C/H/M/L/I = critical/high/medium/low/info; T = không tin cậy / not trusted")
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
            table.add_row("", "", f"[bold]{shown(portal)}[/]", "", "")
        evidence = f.evidence if len(f.evidence) <= 200 else f.evidence[:199] + "…"
        text = f"{shown(f.title_vi)}\n[dim]{shown(f.title_en)} — {shown(evidence)}[/]"
        table.add_row(severity_text(f.severity), shown(f.check_id), text, f.status.value, f.fingerprint[:10])
    return table


def runs_table(runs: Sequence[ScanRun]) -> Table:
    """Recent scan runs."""
    table = Table(title="Lượt quét / Scan runs")
    for column in ("ID", "Bắt đầu / Started", "Kết thúc / Finished", "Trạng thái / Status", "Cổng / Portals",
                   "Danh mục / Inventory"):
        table.add_column(column)
    for run in runs:
        table.add_row(run.id[:12], local_time(run.started_at), local_time(run.finished_at), run.status.value,
                      f"{run.portals_done}/{run.portal_count}", shown(run.inventory))
    return table


def diff_table(diff: DiffOutput) -> Table:
    """Changes between two runs, one row per finding."""
    table = Table(title=f"Thay đổi / Changes {diff.run_a[:8]} → {diff.run_b[:8]}")
    for column in ("Thay đổi\nChange", "Mức\nSev.", "Cổng / Portal", "Mã kiểm tra / Check"):
        table.add_column(column, overflow="fold")
    for label, items in (("mới / new", diff.new), ("còn / still open", diff.still_open),
                         ("hết / resolved", diff.resolved)):
        for f in sorted(items, key=lambda f: (f.severity.rank, f.portal_url, f.check_id)):
            table.add_row(label, severity_text(f.severity), shown(f.portal_url), shown(f.check_id))
    counts = diff.counts
    table.caption = f"{counts.new} mới / new, {counts.still_open} còn / still open, {counts.resolved} hết / resolved"
    return table
