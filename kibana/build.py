"""Build the Kibana saved objects of the SOC (data views, Lens panels, saved searches, dashboards) as NDJSON.

Written by a program, not exported from a Kibana, so that every field name comes from the same shapes the
index templates are made of (soc/store/search/shapes.py) and a renamed field fails a test rather than a panel.
Run `python kibana/build.py` after changing this file; tests/contract/test_kibana_objects.py checks that the
files are current and that every field they name exists in its index template.

Format: Kibana 8.9 or later (Lens `formBased` datasource, `typeMigrationVersion`); import with
POST /api/saved_objects/_import, the data views first (see kibana/README.md).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from soc.core.drill_records import ActionStatus  # noqa: E402
from soc.core.models import FindingStatus  # noqa: E402
from soc.store.search.shapes import (  # noqa: E402
    DRILL_ACTIONS,
    DRILL_SESSIONS,
    FINDING_EVENTS,
    FINDINGS,
    KPI_SNAPSHOTS,
    PORTAL_SCANS,
    RUNS,
    Shape,
)

PREFIX = "soc"
CORE = "8.8.0"
"""`coreMigrationVersion` of every object (what Kibana 8.8+ exports)."""
TYPE_VERSION = {"index-pattern": "8.0.0", "search": "8.0.0", "lens": "8.9.0", "dashboard": "8.9.0"}
"""The last migration each type's content is already in (Kibana runs only later ones on import)."""

OPEN = (FindingStatus.OPEN.value, FindingStatus.ACKNOWLEDGED.value)
OPEN_KQL = f"{FINDINGS.path('status')} : ({' or '.join(OPEN)})"
"""Findings someone still has to act on."""
SLA_KQL = f"{OPEN_KQL} and {FINDINGS.path('due_at')} < now"
"""Findings past their deadline and not closed (the deadline is stored; KQL compares it with now)."""

DATA_VIEWS: dict[str, tuple[Shape, str, dict[str, Any]]] = {
    "soc-findings": (FINDINGS, "Phát hiện / Findings", {
        FINDINGS.path("portal_url"): {"id": "url", "params": {"type": "a", "urlTemplate": "", "labelTemplate": ""}}}),
    "soc-portal-scans": (PORTAL_SCANS, "Đánh giá cổng / Portal assessments", {
        PORTAL_SCANS.path("portal_url"): {"id": "url",
                                           "params": {"type": "a", "urlTemplate": "", "labelTemplate": ""}}}),
    "soc-kpis": (KPI_SNAPSHOTS, "Chỉ tiêu KPI / KPIs", {
        KPI_SNAPSHOTS.path("percent"): {"id": "number", "params": {"pattern": "0.0"}},
        KPI_SNAPSHOTS.path("target_percent"): {"id": "number", "params": {"pattern": "0.0"}}}),
    "soc-drill-sessions": (DRILL_SESSIONS, "Phiên diễn tập / Drill sessions", {
        DRILL_SESSIONS.path("score"): {"id": "number", "params": {"pattern": "0.0"}}}),
    "soc-drill-actions": (DRILL_ACTIONS, "Hành động khắc phục / Corrective actions", {}),
    "soc-finding-events": (FINDING_EVENTS, "Lịch sử phát hiện / Finding events", {}),
    "soc-runs": (RUNS, "Lượt quét / Scan runs", {}),
}
"""Data view id → (its shape, its name, its field formats). The id is the index or alias name."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def saved(kind: str, object_id: str, attributes: dict[str, Any], references: Sequence[Mapping[str, str]] = ()
          ) -> dict[str, Any]:
    """One saved object as `_export` writes it (without the times and versions of a particular Kibana)."""
    return {"attributes": attributes, "coreMigrationVersion": CORE, "id": object_id, "managed": False,
            "references": [dict(ref) for ref in references], "type": kind, "typeMigrationVersion": TYPE_VERSION[kind]}


def data_view(view_id: str) -> dict[str, Any]:
    """A data view over one shape's index (or alias of its monthly indices)."""
    shape, name, formats = DATA_VIEWS[view_id]
    attributes: dict[str, Any] = {
        "title": f"{PREFIX}-{shape.name}", "name": name, "fields": "[]", "fieldAttrs": "{}",
        "fieldFormatMap": _json(formats), "runtimeFieldMap": "{}", "sourceFilters": "[]", "typeMeta": "{}",
        "allowNoIndex": True}
    if "@timestamp" in shape.paths():
        attributes["timeFieldName"] = "@timestamp"
    return saved("index-pattern", view_id, attributes)


