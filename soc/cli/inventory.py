"""`soc inventory check | import`: validate an inventory, merge portals from a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import DbOption, console, fail, service_context, shown
from soc.inventory import InventoryError
from soc.services.inventory import check_inventory, import_portals

inventory_app = typer.Typer(help="Danh mục cổng thông tin / Portal inventory.", no_args_is_help=True)


@inventory_app.command("check")
def inventory_check(path: Annotated[Path, typer.Argument(help="YAML inventory or CSV of portals.")]) -> None:
    """Kiểm tra danh mục / Validate an inventory and summarise it."""
    try:
        inventory = check_inventory(path)
    except InventoryError as exc:
        fail(str(exc))
    console.print(f"{shown(path)}: OK — {len(inventory.agencies)} cơ quan / agencies, "
                  f"{len(inventory.portals)} cổng / portals, {len(inventory.systems)} hệ thống / systems")


@inventory_app.command("import")
def inventory_import(
    ctx: typer.Context,
    csv_path: Annotated[Path, typer.Argument(help="CSV of portals (url, agency, agency_name, address, …).")],
    into: Annotated[Path, typer.Option("--into", help="YAML inventory to add them to (created if missing).")],
    db: DbOption = None,
) -> None:
    """Nhập cổng từ CSV / Merge portals from a CSV into a YAML inventory (all or nothing; audited in the store)."""
    if not csv_path.is_file():  # before the store is opened: a typo must not create an empty store
        fail(f"{csv_path}: file not found")
    with service_context(ctx, db) as context:
        added, updated = import_portals(context, csv_path, into)
    console.print(f"{shown(into)}: +{added} cổng mới / new, {updated} cập nhật / updated")
