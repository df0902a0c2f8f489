"""Who is looking at a page: the signed session of `POST /login` (the API's own session), the role's
permissions, and the CSRF token every form carries."""

from __future__ import annotations

import hmac
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from soc.api.auth import api_state, identify, new_csrf
from soc.api.problems import problem
from soc.services.context import ServiceContext
from soc.services.users import AuthError, Permission, PermissionDenied, Principal
from soc.web.templating import render


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the sign-in form, then back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class FormRefused(Exception):
    """A form without the session's CSRF token (a forged POST): refused, nothing done."""


def viewer(request: Request) -> Principal:
    """The signed-in caller (LoginRequired otherwise)."""
    try:
        return identify(request)
    except AuthError:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else "")) from None


def acting(request: Request, permission: Permission) -> tuple[Principal, ServiceContext]:
    """The caller, who must have `permission` (PermissionDenied: a 403 page), and a context acting as them."""
    who = viewer(request)
    who.require(permission)
    return who, api_state(request).context(who.name)


def ensure_csrf(request: Request) -> str:
    """The session's CSRF token, made on first use (the sign-in form needs one before anyone signs in)."""
    session = request.session
    token = session.get("csrf")
    if not isinstance(token, str):
        token = new_csrf()
        session["csrf"] = token
    return token


def check_form(request: Request, token: str | None) -> None:
    """FormRefused unless the form carries the session's CSRF token."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not token or not hmac.compare_digest(expected, token):
        raise FormRefused("missing or wrong CSRF token")


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of this site only (never `//host` or a URL)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def install(app: FastAPI) -> None:
    """Turn the dashboard's refusals into pages: sign in, 403."""

    @app.exception_handler(LoginRequired)
    async def sign_in_first(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(safe_next(exc.next_path), safe='/')}", status_code=303)

    @app.exception_handler(FormRefused)
    async def forged(request: Request, exc: FormRefused) -> Response:
        return render(request, "error.html", None, status_code=403, title="Forbidden",
                      message="This form has expired or was not sent from this site. Reload the page and try again.")

    @app.exception_handler(PermissionDenied)
    async def not_allowed(request: Request, exc: PermissionDenied) -> Response:
        if request.url.path.startswith("/api/"):
            return problem(403, str(exc), request)
        return render(request, "error.html", None, status_code=403, title="Forbidden",
                      message="Your role does not allow this.")