# --- Lens columns ----------------------------------------------------------------------------------------

def count(label: str = "Số lượng / Count") -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": "count",
            "isBucketed": False, "scale": "ratio", "sourceField": "___records___", "params": {"emptyAsNull": True}}


def unique(field: str, label: str) -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": "unique_count",
            "isBucketed": False, "scale": "ratio", "sourceField": field, "params": {"emptyAsNull": True}}


def metric(operation: str, field: str, label: str) -> dict[str, Any]:
    """average / max / … of a number field."""
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": operation,
            "isBucketed": False, "scale": "ratio", "sourceField": field, "params": {"emptyAsNull": True}}


def last(field: str, label: str, data_type: str = "number", sort: str = "@timestamp") -> dict[str, Any]:
    """The value of the newest document (by `sort`)."""
    return {"label": label, "customLabel": True, "dataType": data_type, "operationType": "last_value",
            "isBucketed": False, "scale": "ratio" if data_type == "number" else "ordinal", "sourceField": field,
            "params": {"sortField": sort, "showArrayValues": False}, "filter": {"query": f"{field} : *",
                                                                                  "language": "kuery"}}


def terms(field: str, label: str, by: str | None, size: int = 10, data_type: str = "string") -> dict[str, Any]:
    """Top values of a field, ordered by column `by` (a count or a number metric), or by name when None
    (a terms aggregation cannot be ordered by a last value)."""
    order: dict[str, Any] = {"type": "column", "columnId": by} if by else {"type": "alphabetical", "fallback": False}
    return {"label": label, "customLabel": True, "dataType": data_type, "operationType": "terms",
            "isBucketed": True, "scale": "ordinal", "sourceField": field,
            "params": {"size": size, "orderBy": order, "orderDirection": "desc" if by else "asc",
                       "otherBucket": True, "missingBucket": False, "parentFormat": {"id": "terms"},
                       "include": [], "exclude": [], "includeIsRegex": False, "excludeIsRegex": False}}


def histogram(field: str, label: str, interval: str = "auto") -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "date", "operationType": "date_histogram",
            "isBucketed": True, "scale": "interval", "sourceField": field,
            "params": {"interval": interval, "includeEmptyRows": True, "dropPartials": False}}


