"""What every `soc` command shares: consoles, options, failing with a clear message, opening things."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from soc.inventory import Inventory, InventoryError, load_inventory
from soc.settings import Settings
from soc.store import SqliteStore, open_store

PIPE_WIDTH = 140
"""Width used when the output is not a terminal (logs, CI): Rich would otherwise assume 80."""
console = Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)
errors = Console(stderr=True)

ABANDONED_AFTER = timedelta(hours=6)
"""A run still `running` after this long was killed without a chance to say so: it is incomplete."""

DbOption = Annotated[Path | None, typer.Option("--db", help="Store file (default: $SOC_DB or .soc/soc.db).")]
InventoryOption = Annotated[Path | None, typer.Option(
    "--inventory", "-i", envvar="SOC_INVENTORY", help="Inventory with the agencies (YAML; or $SOC_INVENTORY).")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a bilingual error naming what is wrong and exit (2: bad input)."""
    errors.print(f"[bold red]Lỗi / Error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def settings_with(db: Path | None) -> Settings:
    """Settings from the environment, with --db applied."""
    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


def open_store_or_fail(settings: Settings) -> SqliteStore:
    """The store (migrated), with runs abandoned by killed processes marked incomplete."""
    try:
        store = open_store(settings.db)
    except Exception as exc:  # a broken or foreign file: say which file, not a traceback
        fail(f"{settings.db}: cannot open the store ({type(exc).__name__}: {exc})")
    store.mark_abandoned_runs(ABANDONED_AFTER)
    return store


def load_inventory_or_fail(path: Path | None) -> Inventory:
    """The inventory named by --inventory / $SOC_INVENTORY, or a clear error."""
    if path is None:
        fail("no inventory: give --inventory FILE or set SOC_INVENTORY (see examples/dongnai.yaml)")
    try:
        return load_inventory(path)
    except InventoryError as exc:
        fail(str(exc))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically to a file, or to stdout for '-'."""
    text = json.dumps(payload, ensure_ascii=False, indent=2)
    if str(path) == "-":
        sys.stdout.write(text + "\n")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text + "\n")
    Path(tmp.name).replace(path)
