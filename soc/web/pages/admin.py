"""Admin: users and their roles, API tokens (the secret shown once), and the audit log with its filters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from soc.api.routes.admin import audit as audit_entries
from soc.core.clock import start_of_day
from soc.core.models import ApiToken, AuditEntry, Role
from soc.services import audit as audit_service
from soc.services import users as service
from soc.services.context import ServiceContext, ServiceError
from soc.services.users import Permission, Principal
from soc.web.auth import acting, check_form
from soc.web.pages.say import say
from soc.web.templating import render
from soc.web.words import N_

router = APIRouter(include_in_schema=False)
Name = Annotated[str, Path(min_length=1, max_length=64)]
FormText = Annotated[str, Form(max_length=2000)]
NOTE_MAX = 200
AUDIT_LIMITS = (100, 500, 1000)
CHANGE_MAX = 1000
"""Characters of an audit entry's before → after shown."""
NOTICES = {
    "user_added": N_("User %(subject)s added."),
    "user_disabled": N_("User %(subject)s disabled: their tokens and sessions stopped working."),
    "user_enabled": N_("User %(subject)s enabled again."),
    "password_reset": N_("The password of %(subject)s was reset (a lockout is lifted)."),
    "token_revoked": N_("Token %(subject)s revoked."),
}
"""What a finished action says after its redirect (`?done=…&subject=…`, only for a subject that exists)."""
WORDS = (N_("active"), N_("revoked"), N_("expired"), N_("disabled"), N_("enabled"), N_("locked"))


@dataclass
class UserForm:
    """What the add-user form was given (kept when it is refused; never the password)."""

    name: str = ""
    role: str = Role.OPERATOR.value


@dataclass
class TokenForm:
    """What the create-token form was given (kept when it is refused)."""

    user: str = ""
    role: str = ""
    expires: str = ""
    note: str = ""


@dataclass
class AdminForms:
    """The forms of the admin page with what was typed, and which one a problem is about."""

    user: UserForm = field(default_factory=UserForm)
    token: TokenForm = field(default_factory=TokenForm)
    password_user: str = ""
    problem: str | None = None
    about: str = ""
    """'user', 'password', 'token' or 'row' (a button of the users or tokens table)."""


