"""`soc store setup|migrate`: the search backend's index templates, and copying an embedded store into it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from soc.cli.common import console, fail, settings_with, shown
from soc.store import StoreError
from soc.store.admin import checkpoint_path, migrate_to_search, setup_search

store_app = typer.Typer(help="Kho dữ liệu / The store: search-cluster templates, migration.", no_args_is_help=True)


@store_app.command("setup")
def setup() -> None:
    """Nạp mẫu chỉ mục / Load the index templates into the search cluster (SOC_STORE__URL …); idempotent."""
    settings = settings_with(None).store
    try:
        names = setup_search(settings)
    except StoreError as exc:
        fail(str(exc))
    console.print(f"Đã nạp {len(names)} mẫu chỉ mục / loaded {len(names)} index templates: "
                  f"{shown(', '.join(names))}")


@store_app.command("migrate")
def migrate(
    to: Annotated[str, typer.Option("--to", help="Where to copy to: search (the cluster SOC_STORE__URL names).")],
    db: Annotated[Path, typer.Option("--db", help="The embedded store to copy (SQLite file).")],
    restart: Annotated[bool, typer.Option("--restart", help="Forget the checkpoint and copy everything again.")]
    = False,
    batch: Annotated[int, typer.Option("--batch", min=10, max=10_000, help="Rows per bulk request.")] = 1000,
) -> None:
    """Chép kho nhúng sang cụm tìm kiếm / Copy an embedded store into the search cluster (resumable)."""
    if to != "search":
        fail(f"--to {to!r}: the only target is 'search' (the cluster of SOC_STORE__URL)")
    settings = settings_with(None).store
    tasks: dict[str, TaskID] = {}
    path = checkpoint_path(db, settings)
    if path.exists() and not restart:
        console.print(f"Tiếp tục từ điểm dừng / resuming from the checkpoint {shown(path)}")
    with Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        def tick(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=max(total, 1))
            progress.update(tasks[name], completed=done if total else 1)

        try:
            results = migrate_to_search(db, settings, restart=restart, batch=batch, progress=tick)
        except StoreError as exc:
            fail(str(exc))
    table = Table(title="Đối chiếu / Verification")
    for column in ("Chỉ mục / Index", "Dòng / Rows", "Tài liệu / Documents", "Tổng kiểm / Checksum"):
        table.add_column(column)
    for result in results:
        table.add_row(result.name, str(result.rows), str(result.documents),
                      "[green]khớp / equal[/]" if result.checksum_equal else "[red]khác / differs[/]")
    console.print(table)
    bad = [result.name for result in results if not result.ok]
    if bad:
        fail(f"the copy differs from the store in {', '.join(bad)} (an index that held other documents before, or "
             "a store written during the copy): run again with --restart into empty indices", code=1)
    console.print(f"[green]Đã chép xong / copied[/] {sum(r.rows for r in results)} rows; "
                  f"checkpoint {shown(path)}")
