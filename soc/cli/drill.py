"""`soc drill …`: check scenario files, run drills (terminal or scripted), draft scenarios from findings,
after-action reports and corrective actions."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from drills.responses import ResponsesError, read_responses
from drills.scenario import json_schema
from drills.validate import read_file, read_text
from soc.cli.common import (
    DbOption,
    InventoryOption,
    console,
    errors,
    fail,
    load_inventory_or_fail,
    service_context,
    shown,
    write_json,
)
from soc.cli.drill_terminal import run_terminal
from soc.core.clock import local_time
from soc.core.drill_records import ActionStatus
from soc.core.files import atomic_write, atomic_write_text
from soc.services import drill_reports
from soc.services import drills as service

drill_app = typer.Typer(help="Diễn tập ứng cứu sự cố / Tabletop incident-response drills.", no_args_is_help=True)

DateOption = Annotated[datetime | None, typer.Option(
    "--date", formats=["%Y-%m-%d"], help="Drill date (YYYY-MM-DD): the rule set in force on it gives the roles and "
    "reporting deadlines (default: today).")]


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@drill_app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files (YAML).")],
    on: DateOption = None,
) -> None:
    """Kiểm tra kịch bản / Check scenario files: schema and cross-references (exit 2 listing every problem)."""
    bad = 0
    for path in files:
        checked = read_file(path, _day(on))
        if checked.ok:
            errors.print(f"[green]hợp lệ / valid[/]: {shown(path)}", soft_wrap=True)
            continue
        bad += 1
        for problem in checked.problems:
            typer.echo(str(problem))
    if bad:
        errors.print(f"[red]{bad} / {len(files)} tệp có lỗi / files have problems[/]")
        raise typer.Exit(2)


@drill_app.command("schema")
def schema(out: Annotated[Path, typer.Option("--out", help="Where to write it ('-': stdout).")] = Path("-")) -> None:
    """JSON Schema của kịch bản / The scenario files' JSON Schema (from the engine's models)."""
    write_json(out, json_schema())


@drill_app.command("run")
def run(
    ctx: typer.Context,
    scenario: Annotated[Path | None, typer.Argument(help="Scenario file (YAML).")] = None,
    responses: Annotated[Path | None, typer.Option(
        "--responses", help="Scripted mode: a JSON file of recorded responses ([] = nobody responds).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the scorecard as JSON ('-': stdout).")] = None,
    session_id: Annotated[str | None, typer.Option("--session", help="Resume this session (terminal mode).")] = None,
    on: DateOption = None,
    facilitator: Annotated[str | None, typer.Option("--facilitator", help="Who runs the drill.")] = None,
    db: DbOption = None,
) -> None:
    """Chạy diễn tập / Run a drill: interactive around one screen, or scripted from recorded responses."""
    if responses is None:
        if scenario is None and session_id is None:
            fail("give a scenario file, or --session ID to resume a session")
        with service_context(ctx, db, facilitator) as context:
            run_terminal(context, scenario, session_id, _day(on))
        return
    if scenario is None:
        fail("scripted mode needs the scenario file: soc drill run FILE --responses R.json")
    try:
        recorded = read_responses(responses)
    except ResponsesError as exc:
        fail(str(exc))
    with service_context(ctx, db, facilitator) as context:
        finished = service.run_scripted(context, scenario, recorded, drill_date=_day(on), facilitator=facilitator)
    card = finished.scorecard
    payload = {"session": finished.session.id, "drill_date": finished.session.drill_date.isoformat(),
               **card.model_dump(mode="json"),
               "corrective_actions": [a.model_dump(mode="json") for a in finished.actions]}
    if json_out is not None:
        write_json(json_out, payload)
    if json_out is None or str(json_out) != "-":
        console.print(f"Phiên / session {finished.session.id}: điểm / score [bold]{card.score.value}[/]/100 "
                      f"({'đạt' if card.score.passed else 'chưa đạt'} / {'pass' if card.score.passed else 'fail'}); "
                      f"{len(finished.actions)} hành động khắc phục / corrective actions")


@drill_app.command("sessions")
def sessions(ctx: typer.Context, db: DbOption = None,
             as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False) -> None:
    """Các phiên diễn tập / Drill sessions, newest first."""
    with service_context(ctx, db, writes=False) as context:
        found = context.backend.drills.sessions()
    if as_json:
        typer.echo(json.dumps([s.model_dump(mode="json", exclude={"scenario_text", "scorecard"}) for s in found],
                              ensure_ascii=False, indent=2))
        return
    table = Table(title="Phiên diễn tập / Drill sessions")
    for column in ("Phiên / Session", "Ngày / Date", "Kịch bản / Scenario", "Trạng thái / Status", "Điểm / Score"):
        table.add_column(column)
    for item in found:
        table.add_row(item.id, f"{item.drill_date:%d/%m/%Y}", shown(item.title_vi), item.status.value,
                      "" if item.score is None else f"{item.score:.1f}")
    console.print(table)


@drill_app.command("actions")
def actions(ctx: typer.Context, db: DbOption = None,
            status: Annotated[ActionStatus | None, typer.Option("--status", help="open | done | confirmed")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False) -> None:
    """Hành động khắc phục / Corrective actions from drills, by due date."""
    with service_context(ctx, db, writes=False) as context:
        found = context.backend.drills.actions(status=status)
    if as_json:
        typer.echo(json.dumps([a.model_dump(mode="json") for a in found], ensure_ascii=False, indent=2))
        return
    table = Table(title="Hành động khắc phục / Corrective actions")
    for column in ("Mã / Id", "Đơn vị / Owner", "Hạn / Due", "Trạng thái / Status", "Nội dung / Action"):
        table.add_column(column)
    for item in found:
        table.add_row(item.id, shown(item.owner_agency or "—"), f"{item.due:%d/%m/%Y}", item.status.value,
                      shown(item.text_vi))
    console.print(table)


@drill_app.command("done")
def done(ctx: typer.Context, action_id: Annotated[str, typer.Argument(help="Corrective action id.")],
         note: Annotated[str | None, typer.Option("--note", help="What was done.")] = None,
         actor: Annotated[str | None, typer.Option("--actor", help="Who says so.")] = None,
         db: DbOption = None) -> None:
    """Đánh dấu đã khắc phục / Mark a corrective action done (a later drill or scan confirms it)."""
    with service_context(ctx, db, actor) as context:
        action = service.mark_done(context, action_id, note)
    console.print(f"{shown(action.id)}: {action.status.value}"
                  + (f" ({local_time(action.confirmed_at)})" if action.confirmed_at else ""))


@drill_app.command("generate")
def generate(
    ctx: typer.Context,
    from_findings: Annotated[bool, typer.Option("--from-findings", help="Draft from the open findings (the only "
                                                "source for now).")] = False,
    agency: Annotated[str | None, typer.Option("--agency", help="Only this agency's findings.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the draft ('-': stdout).")] = Path("-"),
    inventory: InventoryOption = None,
    on: DateOption = None,
    db: DbOption = None,
) -> None:
    """Dựng kịch bản từ điểm yếu hiện có / Draft a scenario from the province's current exposures."""
    if not from_findings:
        fail("say where to draft from: --from-findings")
    loaded = load_inventory_or_fail(inventory) if inventory is not None else None
    with service_context(ctx, db, writes=False) as context:
        drafted = service.draft_from_findings(context, loaded, agency, _day(on))
    checked = read_text(drafted.text, str(out), _day(on))
    if not checked.ok:  # our own output must validate; say so rather than write a broken file
        fail("the draft does not validate (a defect of the builder):\n" + "\n".join(map(str, checked.problems)))
    if str(out) == "-":
        typer.echo(drafted.text, nl=False)
    else:
        atomic_write_text(out, drafted.text)
    first = drafted.exposures[0]
    errors.print(f"Bản nháp / draft [bold]{drafted.scenario_id}[/] từ / from {first.finding.check_id} "
                 f"{shown(first.finding.portal_url)} ({len(drafted.exposures)} điểm yếu / exposures) — rà soát rồi "
                 f"lưu vào playbooks/ / review it, then save it in playbooks/", soft_wrap=True)


