"""Who is calling and what they may do: Bearer tokens for programs, the signed session cookie for the
dashboard (with a CSRF token on every state-changing request), roles checked on every route."""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from collections.abc import Callable
from threading import Lock
from time import monotonic
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from soc.api.problems import ApiError
from soc.api.state import ApiState
from soc.services.context import ServiceContext
from soc.services.users import AuthError, Permission, Principal, session_principal, token_principal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
bearer = HTTPBearer(auto_error=False, description="An API token: `soc tokens create --user NAME`.")


def api_state(request: Request) -> ApiState:
    """The app's shared state."""
    state: ApiState = request.app.state.soc
    return state


def identify(request: Request, credentials: HTTPAuthorizationCredentials | None = None) -> Principal:
    """The caller: a Bearer token, else the session cookie (AuthError without valid credentials). No CSRF
    check: `principal` adds it for the API, the dashboard checks its forms' token."""
    state = api_state(request)
    if request.headers.get("authorization") and credentials is None:
        raise AuthError("Authorization header is not `Bearer <token>`")
    if credentials is not None:
        return token_principal(state.context("api"), credentials.credentials.strip())
    session = request.scope.get("session") or {}
    name = session.get("user")
    if not isinstance(name, str):
        raise AuthError("no credentials")
    started = session.get("at")
    if not isinstance(started, (int, float)) or state.clock.now().timestamp() - started > (
            state.settings.auth.session_hours * 3600):
        raise AuthError(f"session of {name!r}: expired")
    return session_principal(state.context("api"), name)


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None) -> Principal:
    """The caller of an API route: a Bearer token, else the session cookie, whose unsafe requests need the
    CSRF token in the X-CSRF-Token header.

    AuthError (401) without credentials, with an unknown, expired or revoked token, or a disabled user.
    """
    who = identify(request, credentials)
    if who.via == "session" and request.method not in SAFE_METHODS:
        expected = (request.scope.get("session") or {}).get("csrf")
        given = request.headers.get(CSRF_HEADER, "")
        if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
            raise ApiError("missing or wrong CSRF token: send the session's csrf_token in the X-CSRF-Token "
                           "header", 403)
    request.state.principal = who
    return who


Caller = Annotated[Principal, Depends(principal)]


def needs(permission: Permission) -> Callable[..., ServiceContext]:
    """A dependency: the caller must have `permission`; gives a services context acting as the caller."""

    def dependency(request: Request, who: Caller) -> ServiceContext:
        who.require(permission)
        return api_state(request).context(who.name)

    dependency.__name__ = f"needs_{permission.value}"
    return dependency


Reader = Annotated[ServiceContext, Depends(needs(Permission.READ))]
Triager = Annotated[ServiceContext, Depends(needs(Permission.TRIAGE))]
Scanner = Annotated[ServiceContext, Depends(needs(Permission.SCAN))]
Admin = Annotated[ServiceContext, Depends(needs(Permission.ADMIN))]


def new_csrf() -> str:
    """A fresh CSRF token for a session."""
    return secrets.token_urlsafe(24)


def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not take (a typo like `?severty=high` must not list everything)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ApiError(f"unknown query parameter(s): {', '.join(unknown)[:200]} (accepted: {accepted})", 400)


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class LoginLimiter:
    """At most N login attempts per client address per minute (in memory: one process serves the API)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = Lock()

    def allow(self, client: str) -> float | None:
        """None when the attempt may go on, else the seconds to wait."""
        now = monotonic()
        with self._lock:
            if len(self._seen) > 10_000:  # bounded: forget the quietest clients
                self._seen = {key: times for key, times in self._seen.items() if times and times[-1] > now - 60}
            times = self._seen.setdefault(client, deque())
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return max(1.0, 60 - (now - times[0]))
            times.append(now)
            return None
