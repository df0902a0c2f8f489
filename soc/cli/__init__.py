"""The `soc` command line: parses arguments, calls the services, renders. No rules of its own.

Exit codes: 0 the command ran (findings are not errors); 1 findings at or above --fail-on;
2 bad input or usage (the message names the file, entry and field); 130 interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from typing import NoReturn

import typer

from soc.cli.audit import audit
from soc.cli.common import CliState
from soc.cli.compliance import compliance, coverage_app, systems_app
from soc.cli.drill import drill_app
from soc.cli.findings import findings, triage_command
from soc.cli.inventory import inventory_app
from soc.cli.report import report_app
from soc.cli.scan import demo, diff, runs, scan
from soc.cli.serve import serve
from soc.cli.store import store_app
from soc.cli.users import tokens_app, users_app
from soc.cli.worker import worker
from soc.core.process import remove_owned_temp_files

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
app.command()(serve)
app.command("compliance")(compliance)
app.command()(audit)
app.command()(worker)
app.add_typer(inventory_app, name="inventory")
app.add_typer(systems_app, name="systems")
app.add_typer(coverage_app, name="coverage")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(drill_app, name="drill")
app.add_typer(report_app, name="report")
app.add_typer(store_app, name="store")


def main() -> None:
    """Entry point of the `soc` script."""
    from cryptography.utils import CryptographyDeprecationWarning

    # The standard root stores hold a few old roots with negative serials; that is not the user's concern.
    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
    try:
        app()
    except SystemExit as exc:
        if exc.code == INTERRUPTED:
            exit_at_once(INTERRUPTED)
        raise


INTERRUPTED = 130


def exit_at_once(code: int) -> NoReturn:
    """End the process now, after Ctrl-C: what was scanned is stored, the run marked, the store closed.

    The interpreter's own exit would still join threads and tear down every module (0.3–0.6 s here,
    more on a busy machine, with collector threads left in a hostile portal's socket read); Ctrl-C is
    promised to end the process within two seconds, so the few things that matter are done by hand.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a further Ctrl-C must not cut this short
    remove_owned_temp_files()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
