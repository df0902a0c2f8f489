"""The `soc` command line: parses arguments, calls the library, renders. No logic of its own.

Exit codes: 0 the command ran (findings are not errors); 1 findings at or above --fail-on;
2 bad input or usage (the message names the file, entry and field).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from soc.cli_common import DbOption, console, errors, fail, open_store_or_fail, settings_with, write_json
from soc.cli_compliance import compliance, coverage_app, systems_app
from soc.diff import diff_runs, find_run
from soc.display import ProgressDisplay, diff_table, findings_table, runs_table, summary_table
from soc.inventory import InventoryError, load_inventory, merge_portals_csv
from soc.models import FindingStatus, Severity
from soc.settings import Settings

if TYPE_CHECKING:
    from soc.pipeline import ScanReport

app = typer.Typer(
    help="Bộ công cụ SOC tỉnh Đồng Nai / Đồng Nai provincial SOC toolkit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Danh mục cổng thông tin / Portal inventory.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")

app.add_typer(systems_app, name="systems")
app.add_typer(coverage_app, name="coverage")
app.command("compliance")(compliance)


def scan_and_show(
    inventory_path: Path,
    settings: Settings,
    portals: list[str],
    json_out: Path | None,
    show_findings: bool,
    only: str | None = None,
) -> ScanReport:
    """Load, scan with progress, store, print the summary (and findings); shared by `scan` and `demo`."""
    from soc.pipeline import UnknownPortalError, parse_only, run_scan, select_portals

    try:
        inventory = load_inventory(inventory_path)
        selected = select_portals(inventory, portals)
        collectors = parse_only(only)
    except (InventoryError, UnknownPortalError, ValueError) as exc:
        fail(str(exc))
    if not selected:
        fail(f"{inventory_path}: no portals to scan")
    store = open_store_or_fail(settings)
    try:
        with ProgressDisplay(console, selected, collectors) as progress:
            report = run_scan(inventory, store, settings, inventory_path, portals, observer=progress, only=collectors)
        console.print(summary_table(report))
        if show_findings:
            console.print(findings_table(store.run_findings(report.run.id), "Phát hiện của lượt quét / Run findings"))
    except KeyboardInterrupt:
        errors.print("[bold yellow]Đã dừng / Interrupted:[/] the portals already scanned are stored; "
                     "the run is marked incomplete.")
        raise typer.Exit(130) from None
    finally:
        store.close()
    if json_out is not None:
        write_json(json_out, report.to_json())
    return report


@app.command()
def scan(
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="YAML inventory or CSV of portals.")],
    portal: Annotated[list[str] | None, typer.Option("--portal", "-p", help="Scan only this portal URL.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here ('-' = stdout).")] = None,
    fail_on: Annotated[Severity | None, typer.Option(help="Exit 1 when a finding is this severe or worse.")] = None,
    only: Annotated[str | None, typer.Option(help="Collectors to run: tls,http,label,ports (default all).")] = None,
    db: DbOption = None,
) -> None:
    """Đánh giá các cổng thông tin / Assess the portals (TLS, HTTP, trust label, ports) and store the findings."""
    report = scan_and_show(inventory, settings_with(db), portal or [], json_out, show_findings=False, only=only)
    console.print(f"Đã lưu / Stored in the run [bold]{report.run.id}[/] ({report.run.status.value}).")
    if fail_on is not None:
        # Triage counts: a finding marked false positive or risk accepted does not fail the build.
        store = open_store_or_fail(settings_with(db))
        try:
            active = [f for f in store.run_findings(report.run.id)
                      if f.status in (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED)]
        finally:
            store.close()
        if any(f.severity.rank <= fail_on.rank for f in active):
            raise typer.Exit(1)


@app.command()
def findings(
    status: Annotated[list[FindingStatus] | None, typer.Option("--status", help="Filter (repeatable).")] = None,
    severity: Annotated[list[Severity] | None, typer.Option("--severity", help="Filter (repeatable).")] = None,
    check: Annotated[list[str] | None, typer.Option("--check", help="Check id filter (repeatable).")] = None,
    portal: Annotated[str | None, typer.Option("--portal", help="Only this portal URL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON to stdout.")] = False,
    db: DbOption = None,
) -> None:
    """Danh sách phát hiện / List stored findings."""
    from soc.inventory import normalise_portal_url

    portal_url = None
    if portal:
        try:
            portal_url = normalise_portal_url(portal)
        except ValueError as exc:
            fail(f"--portal {portal}: {exc}")
    store = open_store_or_fail(settings_with(db))
    try:
        rows = store.list_findings(status or [], severity or [], check or [], portal_url)
    finally:
        store.close()
    if as_json:
        write_json(Path("-"), {"schema": "soc.findings/1", "findings": [f.model_dump(mode="json") for f in rows]})
        return
    console.print(findings_table(rows))
    console.print(f"{len(rows)} phát hiện / findings")


@app.command("triage")
def triage(
    fingerprint: Annotated[str, typer.Argument(help="Finding id (full or a unique prefix).")],
    status: Annotated[FindingStatus, typer.Option("--status", help="New status.")],
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the history).")] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who.", envvar="USER")] = "operator",
    db: DbOption = None,
) -> None:
    """Phân loại một phát hiện / Set a finding's status (acknowledge, false positive, accept risk…)."""
    store = open_store_or_fail(settings_with(db))
    try:
        matches = [f for f in store.list_findings() if f.fingerprint.startswith(fingerprint)]
        if len(matches) != 1:
            fail(f"{fingerprint}: {'no finding' if not matches else f'{len(matches)} findings'} with this id")
        updated = store.set_status(matches[0].fingerprint, status, actor, note)
    finally:
        store.close()
    console.print(findings_table([updated]))