class ReportLanguage(StrEnum):
    """The report's first language."""

    VI = "vi"
    EN = "en"


class ReportFormat(StrEnum):
    """What the report is written as."""

    PDF = "pdf"
    HTML = "html"


@drill_app.command("report")
def report(ctx: typer.Context, session_id: Annotated[str, typer.Argument(help="Drill session id (ended).")],
           out: Annotated[Path, typer.Option("--out", help="Where to write the report.")],
           lang: Annotated[ReportLanguage, typer.Option("--lang", help="vi (default) | en")] = ReportLanguage.VI,
           file_format: Annotated[ReportFormat, typer.Option("--format", help="pdf (default) | html")] = (
               ReportFormat.PDF),
           db: DbOption = None) -> None:
    """Báo cáo sau diễn tập / After-action report of an ended session (A4 PDF or one HTML page)."""
    with service_context(ctx, db, writes=False) as context:
        if file_format is ReportFormat.HTML:
            data = drill_reports.report_html(context, session_id, lang.value).encode("utf-8")
        else:
            data = drill_reports.report_pdf(context, session_id, lang.value)
    atomic_write(out, lambda tmp: tmp.write_bytes(data), suffix=f".{file_format.value}")
    console.print(f"Báo cáo sau diễn tập / after-action report: {shown(out)} ({len(data):,} bytes)")
