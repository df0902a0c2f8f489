"""`soc audit`: who changed what, when — the audit log of every state change."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from soc.cli.common import DbOption, console, service_context, shown, write_json
from soc.core.clock import local_time
from soc.core.untrusted import json_text
from soc.services.audit import audit_entries


def audit(
    ctx: typer.Context,
    action: Annotated[str | None, typer.Option(help="Only actions starting with this, e.g. 'finding.'.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject (fingerprint, run id, file name).")] = None,
    limit: Annotated[int, typer.Option(help="Newest entries shown.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines to stdout.")] = False,
    db: DbOption = None,
) -> None:
    """Nhật ký thay đổi / The audit log: who changed what, when, before → after."""
    with service_context(ctx, db, writes=False) as context:
        entries = audit_entries(context, action, subject, limit)
    if as_json:
        write_json(Path("-"), {"entries": [e.model_dump(mode="json") for e in entries]})
        return
    table = Table(title="Nhật ký thay đổi / Audit log")
    for column in ("Lúc / When", "Người / Who", "Hành động / Action", "Đối tượng / Subject", "Trước → Sau / Change"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        change = f"{_brief(entry.before)} → {_brief(entry.after)}" if entry.before else _brief(entry.after)
        if entry.note and shown(json_text(entry.note, indent=None)) not in change:
            change += f"\n[dim]{shown(entry.note)}[/]"
        table.add_row(local_time(entry.at), shown(entry.actor), shown(entry.action), shown(entry.subject[:40]),
                      change)
    console.print(table)


def _brief(values: dict[str, object] | None) -> str:
    return shown(json_text(values, indent=None)[:300]) if values else "—"