@app.command()
def diff(
    run_a: Annotated[str, typer.Argument(help="Earlier run id (or unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="Later run id (or unique prefix).")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON to stdout.")] = False,
    db: DbOption = None,
) -> None:
    """Thay đổi giữa hai lượt quét / What changed between two scan runs."""
    store = open_store_or_fail(settings_with(db))
    try:
        try:
            changes = diff_runs(store, find_run(store, run_a), find_run(store, run_b))
        except ValueError as exc:
            fail(str(exc))
    finally:
        store.close()
    if as_json:
        write_json(Path("-"), changes.to_json())
    else:
        console.print(diff_table(changes))


@app.command()
def runs(db: DbOption = None, limit: int = 20) -> None:
    """Các lượt quét gần đây / Recent scan runs."""
    store = open_store_or_fail(settings_with(db))
    try:
        console.print(runs_table(store.list_runs(limit)))
    finally:
        store.close()


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of every lab portal (0 = ephemeral).")] = 8443,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON report.")] = None,
    db: DbOption = None,
) -> None:
    """Dựng phòng lab cổng thông tin trên loopback và quét / Start the loopback portal lab and scan it."""
    from soc.lab import PortalLab

    settings = settings_with(db)
    workdir = settings.db.parent / "lab"
    console.print(f"Phòng lab / Portal lab: {workdir} (127.0.10.0/24, port {port or 'ephemeral'})")
    try:
        lab = PortalLab(workdir, port=port)
        lab.start()
    except OSError as exc:
        fail(f"cannot start the portal lab on port {port}: {exc} (try --port 0)")
    try:
        scan_and_show(lab.inventory_path, settings, [], json_out, show_findings=True)
    finally:
        lab.stop()
    console.print(f"Kho dữ liệu / Store: {settings.db} — xem lại / review: soc findings --db {settings.db}")


@inventory_app.command("check")
def inventory_check(path: Annotated[Path, typer.Argument(help="YAML inventory or CSV of portals.")]) -> None:
    """Kiểm tra danh mục / Validate an inventory and summarise it."""
    try:
        inventory = load_inventory(path)
    except InventoryError as exc:
        fail(str(exc))
    console.print(f"{escape(str(path))}: OK — {len(inventory.agencies)} cơ quan / agencies, "
                  f"{len(inventory.portals)} cổng / portals, {len(inventory.systems)} hệ thống / systems")


@inventory_app.command("import")
def inventory_import(
    csv_path: Annotated[Path, typer.Argument(help="CSV of portals (url, agency, agency_name, address, …).")],
    into: Annotated[Path, typer.Option("--into", help="YAML inventory to add them to (created if missing).")],
) -> None:
    """Nhập cổng từ CSV / Merge portals from a CSV into a YAML inventory (all or nothing)."""
    if not csv_path.is_file():
        fail(f"{csv_path}: file not found")
    try:
        added, updated = merge_portals_csv(csv_path, into)
    except InventoryError as exc:
        fail(str(exc))
    console.print(f"{escape(str(into))}: +{added} cổng mới / new, {updated} cập nhật / updated")


def main() -> None:
    """Entry point of the `soc` script."""
    from cryptography.utils import CryptographyDeprecationWarning

    # The standard root stores hold a few old roots with negative serials; that is not the user's concern.
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    app()
