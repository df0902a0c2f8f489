"""SVG charts: bars (one figure per agency), a line (a 12-month trend), a sparkline and a grade history.

Each function returns one `<svg>` element as text:
- every label is escaped (`html.escape(visible(label))`): text from a spreadsheet or a portal is shown as text,
  with control and bidi characters written as escapes, and cannot become markup;
- sized by its viewBox only (the page's CSS sets the width); no script, no font file, no external reference;
- coloured with presentation attributes (fill, stroke), never a style attribute: the dashboard's CSP forbids
  inline styles, and a report embedding the chart needs no stylesheet;
- accessible: role="img", an aria-label and a <title> naming what it shows; each mark has a <title> of its own
  (label and value), shown as a tooltip.
Numbers arrive formatted by the caller (`text`, in the reader's language); a mark without one shows its value
with one decimal.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from soc.core.untrusted import visible

Tone = Literal["neutral", "ok", "bad", "warn"]
COLOURS: dict[str, str] = {"neutral": "#0b4f8a", "ok": "#116329", "bad": "#a40e26", "warn": "#9a6700"}
"""The dashboard's colours (soc.css), each with at least 4.5:1 contrast on white."""
INK, MUTED, GRID = "#1b1f24", "#57606a", "#d0d7de"
GRADES = ("A+", "A", "A-", "B", "C", "D", "E", "F", "T")
"""TLS grades, best first (checks/grading.yaml); T (certificate not trusted) is drawn below F."""
GRADE_TONES: dict[str, Tone] = {"A+": "ok", "A": "ok", "A-": "ok", "B": "warn", "C": "warn"}
"""Grades drawn green or amber; every other one red."""
LABEL_CHARS = 34
"""A bar's label longer than this is cut with an ellipsis (the whole label is in the bar's tooltip)."""


@dataclass(frozen=True)
class Bar:
    """One bar: a label (e.g. an agency's name), its value (None: nothing to measure) and how it is shown."""

    label: str
    value: float | None
    text: str | None = None
    """Written at the end of the bar (default: the value with one decimal; '—' without a value)."""
    tone: Tone = "neutral"


@dataclass(frozen=True)
class Point:
    """One point of a line: its x-axis label (e.g. '11/2026') and value (None: a gap in the line)."""

    label: str
    value: float | None
    text: str | None = None
    """The value as the tooltip shows it (default: one decimal)."""


@dataclass(frozen=True)
class GradePoint:
    """One assessment of a grade history: when (its label) and the grade (None: not graded, a gap)."""

    label: str
    grade: str | None


def escaped(value: str) -> str:
    """A label as SVG text or attribute value: invisible and control characters shown, markup escaped."""
    return html.escape(visible(value), quote=True)


