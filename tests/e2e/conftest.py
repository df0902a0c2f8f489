"""Fixtures of the browser tests (one chromium per test module) and the line naming the screenshots folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _pytest.terminal import TerminalReporter
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.browser import SCREENSHOTS_ENV, SHOTS, launch_chromium, screenshot_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, for the whole module (a launch costs about a second)."""
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        try:
            yield launched
        finally:
            launched.close()


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Name the folder of the screenshots in the run's output (the CI log), with what was written."""
    if not SHOTS:
        return
    terminalreporter.write_sep("-", "screenshots of the dashboard")
    count = len(set(SHOTS))
    terminalreporter.write_line(f"{count} screenshots in {screenshot_dir()} (set ${SCREENSHOTS_ENV} to change):")
    for path in sorted(set(SHOTS)):
        terminalreporter.write_line(f"  {path.name}")
