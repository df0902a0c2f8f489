"""The `soc` command line: parses arguments, calls the services, renders. No rules of its own.

Exit codes: 0 the command ran (findings are not errors); 1 findings at or above --fail-on;
2 bad input or usage (the message names the file, entry and field); 130 interrupted.
"""

from __future__ import annotations

import warnings

import typer

from soc.cli.audit import audit
from soc.cli.common import CliState
from soc.cli.compliance import compliance, coverage_app, systems_app
from soc.cli.findings import findings, triage_command
from soc.cli.inventory import inventory_app
from soc.cli.scan import demo, diff, runs, scan

app = typer.Typer(
    help="Bộ công cụ SOC tỉnh Đồng Nai / Đồng Nai provincial SOC toolkit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Bộ công cụ SOC tỉnh Đồng Nai / Đồng Nai provincial SOC toolkit."""
    if not isinstance(ctx.obj, CliState):
        ctx.obj = CliState()


app.command()(scan)
app.command()(findings)
app.command("triage")(triage_command)
app.command()(diff)
app.command()(runs)
app.command()(demo)
app.command("compliance")(compliance)
app.command()(audit)
app.add_typer(inventory_app, name="inventory")
app.add_typer(systems_app, name="systems")
app.add_typer(coverage_app, name="coverage")


def main() -> None:
    """Entry point of the `soc` script."""
    from cryptography.utils import CryptographyDeprecationWarning

    # The standard root stores hold a few old roots with negative serials; that is not the user's concern.
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    app()
