"""Browser tests of the dashboard: the app of `soc serve` under uvicorn on loopback, driven in Debian's chromium.

- `live_dashboard` serves `create_app(...)` + `install_dashboard(app)` (what `soc serve` runs) on 127.0.0.1 and
  a free port, in a thread, on a real store;
- `launch_chromium` starts /usr/bin/chromium headless through Playwright (never `playwright install`);
- `Watched` is one page whose every request to another origin is aborted and recorded, whose console errors,
  script errors (CSP violations among them) and dialogs are recorded: `problems()` must stay empty;
- `shot` writes a screenshot to $SOC_SCREENSHOTS (default `.soc/screenshots/` in the repository), and the
  run's terminal summary names that folder (tests/e2e/conftest.py).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Route,
    ViewportSize,
)

from soc.api import create_app
from soc.core.clock import Clock
from soc.services.context import ServiceContext
from soc.web import install_dashboard

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # No name is ever resolved (the machine's resolver is not on loopback): a page's link to a
                 # scanned portal must not even cost a DNS prefetch.
                 "--dns-prefetch-disable", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
SCREENSHOTS_ENV = "SOC_SCREENSHOTS"
DESKTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}
LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")
SHOTS: list[Path] = []
"""Every screenshot written in this run (for the terminal summary)."""


def screenshot_dir() -> Path:
    """Where the screenshots go: $SOC_SCREENSHOTS, else `.soc/screenshots/` in the repository (gitignored)."""
    configured = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(configured) if configured else REPO / ".soc" / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless; a clear failure when it is missing (`./dev setup` installs it as root)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                           "(`./dev setup` as root installs it: apt-get install chromium)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve `app` under uvicorn on 127.0.0.1 and a free port in a daemon thread; yields the origin."""
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the dashboard did not start within 15 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Dashboard:
    """The served dashboard: its origin, and the context of the store it serves (to seed and to check)."""

    origin: str
    context: ServiceContext
    app: FastAPI


@contextmanager
def live_dashboard(context: ServiceContext, clock: Clock) -> Iterator[Dashboard]:
    """The app `soc serve` runs (API + dashboard) on `context`'s store and settings, served on loopback."""
    app = create_app(context.settings, context.backend, clock)
    install_dashboard(app)
    with live_server(app) as origin:
        yield Dashboard(origin, context, app)


@dataclass
class Watched:
    """One browser page (in its own context: its own cookies) and what it did that a test must know about."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)
    """HTTP statuses a test provokes on purpose (a 403 page): chromium logs them as console errors."""

    def watch(self, context: BrowserContext) -> None:
        """Route every request of the context and listen to the page."""
        context.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("dialog", self._dialog)

    def _route(self, route: Route, request: Request) -> None:
        self.requests.append(request.url)
        if request.url == self.origin or request.url.startswith(self.origin + "/"):
            route.continue_()
        else:  # nothing leaves the machine, and a page must never ask for another origin
            self.blocked.append(request.url)
            route.abort("blockedbyclient")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = LOAD_FAILED.search(message.text)
        if status is None or int(status.group(1)) not in self.expected_statuses:
            self.console_errors.append(message.text)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    @property
    def csp_violations(self) -> list[str]:
        """Console errors where the browser refused something under our Content-Security-Policy."""
        return [text for text in self.console_errors if "Content Security Policy" in text]

    def problems(self) -> list[str]:
        """Everything that must not happen on a page of ours (empty: all well)."""
        return ([f"request to another origin: {url}" for url in self.blocked]
                + [f"CSP violation: {text}" for text in self.csp_violations]
                + [f"console error: {text}" for text in self.console_errors if text not in self.csp_violations]
                + [f"script error: {text}" for text in self.page_errors]
                + [f"dialog opened: {text}" for text in self.dialogs])

    def goto(self, path: str, status: int = 200) -> None:
        """Open a page of the dashboard and check its HTTP status."""
        if status >= 400:
            self.expected_statuses.add(status)
        response = self.page.goto(self.origin + path)
        assert response is not None, path
        assert response.status == status, f"{path}: {response.status}, expected {status}"

    def shot(self, name: str) -> Path:
        """A full-page screenshot `<name>.png` in the screenshots folder."""
        path = screenshot_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        SHOTS.append(path)
        return path

    def sign_in(self, user: str, password: str) -> None:
        """Sign in through the form of /login, as a person would."""
        self.goto("/login")
        self.page.fill("#username", user)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("form[action='/login'] button[type=submit]")

    def csrf_token(self) -> str:
        """The session's CSRF token, as the page's forms carry it."""
        token = self.page.locator("input[name=csrf_token]").first.get_attribute("value")
        assert token, "no csrf_token in the page"
        return token


@contextmanager
def watched_page(browser: Browser, origin: str, viewport: ViewportSize | None = None,
                 locale: str = "vi-VN") -> Iterator[Watched]:
    """A fresh context and page on `origin`; it raises AssertionError at the end if the page did anything wrong."""
    context = browser.new_context(viewport=viewport or DESKTOP, locale=locale, timezone_id="Asia/Ho_Chi_Minh",
                                  service_workers="block")
    context.set_default_timeout(10_000)
    try:
        watched = Watched(context.new_page(), origin)
        watched.watch(context)
        yield watched
        problems = watched.problems()
        assert not problems, "\n".join(problems)
    finally:
        context.close()