def _n(value: float) -> str:
    """A coordinate, short ('12.5', '40')."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _shown(value: float | None, text: str | None) -> str:
    if text is not None:
        return text
    return "—" if value is None else f"{value:.1f}"


def _short(label: str, limit: int = LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _svg(width: int, height: float, title: str, body: Sequence[str], description: str = "") -> str:
    label = escaped(title)
    desc = f"<desc>{escaped(description)}</desc>" if description else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {_n(height)}" '
            f'role="img" aria-label="{label}" font-family="system-ui, sans-serif" font-size="13" fill="{INK}">'
            f"<title>{label}</title>{desc}{''.join(body)}</svg>")


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int | None = None,
          fill: str | None = None, weight: str | None = None) -> str:
    extra = (f' font-size="{size}"' if size else "") + (f' fill="{fill}"' if fill else "") + (
        f' font-weight="{weight}"' if weight else "")
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>{escaped(content)}</text>'


def _tick(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def bar_chart(bars: Sequence[Bar], *, title: str, maximum: float = 100.0, target: float | None = None,
              target_text: str | None = None, unit: str = "", description: str = "") -> str:
    """Horizontal bars, one per label, from 0 to `maximum` (values beyond are drawn at the end), with an optional
    dashed target line; a bar without a value shows '—'."""
    width, label_right, left, right, row, top = 640, 232, 240, 560, 26, 26
    maximum = maximum if maximum > 0 else 1.0
    scale = (right - left) / maximum
    bottom = top + row * max(len(bars), 1)
    body = [f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{bottom}" stroke="{MUTED}"/>']
    for fraction in (0.5, 1.0):
        x = left + (right - left) * fraction
        body.append(f'<line x1="{_n(x)}" y1="{top - 4}" x2="{_n(x)}" y2="{bottom}" stroke="{GRID}"/>')
    for fraction in (0.0, 0.5, 1.0):
        body.append(_text(left + (right - left) * fraction, bottom + 18, _tick(maximum * fraction) + unit,
                          anchor="middle", size=12, fill=MUTED))
    for index, bar in enumerate(bars):
        y = top + index * row
        shown = _shown(bar.value, bar.text)
        parts = [f"<title>{escaped(bar.label)}: {escaped(shown)}</title>",
                 _text(label_right, y + row / 2 + 4, _short(bar.label), anchor="end")]
        if bar.value is None:
            parts.append(_text(left + 6, y + row / 2 + 4, shown, fill=MUTED))
        else:
            length = max(0.0, min(bar.value, maximum)) * scale
            parts.append(f'<rect x="{left}" y="{y + 5}" width="{_n(length)}" height="{row - 10}" rx="2" '
                         f'fill="{COLOURS[bar.tone]}"/>')
            parts.append(_text(left + length + 6, y + row / 2 + 4, shown, size=12, weight="600"))
        body.append(f"<g>{''.join(parts)}</g>")
    if not bars:
        body.append(_text(left + 6, top + row / 2 + 4, "—", fill=MUTED))
    if target is not None and 0 <= target <= maximum:
        x = left + target * scale
        body.append(f'<line x1="{_n(x)}" y1="{top - 8}" x2="{_n(x)}" y2="{bottom}" stroke="{INK}" '
                    f'stroke-width="1.5" stroke-dasharray="5 3"/>')
        body.append(_text(x, top - 12, target_text or _tick(target) + unit, anchor="middle", size=12))
    return _svg(width, bottom + 28, title, body, description)


def _segments(xs: Sequence[float], ys: Sequence[float | None]) -> str:
    """An SVG path through the points with a value, broken where a value is missing."""
    path, drawing = [], False
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            drawing = False
            continue
        path.append(f"{'L' if drawing else 'M'}{_n(x)} {_n(y)}")
        drawing = True
    return " ".join(path)


def _label_indices(count: int, most: int) -> list[int]:
    """Which x-axis labels to write: all of them, or at most `most` evenly spread (the first and last among)."""
    if count <= most:
        return list(range(count))
    step = (count - 1) / (most - 1)
    return sorted({round(step * k) for k in range(most)})


def line_chart(points: Sequence[Point], *, title: str, minimum: float = 0.0, maximum: float = 100.0,
               target: float | None = None, target_text: str | None = None, unit: str = "",
               tone: Tone = "neutral", description: str = "") -> str:
    """A line through the points (a trend), gaps where a value is missing, y from `minimum` to `maximum`, with an
    optional dashed target line."""
    width, height, left, right, top, bottom = 480, 220, 44, 450, 18, 184
    span = maximum - minimum if maximum > minimum else 1.0

    def y_of(value: float) -> float:
        return bottom - (min(max(value, minimum), minimum + span) - minimum) / span * (bottom - top)

    count = len(points)
    xs = [left + (right - left) * (i / (count - 1) if count > 1 else 0.5) for i in range(count)]
    ys = [None if p.value is None else y_of(p.value) for p in points]
    body = []
    for k in range(5):
        value = minimum + span * k / 4
        y = y_of(value)
        body.append(f'<line x1="{left}" y1="{_n(y)}" x2="{right}" y2="{_n(y)}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, _tick(value) + unit, anchor="end", size=12, fill=MUTED))
    for i in _label_indices(count, 6):
        body.append(_text(xs[i], bottom + 20, points[i].label, anchor="middle", size=12, fill=MUTED))
    if target is not None and minimum <= target <= minimum + span:
        y = y_of(target)
        body.append(f'<line x1="{left}" y1="{_n(y)}" x2="{right}" y2="{_n(y)}" stroke="{INK}" stroke-width="1.5" '
                    f'stroke-dasharray="5 3"/>')
        body.append(_text(right, y - 5, target_text or _tick(target) + unit, anchor="end", size=12))
    colour = COLOURS[tone]
    path = _segments(xs, ys)
    if path:
        body.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2.5" stroke-linejoin="round"/>')
    for x, mark, point in zip(xs, ys, points, strict=True):
        if mark is not None:
            body.append(f'<circle cx="{_n(x)}" cy="{_n(mark)}" r="4" fill="{colour}"><title>{escaped(point.label)}: '
                        f"{escaped(_shown(point.value, point.text))}</title></circle>")
    if not path:
        body.append(_text((left + right) / 2, (top + bottom) / 2, "—", anchor="middle", fill=MUTED))
    return _svg(width, height, title, body, description)


def sparkline(values: Sequence[float | None], *, title: str, minimum: float = 0.0, maximum: float = 100.0,
              tone: Tone = "neutral") -> str:
    """A small line without axes (a tile's trend); the last value is marked."""
    width, height, pad = 120, 32, 3
    span = maximum - minimum if maximum > minimum else 1.0
    count = len(values)
    xs = [pad + (width - 2 * pad) * (i / (count - 1) if count > 1 else 0.5) for i in range(count)]
    ys = [None if v is None else height - pad - (min(max(v, minimum), minimum + span) - minimum) / span
          * (height - 2 * pad) for v in values]
    colour = COLOURS[tone]
    body = []
    path = _segments(xs, ys)
    if path:
        body.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"/>')
    last = next(((x, y) for x, y in zip(reversed(xs), reversed(ys), strict=True) if y is not None), None)
    if last is not None:
        body.append(f'<circle cx="{_n(last[0])}" cy="{_n(last[1])}" r="2.5" fill="{colour}"/>')
    return _svg(width, height, title, body)


def grade_chart(points: Sequence[GradePoint], *, title: str, grades: Sequence[str] = GRADES,
                description: str = "") -> str:
    """A portal's grades over time: one row per grade (best at the top), a step line holding each grade until the
    next assessment, the letter written where it changes. An assessment without a grade (or with one outside
    `grades`) leaves a gap."""
    row, top, left, right = 20, 14, 40, 620
    rank = {grade: index for index, grade in enumerate(grades)}
    bottom = top + row * len(grades)
    height = bottom + 30
    count = len(points)
    xs = [left + 16 + (right - left - 32) * (i / (count - 1) if count > 1 else 0.5) for i in range(count)]
    ys = [top + row * rank[p.grade] + row / 2 if p.grade is not None and p.grade in rank else None
          for p in points]
    body = []
    for grade, index in rank.items():
        level = top + row * index + row / 2
        body.append(f'<line x1="{left}" y1="{_n(level)}" x2="{right}" y2="{_n(level)}" stroke="{GRID}"/>')
        body.append(_text(left - 8, level + 4, grade, anchor="end", size=12, fill=MUTED))
    for i in _label_indices(count, 6):
        body.append(_text(xs[i], bottom + 20, points[i].label, anchor="middle", size=12, fill=MUTED))
    steps, previous = [], None
    for x, y in zip(xs, ys, strict=True):
        if y is None:
            previous = None
            continue
        steps.append(f"M{_n(x)} {_n(y)}" if previous is None else f"H{_n(x)} V{_n(y)}")
        previous = y
    if steps:
        body.append(f'<path d="{" ".join(steps)}" fill="none" stroke="{COLOURS["neutral"]}" stroke-width="2"/>')
    shown_grade: str | None = None
    for x, y, point in zip(xs, ys, points, strict=True):
        if y is None or point.grade is None:
            shown_grade = None
            continue
        colour = COLOURS[GRADE_TONES.get(point.grade, "bad")]
        body.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4.5" fill="{colour}"><title>{escaped(point.label)}: '
                    f"{escaped(point.grade)}</title></circle>")
        if point.grade != shown_grade:
            body.append(_text(x + 7, y - 5, point.grade, size=12, fill=colour, weight="700"))
            shown_grade = point.grade
    if not steps:
        body.append(_text((left + right) / 2, (top + bottom) / 2, "—", anchor="middle", fill=MUTED))
    return _svg(640, height, title, body, description)
