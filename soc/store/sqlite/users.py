"""Users, API tokens and the service's own secrets on SQLite (hashes only: no password or token in clear)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from soc.core.models import ApiToken, User
from soc.store.sqlite.schema import BEGIN_OPTION, api_tokens, service_secrets, users

_USER_COLUMNS = [column for column in users.c if column.name != "password_hash"]
_TOKEN_COLUMNS = [column for column in api_tokens.c if column.name != "secret_hash"]


class SqliteUserStore:
    """The `UserStore` protocol on the backend's SQLite database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})

    def add_user(self, user: User, password_hash: str) -> User:
        """Create a user (ValueError: the name is taken)."""
        try:
            with self._writer.begin() as conn:
                conn.execute(insert(users).values(user.model_dump(mode="python") | {"password_hash": password_hash}))
        except IntegrityError:
            raise ValueError(f"user {user.name!r} exists already") from None
        return user

    def user(self, name: str) -> User | None:
        """One user, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(*_USER_COLUMNS).where(users.c.name == name)).mappings().first()
        return None if row is None else User.model_validate(dict(row))

    def password_hash(self, name: str) -> str | None:
        """The stored hash of a user's password (None: no such user)."""
        with self._engine.connect() as conn:
            return conn.execute(select(users.c.password_hash).where(users.c.name == name)).scalar()

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(*_USER_COLUMNS).order_by(users.c.name)).mappings()
            return [User.model_validate(dict(row)) for row in rows]

    def update_user(self, name: str, **values: Any) -> User:
        """Change some columns of a user (`disabled`, `role`, `password_hash`, …); KeyError: no such user."""
        with self._writer.begin() as conn:
            if conn.execute(update(users).where(users.c.name == name).values(values)).rowcount == 0:
                raise KeyError(f"no user {name!r}")
        found = self.user(name)
        assert found is not None
        return found

    def record_login(self, name: str, success: bool, now: datetime, max_failed: int, lockout: timedelta) -> User:
        """Count a login attempt: success resets the failures; the `max_failed`-th failure in a row locks the
        account until `now + lockout`."""
        with self._writer.begin() as conn:
            row = conn.execute(select(users.c.failed_logins).where(users.c.name == name)).first()
            if row is None:
                raise KeyError(f"no user {name!r}")
            if success:
                values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login": now}
            else:
                failed = row[0] + 1
                values = {"failed_logins": failed}
                if failed >= max_failed:
                    values |= {"failed_logins": 0, "locked_until": now + lockout}
            conn.execute(update(users).where(users.c.name == name).values(values))
        found = self.user(name)
        assert found is not None
        return found

    def add_token(self, token: ApiToken, secret_hash: str) -> ApiToken:
        """Keep a new token (its secret only as a hash)."""
        with self._writer.begin() as conn:
            conn.execute(insert(api_tokens).values(token.model_dump(mode="python") | {"secret_hash": secret_hash}))
        return token

    def token(self, token_id: str) -> tuple[ApiToken, str] | None:
        """A token and its secret's hash, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
        if row is None:
            return None
        data = dict(row)
        secret_hash = data.pop("secret_hash")
        return ApiToken.model_validate(data), secret_hash

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        """Every token (of one user), newest first."""
        stmt = select(*_TOKEN_COLUMNS).order_by(api_tokens.c.created_at.desc(), api_tokens.c.id)
        if user is not None:
            stmt = stmt.where(api_tokens.c.user == user)
        with self._engine.connect() as conn:
            return [ApiToken.model_validate(dict(row)) for row in conn.execute(stmt).mappings()]

    def revoke_token(self, token_id: str, now: datetime) -> ApiToken:
        """Revoke a token (KeyError: unknown); revoking twice keeps the first moment."""
        with self._writer.begin() as conn:
            if conn.execute(select(api_tokens.c.id).where(api_tokens.c.id == token_id)).first() is None:
                raise KeyError(f"no token {token_id!r}")
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                         .where(api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
        found = self.token(token_id)
        assert found is not None
        return found[0]

    def touch_token(self, token_id: str, now: datetime) -> None:
        """Record a use of the token (written at most once a minute per token, not on every request)."""
        with self._writer.begin() as conn:
            stale = api_tokens.c.last_used.is_(None) | (api_tokens.c.last_used < now - timedelta(minutes=1))
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).where(stale).values(last_used=now))

    def secret(self, name: str, make: str, now: datetime) -> str:
        """The service secret called `name`, created with the value `make` if there is none yet."""
        with self._writer.begin() as conn:
            value = conn.execute(select(service_secrets.c.value).where(service_secrets.c.name == name)).scalar()
            if value is None:
                conn.execute(insert(service_secrets).values(name=name, value=make, created_at=now))
                value = make
        return str(value)
