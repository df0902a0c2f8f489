"""`soc users …` and `soc tokens …`: local accounts and API tokens (admin tasks on the store)."""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from soc.cli.common import DbOption, console, default_actor, fail, service_context, shown
from soc.core.clock import local_date, local_time
from soc.core.models import Role
from soc.services import users as service

users_app = typer.Typer(help="Người dùng / Local accounts (roles admin, operator, incident, viewer).",
                        no_args_is_help=True)
tokens_app = typer.Typer(help="Mã truy cập API / API tokens (`Authorization: Bearer …`).", no_args_is_help=True)

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of "
                                             "standard input (scripts) instead of a prompt.")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("no terminal to ask the password: pass it on standard input with --password-stdin")
    first = typer.prompt("Mật khẩu / Password", hide_input=True)
    if typer.prompt("Nhập lại / Again", hide_input=True) != first:
        fail("the two passwords differ")
    return str(first)


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (lower-case letters, digits, . _ -).")],
    role: Annotated[Role, typer.Option("--role", help="admin | operator | incident | viewer.")],
    password_stdin: PasswordStdin = False,
    db: DbOption = None,
) -> None:
    """Thêm người dùng / Add a local account (the password is asked, never given on the command line)."""
    password = _password(password_stdin)
    with service_context(ctx, db, default_actor()) as context:
        user = service.add_user(context, name, role, password)
    console.print(f"Đã tạo / created: {shown(user.name)} ({user.role.value})")


@users_app.command("list")
def list_(ctx: typer.Context, db: DbOption = None) -> None:
    """Danh sách người dùng / List the accounts."""
    with service_context(ctx, db, writes=False) as context:
        users = service.list_users(context)
    table = Table(title="Người dùng / Users")
    for column in ("Tên / Name", "Vai trò / Role", "Trạng thái / State", "Đăng nhập cuối / Last login"):
        table.add_column(column)
    for user in users:
        state = "khóa / disabled" if user.disabled else "hoạt động / active"
        if user.locked_until is not None:
            state += f", tạm khóa đến / locked until {local_time(user.locked_until)}"
        table.add_row(shown(user.name), user.role.value, state, local_time(user.last_login) if user.last_login else "—")
    console.print(table)
    if not users:
        console.print("Chưa có người dùng / no users yet: soc users add NAME --role admin")


@users_app.command("disable")
def disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = None) -> None:
    """Khóa tài khoản / Disable an account (its tokens and sessions stop working at once)."""
    with service_context(ctx, db, default_actor()) as context:
        service.set_disabled(context, name, True)
    console.print(f"Đã khóa / disabled: {shown(name)}")


@users_app.command("enable")
def enable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = None) -> None:
    """Mở khóa tài khoản / Enable an account again."""
    with service_context(ctx, db, default_actor()) as context:
        service.set_disabled(context, name, False)
    console.print(f"Đã mở khóa / enabled: {shown(name)}")


@users_app.command("reset-password")
def reset_password(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")],
                   password_stdin: PasswordStdin = False, db: DbOption = None) -> None:
    """Đặt lại mật khẩu / Set a new password (lifts a lockout)."""
    password = _password(password_stdin)
    with service_context(ctx, db, default_actor()) as context:
        service.reset_password(context, name, password)
    console.print(f"Đã đặt lại mật khẩu / password reset: {shown(name)}")


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="Owner of the token.")],
    role: Annotated[Role | None, typer.Option("--role", help="Lower role than the owner's (default: theirs).")]
    = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Last day it works, YYYY-MM-DD "
                                                "(default: 90 days, SOC_AUTH__TOKEN_DAYS).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="What it is for.")] = None,
    db: DbOption = None,
) -> None:
    """Tạo mã truy cập / Create an API token; the token is printed once, alone on the last line."""
    last_day = None
    if expires is not None:
        try:
            last_day = date.fromisoformat(expires)
        except ValueError:
            fail(f"--expires {expires}: not a date (YYYY-MM-DD)")
    with service_context(ctx, db, default_actor()) as context:
        token, secret = service.create_token(context, user, role, last_day, note)
    expiry = local_date(token.expires_at).isoformat() if token.expires_at else "—"
    console.print(f"Mã {token.id} của / token of {shown(token.user)} ({token.role.value}), hết hạn / expires "
                  f"{expiry}. Chỉ hiện một lần / shown only once:", soft_wrap=True)
    print(secret, flush=True)


@tokens_app.command("list")
def tokens_list(ctx: typer.Context, user: Annotated[str | None, typer.Option("--user")] = None,
                db: DbOption = None) -> None:
    """Danh sách mã truy cập / List API tokens (never their secrets)."""
    with service_context(ctx, db, writes=False) as context:
        tokens = service.list_tokens(context, user)
        now = context.clock.now()
    table = Table(title="Mã truy cập API / API tokens")
    for column in ("Mã / Id", "Người / User", "Vai trò / Role", "Hết hạn / Expires", "Trạng thái / State",
                   "Dùng lần cuối / Last used", "Ghi chú / Note"):
        table.add_column(column)
    for token in tokens:
        if token.revoked_at is not None:
            state = f"thu hồi / revoked {local_time(token.revoked_at)}"
        elif token.expires_at is not None and token.expires_at <= now:
            state = "hết hạn / expired"
        else:
            state = "hiệu lực / valid"
        table.add_row(token.id, shown(token.user), token.role.value,
                      local_date(token.expires_at).isoformat() if token.expires_at else "—", state,
                      local_time(token.last_used) if token.last_used else "—", shown(token.note or ""))
    console.print(table)


@tokens_app.command("revoke")
def revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="Token id (from `soc tokens list`).")],
           db: DbOption = None) -> None:
    """Thu hồi mã truy cập / Revoke an API token at once."""
    with service_context(ctx, db, default_actor()) as context:
        token = service.revoke_token(context, token_id)
    console.print(f"Đã thu hồi / revoked: {token.id} ({shown(token.user)})")
