"""What every `soc` command shares: consoles, options, the clock, failing with a clear message, opening things."""

from __future__ import annotations

import contextlib
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
from soc.core.files import atomic_write_text
from soc.core.settings import Settings
from soc.core.untrusted import json_text, visible
from soc.inventory import Inventory, InventoryError, load_inventory
from soc.services.context import ServiceContext, open_context
from soc.store import StoreError

PIPE_WIDTH = 140
"""Width used when the output is not a terminal (logs, CI): Rich would otherwise assume 80."""
# No emoji codes: a certificate subject ":white_check_mark: valid" must print as written.
console = Console(emoji=False) if sys.stdout.isatty() else Console(width=PIPE_WIDTH, emoji=False)
errors = Console(stderr=True, emoji=False)


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


def shown(value: object, *, multiline: bool = False) -> str:
    """Text from outside (a portal, a certificate, a spreadsheet, an inventory) as Rich markup that prints as written.

    Control, bidi and invisible characters become visible escapes (`soc.core.untrusted.visible`), then
    Rich's markup is escaped. Every command prints such text through this, never raw.
    """
    return escape(visible(str(value), multiline=multiline))


def default_actor() -> str:
    """Who is acting when a command has no --actor: $USER, else 'operator' (as the --actor options always did)."""
    return os.environ.get("USER") or "operator"


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a bilingual error naming what is wrong and exit (2: bad input)."""
    errors.print(f"[bold red]Lỗi / Error:[/] {shown(message, multiline=True)}", soft_wrap=True)
    raise typer.Exit(code)


def settings_with(db: Path | None) -> Settings:
    """Settings from the environment, with --db applied."""
    settings = Settings()
    return settings.model_copy(update={"db": db}) if db else settings


@contextlib.contextmanager
def service_context(ctx: typer.Context, db: Path | None, actor: str | None = None,
                    settings: Settings | None = None, *, writes: bool = True) -> Iterator[ServiceContext]:
    """The services' context for one command; bad input raised inside becomes a clear message (exit 2).

    `writes=False` for commands that only read: they work on a read-only store too. A command that
    writes gets a clear refusal on a read-only or damaged store before it does any work.
    """
    try:
        context = open_context(settings or settings_with(db), state(ctx).clock, actor or default_actor(),
                               writes=writes, on_create=announce_new_store)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield context
    except InputError as exc:
        fail(str(exc))
    finally:
        context.close()


def announce_new_store(path: Path) -> None:
    """Say that a store is being created (a typo in --db or SOC_DB must not go unnoticed)."""
    errors.print(f"[yellow]Tạo kho dữ liệu mới / creating the store {shown(path.absolute())} (new)[/]",
                 soft_wrap=True)


def load_inventory_or_fail(path: Path | None) -> Inventory:
    """The inventory named by --inventory / $SOC_INVENTORY, or a clear error."""
    if path is None:
        fail("no inventory: give --inventory FILE or set SOC_INVENTORY (see examples/dongnai.yaml)")
    try:
        return load_inventory(path)
    except InventoryError as exc:
        fail(str(exc))


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically to a file, or to stdout for '-'.

    The data is as stored (evidence verbatim); control, bidi and invisible characters are written as
    `\\uXXXX` escapes (`soc.core.untrusted.json_text`), so the text is safe to show in a terminal.
    """
    text = json_text(payload) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        return
    atomic_write_text(path, text)
