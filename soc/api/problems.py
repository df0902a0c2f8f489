"""Errors as RFC 9457 problem details: every failure says what is wrong in words, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soc.core.errors import InputError
from soc.core.untrusted import visible
from soc.services.users import AuthError, PermissionDenied
from soc.store import StoreError

MEDIA_TYPE = "application/problem+json; charset=utf-8"
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Request too large", 415: "Unsupported media type",
          422: "Invalid input", 429: "Too many requests", 500: "Internal error", 503: "Service unavailable"}
log = logging.getLogger("soc.api")


class ApiError(Exception):
    """An error with its HTTP status, raised by routes (`NotFound`, `Conflict`, …)."""

    status = 400

    def __init__(self, detail: str, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status or self.status
        self.headers = headers or {}


class NotFound(ApiError):
    """The thing named in the path does not exist."""

    status = 404


class Conflict(ApiError):
    """The request is valid but the current state refuses it (a job already running)."""

    status = 409


def problem(status: int, detail: str, request: Request | None = None, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
                            "detail": visible(detail, multiline=True)[:2000]}
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem details."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": _where(error.get("loc", ())), "msg": visible(str(error.get("msg", "")))[:300]}
                  for error in exc.errors()[:50]]
        detail = "; ".join(f"{error['loc']}: {error['msg']}" for error in errors[:5])
        return problem(422, detail or "invalid request", request, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        return problem(exc.status_code, detail, request, headers=getattr(exc, "headers", None))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.detail, request, headers=exc.headers)

    @app.exception_handler(AuthError)
    async def unauthenticated(request: Request, exc: AuthError) -> JSONResponse:
        log.info("authentication refused for %s: %s", request.url.path, visible(str(exc)))
        return problem(401, "not authenticated: give a valid API token (Authorization: Bearer …) or sign in",
                       request, headers={"WWW-Authenticate": 'Bearer realm="soc"'})

    @app.exception_handler(PermissionDenied)
    async def forbidden(request: Request, exc: PermissionDenied) -> JSONResponse:
        return problem(403, str(exc), request)

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return problem(422, str(exc), request)

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error on %s: %s", request.url.path, exc)
        return problem(503, f"the store cannot be used: {exc}", request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, f"internal error ({type(exc).__name__}); it is logged", request)
