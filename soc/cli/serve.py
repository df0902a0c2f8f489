"""`soc serve`: the running SOC — the REST API and the dashboard, with the scheduler beside it."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from soc.cli.common import (
    DbOption,
    InventoryOption,
    announce_new_store,
    console,
    errors,
    fail,
    settings_with,
    shown,
    state,
)
from soc.cli.worker import run_line
from soc.core.clock import Clock
from soc.core.errors import InputError
from soc.core.settings import Settings
from soc.services.context import open_context
from soc.services.users import has_admin
from soc.store import StoreError


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (default loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    db: DbOption = None,
    inventory: InventoryOption = None,
    scheduler_on: Annotated[bool, typer.Option("--scheduler/--no-scheduler",
                                               help="Run the scheduled jobs here (off: `soc worker` runs them).")]
    = True,
    certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="Serve HTTPS with this certificate "
                                                  "(sessions cookies are then Secure).")] = None,
    keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="Its private key.")] = None,
) -> None:
    """Chạy SOC như một dịch vụ / Run the SOC as a service: API on http://HOST:PORT/api/v1 (docs at /docs),
    health at /healthz, and the scheduled scans and checks."""
    if (certfile is None) != (keyfile is None):
        fail("--ssl-certfile and --ssl-keyfile go together")
    settings = settings_with(db)
    if inventory is not None:
        settings = settings.model_copy(update={"inventory": inventory})
    _warn_if_exposed(host, certfile is not None)
    run_service(settings, state(ctx).clock, host, port, scheduler_on=scheduler_on, certfile=certfile,
                keyfile=keyfile)


def run_service(settings: Settings, clock: Clock, host: str, port: int, *, scheduler_on: bool = True,
                certfile: Path | None = None, keyfile: Path | None = None,
                announce: Callable[[str], None] | None = None) -> None:
    """Serve the API and the dashboard on HOST:PORT (0: a free port) with the scheduler beside it, until Ctrl-C
    or SIGTERM (then KeyboardInterrupt or a normal return, with the scheduler stopped and the store closed).

    `soc serve` and the serving `soc demo` both run this; `announce` hears of the address once it is bound
    (after the standard line saying where the SOC is served)."""
    import uvicorn

    from soc.api import create_app
    from soc.scheduler import SocScheduler
    from soc.web import install_dashboard

    try:
        context = open_context(settings, clock, "api", on_create=announce_new_store)
    except StoreError as exc:
        fail(str(exc))
    scheduler = None
    try:
        if not has_admin(context):
            errors.print("[yellow]Chưa có quản trị viên / no admin account yet.[/] Create one (the password is "
                         f"asked):\n  soc users add NAME --role admin --db {shown(settings.db)}\nthen a token for "
                         f"scripts: soc tokens create --user NAME --db {shown(settings.db)}", soft_wrap=True)
        if settings.inventory is None:
            errors.print("[yellow]Chưa có danh mục / no inventory:[/] give --inventory or SOC_INVENTORY; the portal "
                         "scan job fails until then.", soft_wrap=True)
        listener = _listen(host, port)
        if scheduler_on:
            scheduler = SocScheduler(settings, clock, on_run=lambda run: console.print(run_line(run), soft_wrap=True))
            scheduler.start()
        app = create_app(settings, context.backend, clock, scheduler=scheduler, secure_cookies=certfile is not None)
        install_dashboard(app)
        scheme = "https" if certfile else "http"
        bound = listener.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        address = f"{scheme}://{shown_host}:{bound}/"
        console.print(f"SOC Đồng Nai: {address}  (API /api/v1, docs /docs, health /healthz), "
                      f"store {shown(settings.db)}", soft_wrap=True)
        if announce is not None:
            announce(address)
        config = uvicorn.Config(app, host=host, port=bound, log_level="warning", access_log=False,
                                ssl_certfile=str(certfile) if certfile else None,
                                ssl_keyfile=str(keyfile) if keyfile else None, server_header=False)
        uvicorn.Server(config).run(sockets=[listener])
    except (StoreError, InputError) as exc:
        fail(str(exc))
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        context.close()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket (bound here, so that port 0 gives a port to print and a taken port a clear error)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)  # a client told the address at once waits in the backlog until uvicorn accepts
    except OSError as exc:
        listener.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    listener.set_inheritable(True)
    return listener


def _warn_if_exposed(host: str, tls: bool) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        errors.print(f"[yellow]Cảnh báo / warning:[/] listening on {shown(host)}, not only loopback"
                     + ("" if tls else ", without TLS: passwords and tokens cross the network in clear"),
                     soft_wrap=True)
