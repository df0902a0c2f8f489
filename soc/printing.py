"""What every printed document shares (kept apart from soc.documents, which loads WeasyPrint): the stylesheet,
the template environment, the date line of an administrative document."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup


@cache
def print_css() -> Markup:
    """soc/print.css (A4 page, Noto fonts also on the margin boxes, tables, headings): ours, so not escaped."""
    return Markup(Path(__file__).with_name("print.css").read_text(encoding="utf-8"))


@cache
def templates(package: str) -> Environment:
    """The Jinja2 environment of a package's `templates/` (autoescape on: everything shown came from outside)."""
    return Environment(loader=PackageLoader(package, "templates"), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def long_date(value: date, lang: str) -> str:
    """The date line of a Vietnamese administrative document: 'ngày 01 tháng 12 năm 2026' ('01/12/2026' in
    English)."""
    return f"ngày {value.day:02d} tháng {value.month:02d} năm {value.year}" if lang == "vi" else f"{value:%d/%m/%Y}"
