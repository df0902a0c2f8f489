"""`soc findings` and `soc triage`: the triage view and status changes."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import (
    DbOption,
    InventoryOption,
    console,
    default_actor,
    fail,
    load_inventory_or_fail,
    service_context,
    write_json,
)
from soc.cli.display import findings_table
from soc.core.models import FindingStatus, Severity
from soc.services.findings import list_findings, triage


def findings(
    ctx: typer.Context,
    status: Annotated[list[FindingStatus] | None, typer.Option("--status", help="Filter (repeatable).")] = None,
    severity: Annotated[list[Severity] | None, typer.Option("--severity", help="Filter (repeatable).")] = None,
    check: Annotated[list[str] | None, typer.Option("--check", help="Check id filter (repeatable).")] = None,
    portal: Annotated[str | None, typer.Option("--portal", help="Only this portal URL.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON to stdout.")] = False,
    db: DbOption = None,
) -> None:
    """Danh sách phát hiện / List stored findings."""
    with service_context(ctx, db, writes=False) as context:
        output = list_findings(context, status or [], severity or [], check or [], portal)
    if as_json:
        write_json(Path("-"), output.to_json())
        return
    console.print(findings_table(output.findings))
    console.print(f"{len(output.findings)} phát hiện / findings")


def triage_command(
    ctx: typer.Context,
    fingerprint: Annotated[str, typer.Argument(help="Finding id (full or a unique prefix).")],
    status: Annotated[FindingStatus, typer.Option("--status", help="New status.")],
    note: Annotated[str | None, typer.Option("--note", help="Why (kept in the history; required except to "
                                             "acknowledge).")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="risk_accepted: last day, YYYY-MM-DD (the "
                                                "finding reopens then).")] = None,
    approver: Annotated[str | None, typer.Option("--approver", help="risk_accepted: who accepts the risk.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who (default: $USER).", envvar="USER")] = None,
    inventory: InventoryOption = None,
    db: DbOption = None,
) -> None:
    """Phân loại một phát hiện / Set a finding's status (acknowledge, false positive, accept risk…)."""
    last_day = None
    if expires is not None:
        try:
            last_day = date.fromisoformat(expires)
        except ValueError:
            fail(f"--expires {expires}: not a date (YYYY-MM-DD)")
    loaded = load_inventory_or_fail(inventory) if inventory is not None else None
    with service_context(ctx, db, actor or default_actor()) as context:
        updated = triage(context, fingerprint, status, note, expires=last_day, approver=approver, inventory=loaded)
    console.print(findings_table([updated]))
