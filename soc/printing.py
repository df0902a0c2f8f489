"""The stylesheet every printed document shares (kept apart from soc.documents, which loads WeasyPrint)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from markupsafe import Markup


@cache
def print_css() -> Markup:
    """soc/print.css (A4 page, Noto fonts also on the margin boxes, tables, headings): ours, so not escaped."""
    return Markup(Path(__file__).with_name("print.css").read_text(encoding="utf-8"))
