"""Users, roles, API tokens and authentication: who may do what, checked the same way for every front end.

Passwords are hashed with argon2 (pwdlib). API tokens are 256-bit random secrets shown once; the store keeps
their SHA-256 (a random secret of that size needs no slow hash, and a request must not cost an argon2 run).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache

from pwdlib import PasswordHash

from soc.core.clock import end_of_day, local_date
from soc.core.models import ApiToken, Role, User
from soc.services.context import ServiceContext, ServiceError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
TOKEN_PREFIX = "soc_"
SESSION_SECRET = "session"
TOKEN_TOUCH_EVERY = timedelta(minutes=1)
"""A token's `last_used` is written at most this often (the store's `touch_token` has the same rule)."""


class Permission(StrEnum):
    """What an action needs."""

    READ = "read"
    TRIAGE = "triage"
    """Change findings: transitions, comments, assignment."""
    SCAN = "scan"
    """Run scans and jobs now."""
    IMPORT = "import"
    """Import the register and coverage."""
    DRILLS = "drills"
    ADMIN = "admin"
    """Users, tokens, settings, the audit log."""


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset({Permission.READ, Permission.TRIAGE, Permission.SCAN, Permission.IMPORT}),
    Role.INCIDENT: frozenset({Permission.READ, Permission.DRILLS}),
    Role.VIEWER: frozenset({Permission.READ}),
}
"""Role → what it may do; a token's role must give no more than its owner's (a subset)."""


class AuthError(Exception):
    """Not authenticated: no, unknown, expired or revoked credentials, or a disabled or locked account.

    The message is for the log and the operator; the API says only "not authenticated" to the client."""


class PermissionDenied(Exception):
    """Authenticated, but the role does not allow the action."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, with which role (a token's, which may be lower than its owner's)."""

    name: str
    role: Role
    via: str
    """'session', 'token' or 'cli'."""
    token_id: str | None = None

    def can(self, permission: Permission) -> bool:
        """The role allows `permission`."""
        return permission in PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        """PermissionDenied unless the role allows `permission`."""
        if not self.can(permission):
            raise PermissionDenied(f"role {self.role.value} may not {permission.value}")


@cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def check_name(name: str) -> str:
    """A valid user name (ServiceError naming the rule otherwise)."""
    if not NAME_PATTERN.match(name):
        raise ServiceError(f"user name {name!r}: 2–64 characters, lower-case letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    """A password that may be set (ServiceError with the rule otherwise)."""
    if len(password) < MIN_PASSWORD:
        raise ServiceError(f"password: at least {MIN_PASSWORD} characters (a passphrase of a few words is best)")
    if len(password) > MAX_PASSWORD:
        raise ServiceError(f"password: at most {MAX_PASSWORD} characters")
    if password.strip() != password:
        raise ServiceError("password: no spaces at its start or end (they are easily lost when typed)")
    return password


def add_user(context: ServiceContext, name: str, role: Role, password: str) -> User:
    """Create a local account, audited (the hash is never in the audit log)."""
    user = User(name=check_name(name), role=role, created_at=context.clock.now())
    hashed = _hasher().hash(check_password(password))
    try:
        context.backend.users.add_user(user, hashed)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    context.audit("user.add", name, after={"role": role.value})
    return user


def get_user(context: ServiceContext, name: str) -> User:
    """One user (ServiceError naming it when unknown)."""
    user = context.backend.users.user(name)
    if user is None:
        raise ServiceError(f"no user {name!r} (see `soc users list`)")
    return user


def list_users(context: ServiceContext) -> list[User]:
    """Every user, by name."""
    return context.backend.users.users()


def has_admin(context: ServiceContext) -> bool:
    """Some enabled admin exists (else the service tells the operator how to create one)."""
    return any(user.role is Role.ADMIN and not user.disabled for user in list_users(context))


def set_disabled(context: ServiceContext, name: str, disabled: bool = True) -> User:
    """Disable (or enable again) an account; its tokens and sessions stop working at once."""
    before = get_user(context, name)
    after = context.backend.users.update_user(name, disabled=disabled)
    context.audit("user.disable" if disabled else "user.enable", name,
                  before={"disabled": before.disabled}, after={"disabled": after.disabled})
    return after


def reset_password(context: ServiceContext, name: str, password: str) -> User:
    """Set a new password (and lift a lockout), audited."""
    get_user(context, name)
    hashed = _hasher().hash(check_password(password))
    user = context.backend.users.update_user(name, password_hash=hashed, failed_logins=0, locked_until=None)
    context.audit("user.password_reset", name)
    return user


def login(context: ServiceContext, name: str, password: str) -> Principal:
    """Check a user's password; AuthError for a wrong one, an unknown user, a disabled or locked account.

    The `max_failed_logins`-th failure in a row locks the account for `lockout_minutes` (audited).
    """
    settings, now, users = context.settings.auth, context.clock.now(), context.backend.users
    user = users.user(name) if NAME_PATTERN.match(name) and len(password) <= MAX_PASSWORD else None
    stored = users.password_hash(name) if user is not None else None
    if user is None or stored is None:
        _hasher().verify(password[:MAX_PASSWORD], _dummy_hash())  # same cost as a known user
        raise AuthError(f"login {name[:64]!r}: unknown user")
    if user.locked_until is not None and user.locked_until > now:
        raise AuthError(f"login {name!r}: locked until {user.locked_until.isoformat(timespec='seconds')}")
    valid, new_hash = _hasher().verify_and_update(password, stored)
    if not valid or user.disabled:
        after = users.record_login(name, False, now, settings.max_failed_logins,
                                   timedelta(minutes=settings.lockout_minutes))
        if after.locked_until is not None and after.locked_until > now:
            context.audit("user.lockout", name, after={"locked_until": after.locked_until.isoformat()},
                          note=f"{settings.max_failed_logins} failed logins in a row")
        raise AuthError(f"login {name!r}: {'account disabled' if valid else 'wrong password'}")
    if new_hash is not None:
        users.update_user(name, password_hash=new_hash)
    users.record_login(name, True, now, settings.max_failed_logins, timedelta(minutes=settings.lockout_minutes))
    return Principal(name=name, role=user.role, via="session")


def session_principal(context: ServiceContext, name: str) -> Principal:
    """The principal of a signed session naming `name`: the account must still exist and be enabled."""
    user = context.backend.users.user(name)
    if user is None or user.disabled:
        raise AuthError(f"session of {name!r}: {'unknown user' if user is None else 'account disabled'}")
    return Principal(name=name, role=user.role, via="session")


def create_token(context: ServiceContext, user_name: str, role: Role | None = None,
                 expires: date | None = None, note: str | None = None) -> tuple[ApiToken, str]:
    """A new API token for a user; returns it and its secret (shown once, never stored in clear).

    `expires` is the last local day it works (default: `auth.token_days` from today); its role at most
    the owner's permissions.
    """
    owner = get_user(context, user_name)
    if owner.disabled:
        raise ServiceError(f"user {user_name!r} is disabled: no token can be made for them")
    role = role or owner.role
    if not PERMISSIONS[role] <= PERMISSIONS[owner.role]:
        raise ServiceError(f"a token of user {user_name!r} ({owner.role.value}) cannot have the role {role.value}")
    now = context.clock.now()
    last_day = expires or local_date(now + timedelta(days=context.settings.auth.token_days))
    if last_day < local_date(now):
        raise ServiceError(f"--expires {last_day.isoformat()}: in the past")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = ApiToken(id=token_id, user=user_name, role=role, created_at=now, expires_at=end_of_day(last_day),
                     note=note)
    context.backend.users.add_token(token, _digest(secret))
    context.audit("token.create", token_id, after={"user": user_name, "role": role.value,
                                                   "expires": last_day.isoformat()}, note=note)
    return token, f"{TOKEN_PREFIX}{token_id}_{secret}"


def list_tokens(context: ServiceContext, user_name: str | None = None) -> list[ApiToken]:
    """Every token (of one user), newest first; never their secrets."""
    return context.backend.users.tokens(user_name)


def revoke_token(context: ServiceContext, token_id: str) -> ApiToken:
    """Revoke a token at once, audited."""
    try:
        token = context.backend.users.revoke_token(token_id, context.clock.now())
    except KeyError:
        raise ServiceError(f"no token {token_id!r} (see `soc tokens list`)") from None
    context.audit("token.revoke", token_id, after={"user": token.user})
    return token


def token_principal(context: ServiceContext, presented: str, now: datetime | None = None) -> Principal:
    """The principal of a Bearer token; AuthError for a malformed, unknown, expired or revoked one or a
    disabled owner (the role is the token's, capped by the owner's current role)."""
    now = now or context.clock.now()
    token_id, secret = _parts(presented)
    found = context.backend.users.token(token_id)
    if found is None or not hmac.compare_digest(found[1], _digest(secret)):
        raise AuthError(f"token {token_id[:16]!r}: unknown")
    token = found[0]
    if token.revoked_at is not None:
        raise AuthError(f"token {token_id}: revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthError(f"token {token_id}: expired")
    owner = context.backend.users.user(token.user)
    if owner is None or owner.disabled:
        raise AuthError(f"token {token_id}: its user {token.user!r} is disabled")
    role = token.role if PERMISSIONS[token.role] <= PERMISSIONS[owner.role] else owner.role
    if token.last_used is None or token.last_used < now - TOKEN_TOUCH_EVERY:
        # the store writes at most once a minute anyway; asking it every request took the write lock every time
        context.backend.users.touch_token(token_id, now)
    return Principal(name=token.user, role=role, via="token", token_id=token_id)


def session_key(context: ServiceContext) -> str:
    """The key that signs session cookies: `auth.session_secret`, else one generated once and kept in the store."""
    configured = context.settings.auth.session_secret
    if configured is not None:
        return configured.get_secret_value()
    return context.backend.users.secret(SESSION_SECRET, secrets.token_urlsafe(48), context.clock.now())


def _parts(presented: str) -> tuple[str, str]:
    if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
        raise AuthError("token: not one of ours")
    token_id, _, secret = presented[len(TOKEN_PREFIX):].partition("_")
    if not token_id or not secret:
        raise AuthError("token: malformed")
    return token_id, secret


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
