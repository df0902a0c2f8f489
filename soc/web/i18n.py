"""Languages of the dashboard: gettext catalogues (Babel `.po` files, read at start), Vietnamese first.

Messages are written in English in the templates (`{{ _("Findings") }}`); the `.po` files of
`locale/vi/LC_MESSAGES/` give the Vietnamese (one file per area of the dashboard, merged). The catalogues
are compiled in memory when first used, so no binary `.mo` file is kept in the repository. Dates, times and
numbers are formatted by Babel for the language, times in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import contextvars
from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

from soc.core.clock import LOCAL_ZONE

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("vi", "en")
DEFAULT = "vi"
_current: contextvars.ContextVar[str] = contextvars.ContextVar("soc_web_language", default=DEFAULT)


def choose(value: str | None) -> str:
    """A supported language (the default for anything else)."""
    return value if value in LANGUAGES else DEFAULT


def use(language: str) -> None:
    """Render in `language` from now on in this context (one request)."""
    _current.set(choose(language))


def current() -> str:
    """The language of the request being rendered."""
    return _current.get()


@cache
def translations(language: str) -> Translations:
    """The catalogue of one language: every `.po` file of its directory (one per area of the dashboard:
    messages.po, findings.po, …), compiled in memory and merged."""
    merged: Translations | None = None
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as source:
            catalog = read_po(source, locale=language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        part = Translations(compiled)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged if merged is not None else Translations()


def gettext(message: str) -> str:
    """`message` in the current language."""
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural of a message in the current language."""
    return translations(current()).ngettext(singular, plural, count)


def when(moment: datetime | None, *, seconds: bool = False) -> str:
    """A moment as shown (Asia/Ho_Chi_Minh): '27/11/2026 09:00' in both languages (the plans' own format)."""
    if moment is None:
        return "—"
    pattern = "dd/MM/yyyy HH:mm:ss" if seconds else "dd/MM/yyyy HH:mm"
    return format_datetime(moment, pattern, tzinfo=LOCAL_ZONE, locale=Locale.parse(current()))


def day(value: date | None) -> str:
    """A date as shown: '27/11/2026'."""
    return "—" if value is None else format_date(value, "dd/MM/yyyy", locale=Locale.parse(current()))


def number(value: float | int | None, digits: int = 0) -> str:
    """A number in the language's format (vi: 1.234,5)."""
    if value is None:
        return "—"
    pattern = "#,##0" if digits == 0 else "#,##0." + "0" * digits
    return format_decimal(value, pattern, locale=Locale.parse(current()))


def percent(value: float | None, digits: int = 1) -> str:
    """A percentage given as 0–100 (vi: 80,5 %)."""
    if value is None:
        return "—"
    return format_percent(value / 100, "#,##0." + "0" * digits + " %", locale=Locale.parse(current()))