def _role(value: str, label: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ServiceError(f"{label}: choose one of {', '.join(role.value for role in Role)}") from None


def _day(value: str, label: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ServiceError(f"{label} {value[:40]!r}: give a date as YYYY-MM-DD (e.g. 2027-03-01)") from None


def token_state(token: ApiToken, now: datetime) -> str:
    """'revoked', 'expired' or 'active'."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at is not None and token.expires_at <= now else "active"


def _admin_page(request: Request, who: Principal, context: ServiceContext, forms: AdminForms | None = None,
                notice: str | None = None, status_code: int = 200) -> Response:
    now = context.clock.now()
    users = service.list_users(context)
    tokens = service.list_tokens(context)
    return render(request, "admin.html", who, status_code=status_code, users=users, roles=[role.value for role in Role],
                  tokens=[(token, token_state(token, now)) for token in tokens], forms=forms or AdminForms(),
                  notice=notice, now=now, token_days=context.settings.auth.token_days)


def _refused(request: Request, who: Principal, context: ServiceContext, forms: AdminForms,
             exc: ServiceError) -> Response:
    forms.problem = str(exc)
    return _admin_page(request, who, context, forms, status_code=400)


def _done(code: str, subject: str, anchor: str) -> Response:
    return RedirectResponse(f"/admin?{urlencode({'done': code, 'subject': subject})}#{anchor}", status_code=303)


@router.get("/admin")
def admin_page(request: Request, done: str | None = None, subject: str | None = None) -> Response:
    """Users, tokens, and the forms to change them."""
    who, context = acting(request, Permission.ADMIN)
    notice = None
    if done in NOTICES and subject:
        known = ({user.name for user in service.list_users(context)} if done != "token_revoked"
                 else {token.id for token in service.list_tokens(context)})
        if subject in known:  # a link cannot make the page say anything else
            notice = say(request, NOTICES[done], subject=subject)
    return _admin_page(request, who, context, notice=notice)


@router.post("/admin/users")
def add_user(request: Request, name: FormText = "", role: FormText = "", password: FormText = "", repeat: FormText = "",
             csrf_token: FormText = "") -> Response:
    """Create a local account."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.ADMIN)
    forms = AdminForms(user=UserForm(name=name.strip(), role=role), about="user")
    try:
        if password != repeat:
            raise ServiceError("password: the two entries differ")
        user = service.add_user(context, name.strip(), _role(role, "role"), password)
    except ServiceError as exc:
        return _refused(request, who, context, forms, exc)
    return _done("user_added", user.name, "users")


@router.post("/admin/users/{name}/disable")
def disable_user(request: Request, name: Name, csrf_token: FormText = "") -> Response:
    """Disable an account: its tokens and sessions stop working at once."""
    return _set_disabled(request, name, csrf_token, True)


@router.post("/admin/users/{name}/enable")
def enable_user(request: Request, name: Name, csrf_token: FormText = "") -> Response:
    """Enable a disabled account again."""
    return _set_disabled(request, name, csrf_token, False)


def _set_disabled(request: Request, name: str, csrf_token: str, disabled: bool) -> Response:
    check_form(request, csrf_token)
    who, context = acting(request, Permission.ADMIN)
    try:
        user = service.set_disabled(context, service.get_user(context, name).name, disabled)
    except ServiceError as exc:
        return _refused(request, who, context, AdminForms(about="row"), exc)
    return _done("user_disabled" if user.disabled else "user_enabled", user.name, "users")


@router.post("/admin/password")
def reset_password(request: Request, user: FormText = "", password: FormText = "", repeat: FormText = "",
                   csrf_token: FormText = "") -> Response:
    """Set a user's new password (and lift a lockout)."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.ADMIN)
    forms = AdminForms(password_user=user, about="password")
    try:
        if password != repeat:
            raise ServiceError("password: the two entries differ")
        changed = service.reset_password(context, service.get_user(context, user).name, password)
    except ServiceError as exc:
        return _refused(request, who, context, forms, exc)
    return _done("password_reset", changed.name, "users")


@router.post("/admin/tokens")
def create_token(request: Request, user: FormText = "", role: FormText = "", expires: FormText = "",
                 note: FormText = "", csrf_token: FormText = "") -> Response:
    """A new API token: its secret is on this response only, never shown again."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.ADMIN)
    forms = AdminForms(token=TokenForm(user=user, role=role, expires=expires, note=note), about="token")
    try:
        if len(note) > NOTE_MAX:
            raise ServiceError(f"note: at most {NOTE_MAX} characters ({len(note)} given)")
        token, secret = service.create_token(context, service.get_user(context, user).name,
                                             _role(role, "role") if role else None, _day(expires, "expires"),
                                             note.strip() or None)
    except ServiceError as exc:
        return _refused(request, who, context, forms, exc)
    return render(request, "admin_token.html", who, status_code=201, token=token, secret=secret)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: Name, csrf_token: FormText = "") -> Response:
    """Revoke a token at once."""
    check_form(request, csrf_token)
    who, context = acting(request, Permission.ADMIN)
    try:
        token = service.revoke_token(context, token_id)
    except ServiceError as exc:
        return _refused(request, who, context, AdminForms(about="row"), exc)
    return _done("token_revoked", token.id, "tokens")


def change_text(entry: AuditEntry) -> str:
    """An entry's before → after on one line: `status: open → acknowledged; note: x` (bounded)."""
    before, after = entry.before or {}, entry.after or {}
    parts = []
    for key in [*before, *(key for key in after if key not in before)]:
        if key in before and key in after and before[key] != after[key]:
            parts.append(f"{key}: {_value(before[key])} → {_value(after[key])}")
        elif key in after:
            parts.append(f"{key}: {_value(after[key])}")
        else:
            parts.append(f"{key}: {_value(before[key])} → —")
    text = "; ".join(parts)
    return text if len(text) <= CHANGE_MAX else text[: CHANGE_MAX - 1] + "…"


def _value(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


@router.get("/admin/audit")
def audit_page(request: Request, action: str = "", subject: str = "", actor: str = "", since: str = "",
               limit: str = "") -> Response:
    """The audit log, newest first, filtered by action prefix, subject, actor and first day."""
    who, context = acting(request, Permission.ADMIN)
    filters = {"action": action.strip()[:64], "subject": subject.strip()[:256], "actor": actor.strip()[:64],
               "since": since.strip()[:40]}
    count = int(limit) if limit.isdigit() and int(limit) in AUDIT_LIMITS else AUDIT_LIMITS[0]
    problem, rows = None, []
    try:
        day = _day(filters["since"], "since")
        found = audit_entries(context, filters["action"] or None, filters["subject"] or None,
                              filters["actor"] or None, None if day is None else start_of_day(day),
                              min(count, audit_service.MAX_ENTRIES))
        rows = [(entry, change_text(entry)) for entry in found.items]
    except ServiceError as exc:
        problem = str(exc)
    return render(request, "audit.html", who, status_code=400 if problem else 200, filters=filters, limit=count,
                  limits=AUDIT_LIMITS, rows=rows, problem=problem)