def filters(label: str, named: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Buckets by KQL query: (label, query)."""
    return {"label": label, "customLabel": True, "dataType": "string", "operationType": "filters",
            "isBucketed": True, "scale": "ordinal",
            "params": {"filters": [{"label": name, "input": {"query": query, "language": "kuery"}}
                                   for name, query in named]}}


# --- Lens visualizations ---------------------------------------------------------------------------------

LAYER = "layer1"


def lens(object_id: str, title: str, view_id: str, kind: str, columns: dict[str, dict[str, Any]],
         visualization: dict[str, Any], query: str = "", description: str = "") -> dict[str, Any]:
    """A Lens panel of one layer over one data view."""
    state = {
        "datasourceStates": {"formBased": {"layers": {LAYER: {
            "columns": columns, "columnOrder": list(columns), "incompleteColumns": {}, "sampling": 1}}}},
        "visualization": visualization, "query": {"query": query, "language": "kuery"}, "filters": [],
        "internalReferences": [], "adHocDataViews": {}}
    return saved("lens", object_id, {"title": title, "description": description, "visualizationType": kind,
                                     "state": state},
                 [{"type": "index-pattern", "id": view_id, "name": f"indexpattern-datasource-layer-{LAYER}"}])


def pie(group: str, value: str, shape: str = "donut") -> dict[str, Any]:
    return {"shape": shape, "layers": [{"layerId": LAYER, "layerType": "data", "primaryGroups": [group],
                                        "metrics": [value], "numberDisplay": "percent", "categoryDisplay": "default",
                                        "legendDisplay": "default", "nestedLegend": False}]}


def xy(series: str, x: str, values: Sequence[str], split: str | None = None) -> dict[str, Any]:
    layer: dict[str, Any] = {"layerId": LAYER, "layerType": "data", "seriesType": series, "xAccessor": x,
                             "accessors": list(values), "position": "top", "showGridlines": False}
    if split is not None:
        layer["splitAccessor"] = split
    return {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide", "fittingFunction": "None",
            "preferredSeriesType": series, "layers": [layer]}


def table(columns: Sequence[str]) -> dict[str, Any]:
    return {"layerId": LAYER, "layerType": "data", "columns": [{"columnId": column} for column in columns]}


def big_number(value: str) -> dict[str, Any]:
    return {"layerId": LAYER, "layerType": "data", "metricAccessor": value}


# --- saved searches --------------------------------------------------------------------------------------

INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def search(object_id: str, title: str, view_id: str, columns: Sequence[str], sort: Sequence[tuple[str, str]],
           query: str = "", phrases: tuple[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """A saved search (Discover) with a KQL query and optionally a "field is one of" filter."""
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": [],
                              "indexRefName": INDEX_REF}
    references = [{"type": "index-pattern", "id": view_id, "name": INDEX_REF}]
    if phrases is not None:
        field, values = phrases
        ref = "kibanaSavedObjectMeta.searchSourceJSON.filter[0].meta.index"
        source["filter"].append({
            "meta": {"alias": None, "negate": False, "disabled": False, "type": "phrases", "key": field,
                     "params": list(values), "indexRefName": ref},
            "query": {"bool": {"minimum_should_match": 1,
                               "should": [{"match_phrase": {field: value}} for value in values]}},
            "$state": {"store": "appState"}})
        references.append({"type": "index-pattern", "id": view_id, "name": ref})
    return saved("search", object_id, {
        "title": title, "description": "", "columns": list(columns), "sort": [list(pair) for pair in sort],
        "grid": {}, "hideChart": False, "isTextBasedQuery": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": _json(source)}}, references)


# --- dashboards ------------------------------------------------------------------------------------------

def dashboard(object_id: str, title: str, description: str,
              panels: Sequence[tuple[dict[str, Any], int, int, int, int]]) -> dict[str, Any]:
    """A dashboard of saved panels, each (object, x, y, w, h) on the 48-column grid, by reference."""
    entries, references = [], []
    for number, (panel, x, y, w, h) in enumerate(panels, start=1):
        index = f"p{number}"
        entries.append({"type": panel["type"], "panelIndex": index, "gridData": {"x": x, "y": y, "w": w, "h": h,
                                                                                 "i": index},
                        "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{index}"})
        references.append({"type": panel["type"], "id": panel["id"], "name": f"{index}:panel_{index}"})
    return saved("dashboard", object_id, {
        "title": title, "description": description, "panelsJSON": _json(entries),
        "optionsJSON": _json({"useMargins": True, "syncColors": False, "syncCursor": True, "syncTooltips": False,
                              "hidePanelTitles": False}),
        "timeRestore": True, "timeFrom": "now-90d", "timeTo": "now", "refreshInterval": {"pause": True, "value": 0},
        "version": 1, "kibanaSavedObjectMeta": {"searchSourceJSON": _json({
            "query": {"query": "", "language": "kuery"}, "filter": []})}}, references)


def overview() -> list[dict[str, Any]]:
    """Findings, portals, KPIs and SLA of the province."""
    f, p, k = FINDINGS.path, PORTAL_SCANS.path, KPI_SNAPSHOTS.path
    by_severity = lens("soc-findings-by-severity", "Phát hiện đang mở theo mức độ / Open findings by severity",
                       "soc-findings", "lnsPie",
                       {"severity": terms(f("severity"), "Mức độ / Severity", "count", size=5), "count": count()},
                       pie("severity", "count"), OPEN_KQL)
    by_agency = lens("soc-findings-by-agency", "Phát hiện đang mở theo đơn vị / Open findings by agency",
                     "soc-findings", "lnsXY",
                     {"agency": terms(f("assignee"), "Đơn vị / Agency", "count", size=20),
                      "severity": terms(f("severity"), "Mức độ / Severity", "count", size=5), "count": count()},
                     xy("bar_horizontal_stacked", "agency", ["count"], "severity"), OPEN_KQL)
    by_portal = lens("soc-findings-by-portal", "Phát hiện đang mở theo cổng / Open findings by portal",
                     "soc-findings", "lnsXY",
                     {"portal": terms("url.domain", "Cổng / Portal", "count", size=20),
                      "severity": terms(f("severity"), "Mức độ / Severity", "count", size=5), "count": count()},
                     xy("bar_horizontal_stacked", "portal", ["count"], "severity"), OPEN_KQL)
    by_check = lens("soc-findings-by-check", "Phát hiện theo kiểm tra theo thời gian / Findings by check over time",
                    "soc-findings", "lnsXY",
                    {"time": histogram("@timestamp", "Lần thấy cuối / Last seen"),
                     "check": terms(f("check_id"), "Kiểm tra / Check", "count", size=10), "count": count()},
                    xy("bar_stacked", "time", ["count"], "check"),
                    description="Theo lần thấy cuối (@timestamp) / By last seen (@timestamp)")
    sla_count = lens("soc-findings-sla-count", "Số phát hiện quá hạn SLA / Findings past their SLA deadline",
                     "soc-findings", "lnsMetric", {"count": count()}, big_number("count"), SLA_KQL)
    sla_by_agency = lens("soc-findings-sla-by-agency", "Quá hạn SLA theo đơn vị / SLA breaches by agency",
                         "soc-findings", "lnsXY",
                         {"agency": terms(f("assignee"), "Đơn vị / Agency", "count", size=20),
                          "severity": terms(f("severity"), "Mức độ / Severity", "count", size=5), "count": count()},
                         xy("bar_horizontal_stacked", "agency", ["count"], "severity"), SLA_KQL)
    open_search = search("soc-findings-open", "Phát hiện đang mở / Open findings", "soc-findings",
                         [f("severity"), f("check_id"), "url.domain", f("assignee"), f("status"), f("due_at"),
                          f("title_vi")],
                         [("soc.severity_rank", "asc"), ("@timestamp", "desc")], phrases=(f("status"), OPEN))
    sla_search = search("soc-findings-sla", "Phát hiện quá hạn SLA / Findings past their SLA deadline",
                        "soc-findings", [f("severity"), f("check_id"), "url.domain", f("assignee"), f("status"),
                                         f("due_at")], [(f("due_at"), "asc")], query=SLA_KQL)
    tls = lens("soc-portal-tls-grades", "Hạng TLS của các cổng / Portals by TLS grade", "soc-portal-scans", "lnsXY",
               {"grade": terms(p("tls_grade"), "Hạng TLS / TLS grade", "portals", size=10),
                "portals": unique(p("portal_url"), "Số cổng / Portals")},
               xy("bar", "grade", ["portals"]))
    labels = lens("soc-portal-trust-labels", "Độ phủ nhãn tín nhiệm / Trust-label coverage", "soc-portal-scans",
                  "lnsPie",
                  {"label": filters("Nhãn tín nhiệm / Trust label", [
                      ("Nhãn hợp lệ / Valid label", f"{p('label_valid')} : true"),
                      ("Không hợp lệ hoặc thiếu / Invalid or missing", f"{p('label_valid')} : false")]),
                   "portals": unique(p("portal_url"), "Số cổng / Portals")},
                  pie("label", "portals"))
    portals = lens("soc-portal-latest", "Đánh giá mới nhất từng cổng / Latest assessment per portal",
                   "soc-portal-scans", "lnsDatatable",
                   {"portal": terms("url.domain", "Cổng / Portal", None, size=100),
                    "grade": last(p("tls_grade"), "Hạng TLS / TLS grade", "string"),
                    "score": last(p("score"), "Điểm / Score"),
                    "label": last(p("label_valid"), "Nhãn hợp lệ / Valid label", "boolean")},
                   table(["portal", "grade", "score", "label"]))
    kpi_target = lens("soc-kpis-vs-target", "KPI toàn tỉnh so với chỉ tiêu / Province KPIs against targets",
                      "soc-kpis", "lnsXY",
                      {"kpi": terms(k("kpi_id"), "KPI", None, size=30),
                       "percent": last(k("percent"), "Đạt được (%) / Achieved (%)"),
                       "target": last(k("target_percent"), "Chỉ tiêu (%) / Target (%)")},
                      xy("bar", "kpi", ["percent", "target"]), f'{k("scope")} : "province"')
    kpi_trend = lens("soc-kpis-trend", "KPI toàn tỉnh theo thời gian / Province KPIs over time", "soc-kpis", "lnsXY",
                     {"day": histogram("@timestamp", "Ngày / Day", "d"),
                      "kpi": terms(k("kpi_id"), "KPI", "percent", size=30),
                      "percent": metric("average", k("percent"), "Đạt được (%) / Achieved (%)")},
                     xy("line", "day", ["percent"], "kpi"), f'{k("scope")} : "province"')
    runs = lens("soc-runs-over-time", "Lượt quét theo trạng thái / Scan runs by status", "soc-runs", "lnsXY",
                {"day": histogram("@timestamp", "Bắt đầu / Started"),
                 "status": terms(RUNS.path("status"), "Trạng thái / Status", "count", size=5), "count": count()},
                xy("bar_stacked", "day", ["count"], "status"))
    changes = lens("soc-finding-status-changes", "Thay đổi trạng thái phát hiện / Finding status changes",
                   "soc-finding-events", "lnsXY",
                   {"day": histogram("@timestamp", "Thời điểm / When"),
                    "status": terms(FINDING_EVENTS.path("new_status"), "Trạng thái mới / New status", "count", size=5),
                    "count": count()},
                   xy("bar_stacked", "day", ["count"], "status"))
    board = dashboard("soc-overview", "SOC Đồng Nai — Tổng quan / Overview",
                      "Phát hiện, cổng, KPI và SLA của tỉnh / Findings, portals, KPIs and SLA of the province", [
                          (sla_count, 0, 0, 12, 8), (by_severity, 12, 0, 12, 16), (tls, 24, 0, 12, 16),
                          (labels, 36, 0, 12, 16), (sla_by_agency, 0, 8, 12, 8),
                          (by_agency, 0, 16, 24, 16), (by_portal, 24, 16, 24, 16),
                          (by_check, 0, 32, 48, 14), (kpi_target, 0, 46, 24, 16), (kpi_trend, 24, 46, 24, 16),
                          (open_search, 0, 62, 48, 18), (sla_search, 0, 80, 48, 14),
                          (portals, 0, 94, 24, 18), (runs, 24, 94, 24, 9), (changes, 24, 103, 24, 9)])
    return [by_severity, by_agency, by_portal, by_check, sla_count, sla_by_agency, open_search, sla_search, tls,
            labels, portals, kpi_target, kpi_trend, runs, changes, board]


def drills() -> list[dict[str, Any]]:
    """Tabletop drills: scores over time, sessions by status, corrective actions by status and agency."""
    s, a = DRILL_SESSIONS.path, DRILL_ACTIONS.path
    scores = lens("soc-drill-scores", "Điểm diễn tập theo ngày diễn tập / Drill scores by drill date",
                  "soc-drill-sessions", "lnsXY",
                  {"day": histogram(s("drill_date"), "Ngày diễn tập / Drill date"),
                   "score": metric("average", s("score"), "Điểm trung bình / Average score")},
                  xy("line", "day", ["score"]))
    sessions = lens("soc-drill-sessions-by-status", "Phiên diễn tập theo trạng thái / Drill sessions by status",
                    "soc-drill-sessions", "lnsPie",
                    {"status": terms(s("status"), "Trạng thái / Status", "count", size=5), "count": count()},
                    pie("status", "count"))
    actions = lens("soc-drill-actions-by-agency", "Hành động khắc phục theo đơn vị và trạng thái / "
                   "Corrective actions by agency and status", "soc-drill-actions", "lnsXY",
                   {"agency": terms(a("owner_agency"), "Đơn vị / Agency", "count", size=20),
                    "status": terms(a("status"), "Trạng thái / Status", "count", size=5), "count": count()},
                   xy("bar_horizontal_stacked", "agency", ["count"], "status"))
    overdue = search("soc-drill-actions-overdue", "Hành động khắc phục quá hạn / Overdue corrective actions",
                     "soc-drill-actions", [a("owner_agency"), a("text_vi"), a("due"), a("status"), a("session_id")],
                     [(a("due"), "asc")], query=f"{a('status')} : {ActionStatus.OPEN.value} and {a('due')} < now")
    board = dashboard("soc-drills", "SOC Đồng Nai — Diễn tập / Drills",
                      "Điểm, phiên và hành động khắc phục / Scores, sessions and corrective actions", [
                          (scores, 0, 0, 32, 15), (sessions, 32, 0, 16, 15), (actions, 0, 15, 48, 16),
                          (overdue, 0, 31, 48, 16)])
    return [scores, sessions, actions, overdue, board]


def files() -> dict[str, list[dict[str, Any]]]:
    """File name → its objects, in import order."""
    return {"data-views.ndjson": [data_view(view_id) for view_id in DATA_VIEWS], "overview.ndjson": overview(),
            "drills.ndjson": drills()}


def render(objects: Sequence[Mapping[str, Any]]) -> str:
    """NDJSON: one object a line, keys sorted (as Kibana exports them)."""
    return "".join(json.dumps(item, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
                   for item in objects)


def main() -> None:
    for name, objects in files().items():
        (HERE / name).write_text(render(objects), encoding="utf-8")


if __name__ == "__main__":
    main()
