"""The dashboard (`soc serve`): server-rendered pages on the same services and schemas as the API.

Jinja2 templates (autoescaped), gettext catalogues (Babel; Vietnamese first, English), no JavaScript needed,
no resource from another origin (strict CSP), the API's session cookie with a CSRF token in every form.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from soc.web import auth, security
from soc.web.pages import admin, agencies, compliance, drills, findings, home, portals, reports, runs

STATIC = Path(__file__).with_name("static")


def install_dashboard(app: FastAPI) -> None:
    """Add the pages, their static files, the refusal pages and the security headers to the API's app."""
    security.install(app)
    auth.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (home, findings, runs, admin, portals, agencies, compliance, drills, reports):
        app.include_router(module.router)


__all__ = ["install_dashboard"]
