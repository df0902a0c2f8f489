"""What every `soc` command shares: consoles, options, the clock, failing with a clear message, opening things."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.core.errors import InputError
from soc.core.files import atomic_write_json
from soc.core.settings import Settings
from soc.inventory import Inventory, InventoryError, load_inventory
from soc.services.context import ServiceContext, open_context
from soc.store import StoreError

PIPE_WIDTH = 140
"""Width used when the output is not a terminal (logs, CI): Rich would otherwise assume 80."""
console = Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)
errors = Console(stderr=True)


DbOption = Annotated[Path | None, typer.Option("--db", help="Store file (default: $SOC_DB or .soc/soc.db).")]
InventoryOption = Annotated[Path | None, typer.Option(
    "--inventory", "-i", envvar="SOC_INVENTORY", help="Inventory with the agencies (YAML; or $SOC_INVENTORY).")]


@dataclass(frozen=True)
class CliState:
    """What the whole command line shares; tests pass their own (`CliRunner().invoke(app, args, obj=…)`)."""

    clock: Clock = SYSTEM_CLOCK


def state(ctx: typer.Context) -> CliState:
    """The running command's state (the system clock unless a caller gave another)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()


def default_actor() -> str:
    """Who is acting when a command has no --actor: $USER, else 'operator' (as the --actor options always did)."""
    return os.environ.get("USER") or "operator"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a bilingual error naming what is wrong and exit (2: bad input)."""
    errors.print(f"[bold red]Lỗi / Error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def settings_with(db: Path | None) -> Settings:
    """Settings from the environment, with --db applied."""
    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


@contextlib.contextmanager
def service_context(ctx: typer.Context, db: Path | None, actor: str | None = None,
                    settings: Settings | None = None) -> Iterator[ServiceContext]:
    """The services' context for one command; bad input raised inside becomes a clear message (exit 2)."""
    try:
        context = open_context(settings or settings_with(db), state(ctx).clock, actor or default_actor())
    except StoreError as exc:
        fail(str(exc))
    try:
        yield context
    except InputError as exc:
        fail(str(exc))
    finally:
        context.close()


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
    if str(path) == "-":
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    atomic_write_json(path, payload)
