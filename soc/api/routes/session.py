"""`/api/v1/session`: sign in (rate-limited, lockout after repeated failures), who am I, sign out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from soc.api.auth import Caller, LoginLimiter, api_state, new_csrf
from soc.api.problems import ApiError
from soc.schemas.api import LoginRequest, SessionInfo
from soc.services.users import login

router = APIRouter(prefix="/session", tags=["session"])


def _limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


@router.post("", response_model=SessionInfo, summary="Đăng nhập / Sign in")
def sign_in(request: Request, body: LoginRequest) -> SessionInfo:
    """Check the password and set the signed session cookie; the answer carries the CSRF token to send with
    every state-changing request. Too many attempts from one address: 429; repeated failures lock the account."""
    client = request.client.host if request.client else "unknown"
    wait = _limiter(request).allow(client)
    if wait is not None:
        raise ApiError(f"too many sign-in attempts from {client}: wait {wait:.0f} s", 429,
                       headers={"Retry-After": str(int(wait) + 1)})
    state = api_state(request)
    who = login(state.context(body.username[:64]), body.username, body.password)
    csrf = new_csrf()
    request.session.clear()
    request.session.update({"user": who.name, "csrf": csrf, "at": state.clock.now().timestamp()})
    return SessionInfo(user=who.name, role=who.role, via="session", csrf_token=csrf)


@router.get("", response_model=SessionInfo, summary="Tôi là ai / Who am I")
def whoami(request: Request, who: Caller) -> SessionInfo:
    """The caller (token or session); a session also gets its CSRF token back."""
    csrf = request.session.get("csrf") if who.via == "session" else None
    return SessionInfo(user=who.name, role=who.role, via=who.via, csrf_token=csrf)


@router.delete("", status_code=204, summary="Đăng xuất / Sign out")
def sign_out(request: Request, who: Caller) -> Response:
    """Forget the session."""
    request.session.clear()
    return Response(status_code=204)
