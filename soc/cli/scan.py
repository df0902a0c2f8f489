"""`soc scan`, `soc demo`, `soc runs`, `soc diff`: assess portals and look at the runs."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from soc.cli.common import (
    DbOption,
    console,
    errors,
    fail,
    service_context,
    settings_with,
    shown,
    state,
    write_json,
)
from soc.cli.display import ProgressDisplay, diff_table, findings_table, runs_table, summary_table
from soc.core.errors import InputError
from soc.core.models import Role, Severity, User
from soc.core.settings import Settings
from soc.schemas.scan import ScanOutput
from soc.services.context import ServiceContext, ServiceError


def scan_and_show(ctx: typer.Context, inventory_path: Path, settings: Settings, portals: list[str],
                  json_out: Path | None, show_findings: bool, only: str | None = None,
                  fail_on: Severity | None = None) -> ScanOutput:
    """Load, scan with progress, store, print the summary (and findings); shared by `scan` and `demo`.

    Exits 1 when `fail_on` is given and an active finding of the run is that severe or worse.
    """
    from soc.services.inventory import check_inventory
    from soc.services.scans import fails_on, plan_scan, scan_output, scan_portals

    try:
        inventory = check_inventory(inventory_path)
        selected, collectors = plan_scan(inventory, str(inventory_path), portals, only)
    except InputError as exc:
        fail(str(exc))
    with service_context(ctx, None, settings=settings) as context:
        try:
            with ProgressDisplay(console, selected, collectors) as progress:
                report = scan_portals(context, inventory, str(inventory_path), selected, collectors, progress)
            output = scan_output(report)
            console.print(summary_table(output))
            if show_findings:
                run_findings = context.backend.findings.run_findings(report.run.id)
                console.print(findings_table(run_findings, "Phát hiện của lượt quét / Run findings"))
        except KeyboardInterrupt:
            errors.print("[bold yellow]Đã dừng / Interrupted:[/] the portals already scanned are stored; "
                         "the run is marked incomplete.")
            raise typer.Exit(130) from None
        failed = fail_on is not None and fails_on(context, report.run.id, fail_on)
    if json_out is not None:
        write_json(json_out, output.to_json())
    console.print(f"Đã lưu / Stored in the run [bold]{report.run.id}[/] ({report.run.status.value}).")
    if failed:
        raise typer.Exit(1)
    return output


def scan(
    ctx: typer.Context,
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="YAML inventory or CSV of portals.")],
    portal: Annotated[list[str] | None, typer.Option("--portal", "-p", help="Scan only this portal URL.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here ('-' = stdout).")] = None,
    fail_on: Annotated[Severity | None, typer.Option(help="Exit 1 when a finding is this severe or worse.")] = None,
    only: Annotated[str | None, typer.Option(help="Collectors to run: tls,http,label,ports (default all).")] = None,
    db: DbOption = None,
) -> None:
    """Đánh giá các cổng thông tin / Assess the portals (TLS, HTTP, trust label, ports) and store the findings."""
    scan_and_show(ctx, inventory, settings_with(db), portal or [], json_out, show_findings=False, only=only,
                  fail_on=fail_on)


def demo(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port of every lab portal (0 = ephemeral).")] = 8443,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON report.")] = None,
    db: DbOption = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Then serve the dashboard with the scheduler "
                                        "until Ctrl-C (--no-serve: scan, show and stop, for scripts).")] = True,
    web_port: Annotated[int, typer.Option("--web-port", min=0, max=65535,
                                          help="Port of the dashboard on 127.0.0.1 (0 = ephemeral).")] = 8000,
    case: Annotated[list[str] | None, typer.Option("--case", help="Only this lab case (repeatable; default all).")]
    = None,
) -> None:
    """Dựng phòng lab cổng thông tin trên loopback, quét và mở bảng điều khiển / Start the loopback portal lab,
    scan it, then serve the dashboard (with a demo operator) until Ctrl-C."""
    from soc.lab import PortalLab

    settings = settings_with(db)
    workdir = settings.db.parent / "lab"
    console.print(f"Phòng lab / Portal lab: {shown(workdir)} (127.0.10.0/24, port {port or 'ephemeral'})")
    try:
        lab = PortalLab(workdir, port=port, cases=case or None)
        lab.start()
    except ValueError as exc:
        fail(str(exc))  # an unknown --case (the message lists the known ones), a bad --port
    except OSError as exc:
        fail(f"cannot start the portal lab on port {port}: {exc} (try --port 0)")
    try:
        scan_and_show(ctx, lab.inventory_path, settings, [], json_out, show_findings=True)
        store = shown(settings.db)
        console.print(f"Kho dữ liệu / Store: {store} — xem lại / review: soc findings --db {store}")
        if serve:
            _serve_demo(ctx, settings, lab.inventory_path, web_port)
    finally:
        lab.stop()


DEMO_USER = "demo"


def _serve_demo(ctx: typer.Context, settings: Settings, inventory: Path, web_port: int) -> None:
    """The dashboard on the demo's store, the scheduler scanning the lab (all portals at once), a demo operator."""
    from soc.cli.serve import run_service

    settings = settings.model_copy(update={
        "inventory": inventory, "schedule": settings.schedule.model_copy(update={"scan_window_minutes": 0})})
    with service_context(ctx, None, "demo", settings=settings) as context:
        user, password = demo_operator(context)

    def announce(address: str) -> None:
        console.print(f"Đăng nhập / Sign in: {address}login — người dùng / user [bold]{user.name}[/] "
                      f"({user.role.value}), mật khẩu / password [bold]{escape(password)}[/] (chỉ hiện một lần / "
                      "shown once). Ctrl-C dừng tất cả / stops everything.", soft_wrap=True)

    try:
        run_service(settings, state(ctx).clock, "127.0.0.1", web_port, announce=announce)
    except KeyboardInterrupt:
        console.print("Đang dừng / Stopping: bảng điều khiển, bộ lập lịch, phòng lab / dashboard, scheduler, lab")
        raise typer.Exit(130) from None


def demo_operator(context: ServiceContext) -> tuple[User, str]:
    """The demo's operator account with a new random password (created, or its password reset and re-enabled)."""
    from soc.services.users import add_user, get_user, reset_password, set_disabled

    password = secrets.token_urlsafe(12)
    try:
        existing = get_user(context, DEMO_USER)
    except ServiceError:
        return add_user(context, DEMO_USER, Role.OPERATOR, password), password
    user = reset_password(context, DEMO_USER, password)
    return (set_disabled(context, DEMO_USER, False) if existing.disabled else user), password


def runs(ctx: typer.Context, db: DbOption = None, limit: int = 20,
         health: Annotated[bool, typer.Option("--health", help="Also the scheduler's health checks (ops).")] = False
         ) -> None:
    """Các lượt quét gần đây / Recent scan runs (and compliance evaluations)."""
    from soc.services.runs import list_runs

    with service_context(ctx, db, writes=False) as context:
        console.print(runs_table(list_runs(context, limit, health)))


def diff(
    ctx: typer.Context,
    run_a: Annotated[str, typer.Argument(help="Earlier run id (or unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="Later run id (or unique prefix).")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON to stdout.")] = False,
    db: DbOption = None,
) -> None:
    """Thay đổi giữa hai lượt quét / What changed between two scan runs."""
    from soc.services.runs import diff_runs

    with service_context(ctx, db, writes=False) as context:
        changes = diff_runs(context, run_a, run_b)
    if as_json:
        write_json(Path("-"), changes.to_json())
    else:
        console.print(diff_table(changes))
