"""Charts drawn on the server as SVG text, shared by the dashboard and the reports: numbers and labels in, SVG out.

Pure functions (no I/O, no clock); every label is escaped, so a chart may be embedded as markup.
"""

from __future__ import annotations

from soc.charts.svg import GRADES, Bar, GradePoint, Point, bar_chart, grade_chart, line_chart, sparkline

__all__ = ["GRADES", "Bar", "GradePoint", "Point", "bar_chart", "grade_chart", "line_chart", "sparkline"]
