"""The SVG charts: well-formed, accessible (role="img", an aria-label and a title), labels escaped, nothing
fetched or run, and marks where the numbers put them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from soc.charts import Bar, GradePoint, Point, bar_chart, grade_chart, line_chart, sparkline

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def parsed(svg: str) -> ET.Element:
    """The chart as XML: it must be well-formed, with the svg namespace."""
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def charts(label: str) -> dict[str, str]:
    """One chart of each kind, with `label` wherever a label goes."""
    return {
        "bar": bar_chart([Bar(label, 42.0), Bar("Sở Y tế", None)], title=label, target=80),
        "line": line_chart([Point(label, 10.0), Point("12/2026", 20.0)], title=label, target=50),
        "sparkline": sparkline([1.0, None, 3.0], title=label),
        "grade": grade_chart([GradePoint(label, "B"), GradePoint("28/11/2026", "A")], title=label),
    }


@pytest.mark.parametrize("kind", ["bar", "line", "sparkline", "grade"])
def test_every_chart_is_accessible_and_escapes_its_labels(kind: str) -> None:
    svg = charts(HOSTILE)[kind]
    root = parsed(svg)
    assert root.get("role") == "img" and root.get("aria-label") == HOSTILE
    assert root[0].tag == f"{NS}title" and root[0].text == HOSTILE
    assert "<script" not in svg and "<img" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in svg
    assert [e.tag for e in root.iter() if e.tag in (f"{NS}script", f"{NS}foreignObject", f"{NS}image")] == []


@pytest.mark.parametrize("kind", ["bar", "line", "sparkline", "grade"])
def test_no_chart_refers_to_anything_outside_or_carries_a_style(kind: str) -> None:
    svg = charts("Sở Tư pháp")[kind]
    assert re.findall(r"https?://[^\"]+", svg) == ["http://www.w3.org/2000/svg"]
    assert "style=" not in svg and "href" not in svg and "@import" not in svg and "url(" not in svg
    assert parsed(svg).get("viewBox") and parsed(svg).get("width") is None  # sized by CSS, through its viewBox


def test_control_and_bidi_characters_in_a_label_are_shown_as_escapes() -> None:
    svg = bar_chart([Bar("Sở\x1b[2J\u202eTư pháp", 10.0)], title="t\u200b")
    assert "\x1b" not in svg and "\u202e" not in svg and "\u200b" not in svg
    assert "Sở\\x1b[2J\\u202eTư pháp" in svg and "t\\u200b" in svg


def _rects(svg: str) -> list[ET.Element]:
    return list(parsed(svg).iter(f"{NS}rect"))


def test_bars_are_as_long_as_their_values() -> None:
    svg = bar_chart([Bar("half", 50.0, "50 %"), Bar("over", 250.0), Bar("none", None), Bar("zero", 0.0)],
                    title="Tỷ lệ", maximum=100)
    widths = [float(rect.get("width") or "nan") for rect in _rects(svg)]
    assert widths[0] * 2 == widths[1] > 0  # 50 of 100 is half the track; 250 is drawn at its end
    assert widths[2] == 0 and len(widths) == 3  # no rect for a bar without a value
    texts = ["".join(t.itertext()) for t in parsed(svg).iter(f"{NS}text")]
    assert "50 %" in texts and "—" in texts
    titles = ["".join(t.itertext()) for t in parsed(svg).iter(f"{NS}title")]
    assert "half: 50 %" in titles and "none: —" in titles


def test_a_long_bar_label_is_cut_and_whole_in_its_tooltip() -> None:
    name = "Ủy ban nhân dân tỉnh Đồng Nai và các đơn vị trực thuộc khác"
    root = parsed(bar_chart([Bar(name, 10.0)], title="t"))
    shown = ["".join(t.itertext()) for t in root.iter(f"{NS}text")]
    assert any(text.endswith("…") and name.startswith(text[:-1]) for text in shown)
    assert f"{name}: 10.0" in ["".join(t.itertext()) for t in root.iter(f"{NS}title")]


def test_a_line_breaks_where_a_value_is_missing_and_has_its_target() -> None:
    svg = line_chart([Point("01", 10.0), Point("02", 20.0), Point("03", None), Point("04", 40.0)], title="Xu hướng",
                     target=80, target_text="mục tiêu ≥ 80%")
    path = next(e for e in parsed(svg).iter(f"{NS}path")).get("d") or ""
    assert path.count("M") == 2 and path.count("L") == 1
    assert len(list(parsed(svg).iter(f"{NS}circle"))) == 3
    assert "stroke-dasharray" in svg and "mục tiêu ≥ 80%" in svg
    ys = [float(c.get("cy") or "nan") for c in parsed(svg).iter(f"{NS}circle")]
    assert ys[0] > ys[1] > ys[2]  # a higher value is drawn higher


def test_a_line_with_no_value_says_so() -> None:
    svg = line_chart([Point("01", None)], title="Không có số liệu")
    assert not list(parsed(svg).iter(f"{NS}path")) and "—" in svg


def test_grades_are_drawn_best_at_the_top_and_labelled_where_they_change() -> None:
    points = [GradePoint("1", "A+"), GradePoint("2", "A+"), GradePoint("3", "F"), GradePoint("4", None),
              GradePoint("5", "T"), GradePoint("6", "Z")]
    root = parsed(grade_chart(points, title="Hạng"))
    circles = list(root.iter(f"{NS}circle"))
    assert len(circles) == 3 + 0 + 1  # A+, A+, F, then T; no grade and an unknown grade leave gaps
    ys = [float(c.get("cy") or "nan") for c in circles]
    assert ys[0] == ys[1] < ys[2] < ys[3]
    letters = ["".join(t.itertext()) for t in root.iter(f"{NS}text") if t.get("font-weight") == "700"]
    assert letters == ["A+", "F", "T"]


def test_a_sparkline_marks_its_last_value() -> None:
    root = parsed(sparkline([10.0, 50.0, None], title="Xu hướng", tone="ok"))
    assert len(list(root.iter(f"{NS}circle"))) == 1 and root.get("viewBox") == "0 0 120 32"
