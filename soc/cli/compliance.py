"""`soc systems …`, `soc coverage …` and `soc compliance`: the register and the plan's KPIs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from soc.cli.common import (
    DbOption,
    InventoryOption,
    console,
    fail,
    load_inventory_or_fail,
    service_context,
    shown,
    write_json,
)
from soc.compliance.history import RegisterChanges
from soc.compliance.kpi import Kpi
from soc.compliance.models import ApprovalStatus
from soc.core.clock import local_time, today
from soc.inventory import Inventory
from soc.schemas.compliance import ComplianceOutput
from soc.services import compliance as compliance_service
from soc.services import register as register_service
from soc.services.context import ServiceContext

systems_app = typer.Typer(help="Sổ đăng ký hệ thống thông tin / Register of information systems.", no_args_is_help=True)
coverage_app = typer.Typer(help="Phòng chống mã độc / Anti-malware coverage.", no_args_is_help=True)

STATUS_STYLE = {
    ApprovalStatus.APPROVED: "green", ApprovalStatus.APPRAISED: "cyan", ApprovalStatus.UNDER_APPRAISAL: "cyan",
    ApprovalStatus.SUBMITTED: "cyan", ApprovalStatus.DOSSIER_DRAFTED: "yellow", ApprovalStatus.RETURNED: "yellow",
    ApprovalStatus.NOT_STARTED: "red", ApprovalStatus.REJECTED: "bold red",
}
Importer = Callable[[ServiceContext, Path, Inventory, "datetime | None"], "register_service.ImportResult[Any]"]
KPI_STYLE = {"met": "green", "not_met": "bold red", "no_data": "dim"}
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who applies the file (default: $USER).",
                                                 envvar="USER")]
EffectiveOption = Annotated[datetime | None, typer.Option(
    "--effective", help="The date the file's undated facts were true (default: the 'as of' date in the file's "
                        "title, else now). Dated facts (decision dates) keep their own dates.")]
KnownAtOption = Annotated[datetime | None, typer.Option(
    "--as-known-at", formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y"],
    help="Figures as the toolkit knew them at that moment (local time), e.g. to rebuild a report once sent.")]
AsOfOption = Annotated[datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d", "%d/%m/%Y"],
                                                     help="Date (yyyy-mm-dd or dd/mm/yyyy, default today).")]


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def _changes_table(title: str, changes: RegisterChanges) -> Table:
    table = Table(title=title)
    for column in ("Mã / Key", "Trường / Field", "Cũ / Old", "Mới / New"):
        table.add_column(column, overflow="fold")
    for key in changes.added[:200]:
        table.add_row(shown(key), "[green]thêm mới / added[/]", "", "")
    for change in changes.fields[:200]:
        table.add_row(shown(change.key), shown(change.field), shown(change.old), shown(change.new))
    table.caption = (f"{len(changes.added)} thêm / added, {len(changes.changed)} sửa / changed, "
                     f"{len(changes.unchanged)} không đổi / unchanged")
    return table


@systems_app.command("import")
def systems_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="XLSX or CSV register (Vietnamese or English headers).")],
    inventory: InventoryOption = None, actor: ActorOption = None, effective: EffectiveOption = None,
    db: DbOption = None,
) -> None:
    """Nhập sổ đăng ký / Import a register file: all of it or nothing, every problem listed."""
    _import(ctx, path, inventory, actor, effective, db, register_service.import_systems)


@systems_app.command("export")
def systems_export(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="XLSX or CSV to write (same format as import).")],
    inventory: InventoryOption = None, as_of: AsOfOption = None,
    english: Annotated[bool, typer.Option(help="English headers and values.")] = False, db: DbOption = None,
) -> None:
    """Xuất sổ đăng ký / Export the register as it stood on a date."""
    inv = load_inventory_or_fail(inventory)
    with service_context(ctx, db, writes=False) as context:
        records = register_service.export_systems(context, path, inv, _day(as_of), english=english)
    console.print(f"{shown(path)}: {len(records)} hệ thống / systems")


@systems_app.command("list")
def systems_list(
    ctx: typer.Context,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    as_of: AsOfOption = None, db: DbOption = None,
) -> None:
    """Danh sách hệ thống / List the register, coloured by approval status."""
    with service_context(ctx, db, writes=False) as context:
        day = _day(as_of) or today(context.clock)
        records = register_service.systems_as_of(context, day, agency)
    table = Table(title=f"Hệ thống thông tin / Information systems — {day:%d/%m/%Y}")
    for column in ("Mã / ID", "Tên / Name", "Cơ quan / Agency", "Đề xuất", "Phê duyệt", "Trạng thái / Status",
                   "Quyết định / Decision", "Vận hành", "Yêu cầu / Req."):
        table.add_column(column, overflow="fold")
    for r in records:
        style = STATUS_STYLE[r.status]
        decision = " ".join(x for x in (r.decision_number or "", f"{r.decision_date:%d/%m/%Y}" if r.decision_date
                                        else "") if x)
        table.add_row(shown(r.id), shown(r.name), shown(r.agency), str(r.proposed_level or "—"),
                      str(r.approved_level or "—"), f"[{style}]{r.status.value}[/]", shown(decision) or "—",
                      "có / yes" if r.in_operation else "không / no", r.requirements.value if r.requirements else "—")
    console.print(table)


@systems_app.command("history")
def systems_history(
    ctx: typer.Context, system_id: Annotated[str, typer.Argument(help="System id.")], db: DbOption = None,
) -> None:
    """Lịch sử thay đổi / Who changed what, when, for one system."""
    with service_context(ctx, db, writes=False) as context:
        history = register_service.system_history(context, system_id)
    table = Table(title=f"Lịch sử / History — {shown(system_id)}")
    for column in ("Từ / From", "Người / Who", "Tệp / File", "Thay đổi / Changes"):
        table.add_column(column, overflow="fold")
    for entry in history:
        text = "; ".join(f"{c.field}: {c.old} → {c.new}" for c in entry.changes) or "—"
        table.add_row(local_time(entry.valid_from), shown(entry.actor), shown(entry.source), shown(text))
    console.print(table)


@coverage_app.command("import")
def coverage_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="XLSX or CSV: agency, total computers, protected, reporting.")],
    inventory: InventoryOption = None, actor: ActorOption = None, effective: EffectiveOption = None,
    db: DbOption = None,
) -> None:
    """Nhập số liệu phòng chống mã độc / Import anti-malware coverage per agency."""
    _import(ctx, path, inventory, actor, effective, db, register_service.import_coverage)


def _import(ctx: typer.Context, path: Path, inventory: Path | None, actor: str | None, effective: datetime | None,
            db: Path | None, importer: Importer) -> None:
    """Validate and apply one file, then show warnings, what changed and the compliance run."""
    inv = load_inventory_or_fail(inventory)
    with service_context(ctx, db, actor) as context:
        result = importer(context, path, inv, effective)
    if result.evaluation_error is not None:
        fail(f"{path.name} was applied, but the compliance evaluation failed: {result.evaluation_error}")
    for warning in result.sheet.warnings:
        console.print(f"[yellow]Cảnh báo / Warning:[/] {shown(warning)}")
    console.print(_changes_table(f"{shown(path.name)}: thay đổi / changes", result.changes))
    if result.effective is not None:
        basis = {"option": "--effective", "file": "ngày số liệu ghi trong tệp / the file's 'as of' date",
                 "import": "ngày nhập / the import date"}[result.effective_basis]
        console.print(f"Hiệu lực / Effective: {local_time(result.effective)} ({basis})")
        if result.effective_basis == "import":
            console.print("[yellow]Cảnh báo / Warning:[/] tệp không ghi ngày số liệu: các thông tin không có ngày "
                          "riêng được tính từ hôm nay / the file states no 'as of' date: its undated facts count "
                          "from today; pass --effective DATE if it describes an earlier date")
    if result.changes.backdated:
        console.print(f"{len(result.changes.backdated)} hệ thống mới được tính từ ngày quyết định / new records "
                      "dated back to their own decision or assessment dates")
    if result.evaluation is not None:
        console.print(f"Đã đánh giá tuân thủ / Compliance evaluated: run {result.evaluation.id[:12]}")


def _kpi_table(title: str, kpis: list[Kpi]) -> Table:
    table = Table(title=title)
    for column in ("Chỉ tiêu / Target", "Giá trị / Value", "Tử/Mẫu", "Mục tiêu", "Đạt / Status", "Δ tháng"):
        table.add_column(column, overflow="fold")
    for kpi in kpis:
        value = f"{kpi.percent:.2f}%" if kpi.kind == "rate" and kpi.percent is not None else (
            str(int(kpi.percent)) if kpi.percent is not None else "—")
        change = "—" if kpi.change is None else f"{kpi.change:+.2f}"
        table.add_row(f"{shown(kpi.title_vi)}\n[dim]{shown(kpi.title_en)}[/]", value,
                      f"{kpi.numerator}/{kpi.denominator}", kpi.target, f"[{KPI_STYLE[kpi.status]}]{kpi.status}[/]",
                      change)
    return table


def compliance(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    agency: Annotated[str | None, typer.Option(help="Only this agency id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON to stdout (docs/compliance.md).")] = False,
    known_at: KnownAtOption = None,
    inventory: InventoryOption = None, db: DbOption = None,
) -> None:
    """Chỉ tiêu an toàn thông tin / The plan's security KPIs for the province and each agency."""
    inv = load_inventory_or_fail(inventory)
    with service_context(ctx, db, writes=False) as context:
        result = compliance_service.kpis(context, inv, _day(as_of), agency, known_at)
    if as_json:
        write_json(Path("-"), ComplianceOutput.of(result).to_json())
        return
    rules = result.ruleset
    note = " — [yellow]cần đối chiếu Công báo / to be confirmed against the official gazette[/]" if (
        rules.to_be_confirmed) else ""
    known = f"; theo dữ liệu đã có lúc / as known at {local_time(result.known_at)}" if result.known_at else ""
    console.print(f"Ngày / As of {result.as_of:%d/%m/%Y}{known}; quy định / rules: {rules.id}{note}")
    console.print(f"Báo cáo gửi / Report to: {shown(', '.join(rules.report_to))}")
    scopes = ([result.province] if agency is None else []) + result.agencies
    for scope in scopes:
        title = scope.name if scope is result.province else f"{scope.name} ({scope.id})"
        console.print(_kpi_table(shown(title), scope.kpis))
        if scope.note:
            console.print(f"[yellow]{shown(scope.note)}[/]")
        if scope.sla is not None and (scope.sla.closed_within or scope.sla.closed_after or scope.sla.breached_open):
            sla = scope.sla
            rate = "—" if sla.percent is None else f"{sla.percent:.1f}%"
            breached = "" if sla.breached_open is None else (
                f"; quá hạn đang mở / open past deadline: {sla.breached_open}")
            console.print(f"Xử lý đúng hạn SLA (30 ngày) / closed within SLA (30 days): {rate} "
                          f"({sla.closed_within}/{sla.closed_within + sla.closed_after}){breached}")
