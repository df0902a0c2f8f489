"""The inventory: validate it, and merge portals from a CSV into a YAML inventory (all or nothing, audited)."""

from __future__ import annotations

from pathlib import Path

from soc.inventory import Inventory, load_inventory, merge_portals_csv
from soc.services.context import ServiceContext, ServiceError


def check_inventory(path: Path) -> Inventory:
    """The inventory at `path`, validated whole (InventoryError lists every problem)."""
    return load_inventory(path)


def import_portals(context: ServiceContext, csv_path: Path, into: Path) -> tuple[int, int]:
    """Merge a CSV of portals into a YAML inventory (created if missing); (added, updated)."""
    if not csv_path.is_file():
        raise ServiceError(f"{csv_path}: file not found")
    added, updated = merge_portals_csv(csv_path, into)
    context.audit("inventory.import", str(into), after={"source": csv_path.name, "added": added, "updated": updated})
    return added, updated
