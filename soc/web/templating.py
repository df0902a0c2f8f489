"""Jinja2 rendering of the dashboard: autoescaped templates, the language, the caller and the CSRF token.

Everything a portal controls reaches a template as data and is shown as text: autoescape is on for every
template, and `visible` (the same function the CLI and the exports use) writes control and bidi characters
as escapes, so a page title cannot hide or reorder text either.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from soc.core.untrusted import visible
from soc.services.users import Permission, Principal
from soc.web import i18n

LANGUAGE_COOKIE = "soc_lang"


@cache
def environment() -> Environment:
    """The one template environment (templates are read once)."""
    env = Environment(loader=PackageLoader("soc.web", "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
                      lstrip_blocks=True)
    # Jinja marks what `_()` returns as safe (it trusts the catalogue), so a word from data passed to `_()` —
    # a status, or worse a portal's text — would be written raw: the callables escape what they return.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: str(escape(i18n.gettext(message))),
        lambda singular, plural, count: str(escape(i18n.ngettext(singular, plural, count))), newstyle=True)
    # `{{ value | t }}` translates a word that comes from data (a status, a role), escaped like any value.
    env.filters.update(text=lambda value: visible(str(value), multiline=True), when=i18n.when, day=i18n.day,
                       number=i18n.number, percent=i18n.percent, t=lambda value: i18n.gettext(str(value)))
    return env


def language_of(request: Request) -> str:
    """The language asked for: `?lang=`, else the cookie, else Vietnamese."""
    return i18n.choose(request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE))


def render(request: Request, template: str, who: Principal | None, status_code: int = 200,
           **values: Any) -> HTMLResponse:
    """A page in the caller's language, with what every page needs (who, what they may do, CSRF token)."""
    language = language_of(request)
    i18n.use(language)
    session = request.scope.get("session") or {}
    page = environment().get_template(template).render(
        request=request, who=who, can=lambda name: who is not None and who.can(Permission(name)),
        csrf_token=session.get("csrf", ""), language=language, path=request.url.path,
        query=str(request.url.query), **values)
    response = HTMLResponse(page, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="lax", httponly=True)
    return response
