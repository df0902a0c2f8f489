"""`/api/v1/users`, `/api/v1/tokens`, `/api/v1/audit`: accounts, API tokens and the audit log (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from soc.api.auth import Admin
from soc.api.problems import NotFound
from soc.core.models import User
from soc.schemas.api import (
    AuditList,
    PasswordRequest,
    TokenCreated,
    TokenCreateRequest,
    TokenList,
    UserCreateRequest,
    UserList,
)
from soc.services import audit as audit_service
from soc.services import users as service
from soc.services.context import ServiceContext, ServiceError

router = APIRouter(tags=["admin"])


def _user(context: ServiceContext, name: str) -> User:
    try:
        return service.get_user(context, name)
    except ServiceError:
        raise NotFound(f"no user {name[:64]!r}") from None


@router.get("/users", response_model=UserList, summary="Người dùng / Users")
def list_users(context: Admin) -> UserList:
    """Every local account (never a password hash)."""
    return UserList(items=service.list_users(context))


@router.post("/users", response_model=User, status_code=status.HTTP_201_CREATED, summary="Thêm người dùng / Add")
def add_user(body: UserCreateRequest, context: Admin) -> User:
    """Create a local account; audited."""
    return service.add_user(context, body.name, body.role, body.password)


@router.post("/users/{name}/disable", response_model=User, summary="Khóa tài khoản / Disable")
def disable_user(name: str, context: Admin) -> User:
    """Disable an account: its tokens and sessions stop working at once."""
    _user(context, name)
    return service.set_disabled(context, name, True)


@router.post("/users/{name}/enable", response_model=User, summary="Mở khóa / Enable")
def enable_user(name: str, context: Admin) -> User:
    """Enable a disabled account again."""
    _user(context, name)
    return service.set_disabled(context, name, False)


@router.post("/users/{name}/password", response_model=User, summary="Đặt lại mật khẩu / Reset password")
def reset_password(name: str, body: PasswordRequest, context: Admin) -> User:
    """Set a new password (lifts a lockout)."""
    _user(context, name)
    return service.reset_password(context, name, body.password)


@router.get("/tokens", response_model=TokenList, summary="Mã truy cập API / API tokens")
def list_tokens(context: Admin, user: Annotated[str | None, Query(max_length=64)] = None) -> TokenList:
    """API tokens (of one user), newest first; never their secrets."""
    return TokenList(items=service.list_tokens(context, user))


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED,
             summary="Tạo mã truy cập / Create a token")
def create_token(body: TokenCreateRequest, context: Admin) -> TokenCreated:
    """A new token for a user; the secret is in this response only."""
    _user(context, body.user)
    token, secret = service.create_token(context, body.user, body.role, body.expires, body.note)
    return TokenCreated(token=token, secret=secret)


@router.delete("/tokens/{token_id}", response_model=TokenList, summary="Thu hồi / Revoke")
def revoke_token(token_id: str, context: Admin) -> TokenList:
    """Revoke a token at once."""
    if context.backend.users.token(token_id[:64]) is None:
        raise NotFound(f"no token {token_id[:64]!r}")
    return TokenList(items=[service.revoke_token(context, token_id)])


@router.get("/audit", response_model=AuditList, summary="Nhật ký thay đổi / Audit log")
def audit(
    context: Admin,
    action: Annotated[str | None, Query(description="Action prefix, e.g. `finding.`.", max_length=64)] = None,
    subject: Annotated[str | None, Query(description="A fingerprint, run id, user…", max_length=256)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=audit_service.MAX_ENTRIES)] = 100,
) -> AuditList:
    """Every state change, newest first: who, when, what (the finding's fingerprint as subject), before → after."""
    entries = audit_service.audit_entries(context, action, subject, limit if actor is None and since is None
                                          else audit_service.MAX_ENTRIES)
    if actor is not None:
        entries = [entry for entry in entries if entry.actor == actor]
    if since is not None:
        if since.utcoffset() is None:
            raise ServiceError("since: give a time zone (e.g. 2026-11-27T09:00:00+07:00)")
        entries = [entry for entry in entries if entry.at >= since]
    return AuditList(items=entries[:limit])
