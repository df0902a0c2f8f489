"""The Kibana saved objects (kibana/*.ndjson) are well formed, their references resolve, and every field they
name exists in the index template of the data view it belongs to.

The templates are built from the shapes (`SearchIndices.template`), never listed here: a field renamed in
soc/store/search/shapes.py breaks this test, not a dashboard at 2 a.m. The field extraction is checked
against objects that name a made-up field in each place a field can hide. No Kibana runs here: whether
Kibana renders the Lens state is not tested (see kibana/README.md).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from soc.store.search.indices import SearchIndices
from soc.store.search.shapes import SHAPES

REPO = Path(__file__).resolve().parents[2]
KIBANA = REPO / "kibana"
PREFIX = "soc"
DATA_VIEWS = ("soc-findings", "soc-portal-scans", "soc-kpis", "soc-drill-sessions", "soc-drill-actions",
              "soc-finding-events", "soc-runs")
"""The data views the dashboards need (issue 19)."""
NUMBER = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"})
DATES = frozenset({"date", "date_nanos"})
UNAGGREGATABLE = frozenset({"text", "object", "binary", "nested"})
LENS_TYPES: dict[str, frozenset[str] | None] = {
    "date_histogram": DATES, "average": NUMBER, "sum": NUMBER, "min": NUMBER | DATES, "max": NUMBER | DATES,
    "median": NUMBER, "percentile": NUMBER, "standard_deviation": NUMBER,
    "terms": None, "unique_count": None, "last_value": None, "count": None,
}
"""Lens operation → the field types it accepts (None: any aggregatable field)."""
RECORDS = "___records___"


# --- the index templates ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """A document path of a template and what the engine can do with it."""

    type: str
    searchable: bool
    aggregatable: bool


def template_fields(properties: Mapping[str, Any], prefix: str = "") -> dict[str, Field]:
    """Every path of a mapping's properties (objects with properties are walked, not listed)."""
    out: dict[str, Field] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            out.update(template_fields(spec["properties"], f"{path}."))
            continue
        kind = str(spec.get("type", "object"))
        searchable = spec.get("index", True) is not False and spec.get("enabled", True) is not False \
            and kind not in {"binary", "object"}
        out[path] = Field(kind, searchable, searchable and kind not in UNAGGREGATABLE)
    return out


def templates() -> dict[str, dict[str, Field]]:
    """Every index or alias name a shape produces (what a data view title may be) → the fields of its template."""
    client = Elasticsearch("http://127.0.0.1:9")  # never contacted: `template` only builds a body
    indices = SearchIndices(client, PREFIX, "elasticsearch")
    names: dict[str, dict[str, Field]] = {}
    for shape in SHAPES:
        body = indices.template(shape)
        fields = template_fields(body["template"]["mappings"]["properties"])
        for name in [*body["index_patterns"], *body["template"].get("aliases", {})]:
            names[name] = fields
    return names


TEMPLATES = templates()


# --- the saved objects -----------------------------------------------------------------------------------

def ndjson_files() -> list[Path]:
    return sorted(KIBANA.glob("*.ndjson"))


def load(paths: list[Path]) -> list[dict[str, Any]]:
    """Every object of the files; a line that is not a saved object fails the test with its place."""
    objects = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            where = f"{path.name}:{number}"
            assert line.strip(), f"{where}: empty line"
            item = json.loads(line)
            assert isinstance(item, dict), f"{where}: not an object"
            for key in ("type", "id", "attributes"):
                assert item.get(key), f"{where}: no {key}"
            assert isinstance(item["attributes"], dict), f"{where}: attributes is not an object"
            assert isinstance(item.get("references", []), list), f"{where}: references is not a list"
            objects.append(item)
    return objects


def key(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item["type"]), str(item["id"])


def ref_id(item: Mapping[str, Any], name: str) -> str | None:
    """The id a named reference of an object points to."""
    for ref in item.get("references", []):
        if ref.get("name") == name:
            return str(ref["id"])
    return None


# --- field extraction ------------------------------------------------------------------------------------

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_FIELD = re.compile(r"(?<![\w.@*\\-])([A-Za-z_@][\w.@*-]*)\s*(?::|<=|>=|<|>)")
_LEAF_QUERIES = frozenset({"match", "match_phrase", "match_phrase_prefix", "term", "terms", "range", "prefix",
                           "wildcard", "regexp", "fuzzy"})


def query_string_fields(query: str) -> set[str]:
    """The field names of a KQL or Lucene query string: every name before `:` or a range operator, outside
    quoted strings (`soc.status : (open or acknowledged) and soc.due_at < now` → both fields)."""
    return set(_FIELD.findall(_QUOTED.sub('""', query)))


def dsl_fields(query: Any) -> set[str]:
    """The field names of an Elasticsearch query (a filter's `query`)."""
    found: set[str] = set()
    if isinstance(query, list):
        for item in query:
            found |= dsl_fields(item)
    elif isinstance(query, Mapping):
        for name, value in query.items():
            if name in _LEAF_QUERIES and isinstance(value, Mapping):
                found |= {field for field in value if field != "boost"}
            elif name == "exists" and isinstance(value, Mapping):
                found.add(str(value["field"]))
            elif name == "query_string" and isinstance(value, Mapping):
                found |= query_string_fields(str(value.get("query", "")))
                found |= {str(field) for field in value.get("fields", [])}
            else:
                found |= dsl_fields(value)
    return found


def filter_fields(entry: Mapping[str, Any]) -> set[str]:
    """A filter pill's fields: its `meta.key` (unless a custom DSL filter) and those of its query."""
    meta = entry.get("meta", {})
    found = dsl_fields(entry.get("query", {}))
    if meta.get("key") and meta.get("type") not in {"custom", "query_string"}:
        found.add(str(meta["key"]))
    return found


@dataclass(frozen=True)
class Use:
    """One field name an object references, the data view it must exist in, where, and what it must allow."""

    obj: str
    view: str | None
    field: str
    where: str
    need: str = "exists"
    """'exists', 'searchable', 'aggregatable' or 'time' (a date field)."""
    types: frozenset[str] | None = None


def _query_uses(obj: str, views: list[str | None], query: Mapping[str, Any] | None, where: str) -> Iterator[Use]:
    if query and query.get("language") in {"kuery", "lucene"}:
        for field in query_string_fields(str(query.get("query", ""))):
            for view in views:
                yield Use(obj, view, field, where, "searchable")


def _filters_uses(item: Mapping[str, Any], obj: str, default: list[str | None], entries: list[Any],
                  where: str) -> Iterator[Use]:
    for number, entry in enumerate(entries):
        meta = entry.get("meta", {})
        name = meta.get("indexRefName") or meta.get("index")
        views = [ref_id(item, str(name))] if name else default
        for field in filter_fields(entry):
            for view in views:
                yield Use(obj, view, field, f"{where}[{number}]", "searchable")


def _search_source(item: Mapping[str, Any]) -> dict[str, Any]:
    text = item["attributes"].get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}")
    return dict(json.loads(text))


def field_uses(item: Mapping[str, Any], objects: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[Use]:
    """Every field name a saved object references, with the data view it belongs to."""
    kind, obj, attributes = str(item["type"]), f"{item['type']}/{item['id']}", item["attributes"]
    uses: list[Use] = []
    if kind == "index-pattern":
        view: str | None = str(item["id"])
        if attributes.get("timeFieldName"):
            uses.append(Use(obj, view, str(attributes["timeFieldName"]), "timeFieldName", "time"))
        for attr in ("fieldFormatMap", "fieldAttrs"):
            uses += [Use(obj, view, field, attr) for field in json.loads(attributes.get(attr) or "{}")]
    elif kind == "lens":
        state = attributes["state"]
        assert not state.get("adHocDataViews"), f"{obj}: ad-hoc data views are not checked; use a saved one"
        layer_views: list[str | None] = []
        for source in state["datasourceStates"].values():
            for layer_id, layer in source.get("layers", {}).items():
                view = ref_id(item, f"indexpattern-datasource-layer-{layer_id}")
                layer_views.append(view)
                for column_id, column in layer.get("columns", {}).items():
                    where = f"layer {layer_id} column {column_id}"
                    operation = str(column.get("operationType"))
                    field = column.get("sourceField")
                    if field and field != RECORDS:
                        uses.append(Use(obj, view, str(field), f"{where} sourceField", "aggregatable",
                                        LENS_TYPES.get(operation)))
                    params = column.get("params", {})
                    if params.get("sortField"):
                        uses.append(Use(obj, view, str(params["sortField"]), f"{where} sortField", "aggregatable"))
                    uses += [Use(obj, view, str(extra), f"{where} secondaryFields", "aggregatable")
                             for extra in params.get("secondaryFields", [])]
                    uses += _query_uses(obj, [view], column.get("filter"), f"{where} filter")
                    for number, bucket in enumerate(params.get("filters", [])):
                        uses += _query_uses(obj, [view], bucket.get("input"), f"{where} filters[{number}]")
        uses += _query_uses(obj, layer_views, state.get("query"), "state.query")
        uses += _filters_uses(item, obj, layer_views, state.get("filters", []), "state.filters")
    elif kind in {"search", "visualization"}:
        source = _search_source(item)
        views: list[str | None] = [ref_id(item, str(source["indexRefName"]))] if source.get("indexRefName") else []
        if attributes.get("savedSearchRefName"):
            search = objects.get(("search", str(ref_id(item, str(attributes["savedSearchRefName"])))))
            assert search is not None, f"{obj}: its saved search is not in the files"
            inner = _search_source(search)
            views.append(ref_id(search, str(inner["indexRefName"])))
        assert views, f"{obj}: no data view (searchSourceJSON.indexRefName)"
        uses += _query_uses(obj, views, source.get("query"), "searchSourceJSON.query")
        uses += _filters_uses(item, obj, views, source.get("filter", []), "searchSourceJSON.filter")
        for column in attributes.get("columns", []):
            if column != "_source":
                uses += [Use(obj, view, str(column), "columns") for view in views]
        for pair in attributes.get("sort", []):
            uses += [Use(obj, view, str(pair[0]), "sort", "aggregatable") for view in views]
        if kind == "visualization":
            vis = json.loads(attributes.get("visState") or "{}")
            for agg in vis.get("aggs", []):
                params = agg.get("params", {})
                names = [params["field"]] if params.get("field") else []
                names += list(params.get("fields", [])) + ([params["sortField"]] if params.get("sortField") else [])
                for field in names:
                    uses += [Use(obj, view, str(field), f"visState agg {agg.get('id')}", "aggregatable")
                             for view in views]
    elif kind == "dashboard":
        panel_views: list[str | None] = []
        for ref in item.get("references", []):
            target = objects.get((str(ref["type"]), str(ref["id"])))
            if target is not None:
                panel_views += sorted({use.view for use in field_uses(target, objects)}, key=str)
        source = _search_source(item)
        uses += _query_uses(obj, panel_views, source.get("query"), "searchSourceJSON.query")
        uses += _filters_uses(item, obj, panel_views, source.get("filter", []), "searchSourceJSON.filter")
    return uses


def field_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Every field an object references that its data view's index template lacks or cannot use that way."""
    by_key = {key(item): item for item in objects}
    problems = []
    for item in objects:
        for use in field_uses(item, by_key):
            view = by_key.get(("index-pattern", str(use.view)))
            if view is None:
                problems.append(f"{use.obj} {use.where}: {use.field}: data view {use.view} is not in the files")
                continue
            title = str(view["attributes"].get("title"))
            fields = TEMPLATES.get(title)
            if fields is None:
                problems.append(f"{use.obj}: data view {use.view} has title {title!r}, which no shape produces")
                continue
            runtime = json.loads(view["attributes"].get("runtimeFieldMap") or "{}")
            found = fields.get(use.field)
            if found is None and use.field not in runtime:
                problems.append(f"{use.obj} {use.where}: {use.field} is not a field of {title}")
            elif found is not None:
                if use.need == "time" and found.type not in DATES:
                    problems.append(f"{use.obj} {use.where}: {use.field} is a {found.type}, not a date")
                if use.need == "searchable" and not found.searchable:
                    problems.append(f"{use.obj} {use.where}: {use.field} is not indexed in {title}")
                if use.need == "aggregatable" and not found.aggregatable:
                    problems.append(f"{use.obj} {use.where}: {use.field} ({found.type}) cannot be aggregated")
                if use.types is not None and found.type not in use.types:
                    problems.append(f"{use.obj} {use.where}: {use.field} is a {found.type}, the operation needs "
                                    f"{sorted(use.types)}")
    return problems


def reference_problems(objects: list[dict[str, Any]]) -> list[str]:
    """References that point to no object of the files, and panels or layers that have no reference."""
    by_key = {key(item): item for item in objects}
    problems = []
    for item in objects:
        obj = f"{item['type']}/{item['id']}"
        names = [str(ref.get("name")) for ref in item.get("references", [])]
        if len(names) != len(set(names)):
            problems.append(f"{obj}: two references share a name")
        for ref in item.get("references", []):
            if (str(ref.get("type")), str(ref.get("id"))) not in by_key:
                problems.append(f"{obj}: reference {ref.get('name')} → {ref.get('type')}/{ref.get('id')} is missing")
        if item["type"] == "dashboard":
            for panel in json.loads(item["attributes"]["panelsJSON"]):
                name = f"{panel['panelIndex']}:{panel['panelRefName']}"
                target = next((ref for ref in item["references"] if ref["name"] in {name, panel["panelRefName"]}),
                              None)
                if target is None:
                    problems.append(f"{obj}: panel {panel['panelIndex']} has no reference")
                elif target["type"] != panel["type"]:
                    problems.append(f"{obj}: panel {panel['panelIndex']} is a {panel['type']}, its reference a "
                                    f"{target['type']}")
        if item["type"] == "lens":
            for source in item["attributes"]["state"]["datasourceStates"].values():
                for layer_id in source.get("layers", {}):
                    if ref_id(item, f"indexpattern-datasource-layer-{layer_id}") is None:
                        problems.append(f"{obj}: layer {layer_id} has no data view reference")
    return problems


# --- the tests -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    paths = ndjson_files()
    assert paths, f"no saved-object files in {KIBANA}"
    return load(paths)


def test_ids_are_unique(objects: list[dict[str, Any]]) -> None:
    keys = [key(item) for item in objects]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    ids = [str(item["id"]) for item in objects]
    assert len(ids) == len(set(ids)), "an id is used by two objects of different types"


def test_every_reference_resolves(objects: list[dict[str, Any]]) -> None:
    assert reference_problems(objects) == []


def test_every_field_exists_in_its_template(objects: list[dict[str, Any]]) -> None:
    assert field_problems(objects) == []


def test_the_checker_sees_the_fields(objects: list[dict[str, Any]]) -> None:
    """The extraction is not vacuous: it finds fields of every kind of object, in the expected places."""
    by_key = {key(item): item for item in objects}
    uses = [use for item in objects for use in field_uses(item, by_key)]
    places = {(use.obj.split("/")[0], use.where.split(" ")[-1].split("[")[0]) for use in uses}
    assert {("index-pattern", "timeFieldName"), ("index-pattern", "fieldFormatMap"), ("lens", "sourceField"),
            ("lens", "state.query"), ("lens", "filters"), ("lens", "sortField"), ("search", "columns"),
            ("search", "sort"), ("search", "searchSourceJSON.query"),
            ("search", "searchSourceJSON.filter")} <= places
    assert ("soc-findings", "soc.due_at") in {(use.view, use.field) for use in uses if use.need == "searchable"}


def test_data_views_match_shapes(objects: list[dict[str, Any]]) -> None:
    views = {str(item["id"]): item["attributes"] for item in objects if item["type"] == "index-pattern"}
    assert set(DATA_VIEWS) <= set(views)
    for view_id, attributes in views.items():
        assert attributes["title"] in TEMPLATES, f"{view_id}: {attributes['title']} is no index or alias of a shape"
        if "@timestamp" in TEMPLATES[attributes["title"]]:
            assert attributes.get("timeFieldName") == "@timestamp", view_id
        for attr in ("fields", "fieldFormatMap", "runtimeFieldMap", "sourceFilters", "fieldAttrs"):
            if attr in attributes:
                json.loads(attributes[attr])


def test_objects_are_kibana_8(objects: list[dict[str, Any]]) -> None:
    """The parts Kibana's import reads before any plugin: versions, string-encoded JSON, Lens shape."""
    for item in objects:
        obj = f"{item['type']}/{item['id']}"
        assert item["type"] in {"index-pattern", "lens", "visualization", "search", "dashboard"}, obj
        assert re.fullmatch(r"8\.\d+\.\d+", str(item.get("coreMigrationVersion"))), obj
        assert re.fullmatch(r"8\.\d+\.\d+", str(item.get("typeMigrationVersion"))), obj
        assert item["attributes"].get("title"), obj
        if item["type"] == "lens":
            state = item["attributes"]["state"]
            assert item["attributes"]["visualizationType"] in {"lnsXY", "lnsPie", "lnsDatatable", "lnsMetric"}, obj
            assert set(state) >= {"datasourceStates", "visualization", "query", "filters"}, obj
            for layer in state["datasourceStates"]["formBased"]["layers"].values():
                order = layer["columnOrder"]
                assert sorted(order) == sorted(layer["columns"]), f"{obj}: columnOrder is not the columns"
                bucketed = [layer["columns"][column]["isBucketed"] for column in order]
                assert bucketed == sorted(bucketed, reverse=True), f"{obj}: a metric column before a bucket"
            accessors = json.dumps(state["visualization"])
            columns = {column for layer in state["datasourceStates"]["formBased"]["layers"].values()
                       for column in layer["columns"]}
            for column in columns:
                assert f'"{column}"' in accessors, f"{obj}: column {column} is not shown"
        if item["type"] == "dashboard":
            json.loads(item["attributes"]["optionsJSON"])
            for panel in json.loads(item["attributes"]["panelsJSON"]):
                assert panel["gridData"]["x"] + panel["gridData"]["w"] <= 48, obj
        if item["type"] in {"search", "visualization", "dashboard"}:
            _search_source(item)


def test_titles_are_vietnamese_first(objects: list[dict[str, Any]]) -> None:
    for item in objects:
        if item["type"] != "index-pattern":
            assert " / " in item["attributes"]["title"], f"{item['id']}: 'Tiếng Việt / English' title"


def test_files_are_built_from_kibana_build(objects: list[dict[str, Any]]) -> None:
    """The files are what kibana/build.py writes (edit the builder, then run it)."""
    spec = importlib.util.spec_from_file_location("kibana_build", KIBANA / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: dict[str, list[dict[str, Any]]] = module.files()
    assert sorted(built) == [path.name for path in ndjson_files()]
    for name, items in built.items():
        assert (KIBANA / name).read_text(encoding="utf-8") == module.render(items), "run python kibana/build.py"


# --- the checker catches what it must --------------------------------------------------------------------

BAD = "vulnerability.sevrity"


def _find(objects: list[dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
    return next(item for item in objects if key(item) == (kind, object_id))


def _lens_columns(item: dict[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = item["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]["layer1"][
        "columns"]
    return columns


def _set_source(item: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    source = _search_source(item)
    change(source)
    item["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"] = json.dumps(source)


def _legacy_vis(objects: list[dict[str, Any]]) -> None:
    """A legacy visualization (visState) over the findings, added to the objects."""
    objects.append({"type": "visualization", "id": "legacy", "references": [
        {"type": "index-pattern", "id": "soc-findings", "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}],
        "attributes": {"title": "x / x", "visState": json.dumps({"type": "pie", "aggs": [
            {"id": "1", "type": "count", "params": {}},
            {"id": "2", "type": "terms", "params": {"field": BAD, "size": 5}}]}),
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps({
                "query": {"query": "", "language": "kuery"}, "filter": [],
                "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})}}})


def _mutate(name: str, objects: list[dict[str, Any]]) -> None:
    if name == "lens sourceField":
        _lens_columns(_find(objects, "lens", "soc-findings-by-severity"))["severity"]["sourceField"] = BAD
    elif name == "lens sortField":
        _lens_columns(_find(objects, "lens", "soc-kpis-vs-target"))["percent"]["params"]["sortField"] = BAD
    elif name == "lens query":
        _find(objects, "lens", "soc-findings-by-agency")["attributes"]["state"]["query"]["query"] = \
            f'soc.status : open and {BAD} : "high"'
    elif name == "lens filters bucket":
        _lens_columns(_find(objects, "lens", "soc-portal-trust-labels"))["label"]["params"]["filters"][0]["input"][
            "query"] = f"{BAD}:true"
    elif name == "lens filter pill":
        _find(objects, "lens", "soc-findings-by-check")["attributes"]["state"]["filters"].append(
            {"meta": {"type": "phrase", "key": BAD, "params": {"query": "high"}},
             "query": {"match_phrase": {BAD: "high"}}})
    elif name == "lucene query":
        _find(objects, "lens", "soc-findings-by-portal")["attributes"]["state"]["query"] = {
            "query": f"{BAD}:[a TO z]", "language": "lucene"}
    elif name == "search column":
        _find(objects, "search", "soc-findings-open")["attributes"]["columns"].append(BAD)
    elif name == "search sort":
        _find(objects, "search", "soc-findings-open")["attributes"]["sort"] = [[BAD, "asc"]]
    elif name == "search filter key":
        _set_source(_find(objects, "search", "soc-findings-open"),
                    lambda source: source["filter"][0]["meta"].update(key=BAD))
    elif name == "search filter query":
        _set_source(_find(objects, "search", "soc-findings-open"),
                    lambda source: source["filter"][0]["query"]["bool"]["should"].append({"exists": {"field": BAD}}))
    elif name == "search query":
        _set_source(_find(objects, "search", "soc-findings-sla"),
                    lambda source: source["query"].update(query=f"{BAD} >= 3 or soc.status : open"))
    elif name == "data view time field":
        _find(objects, "index-pattern", "soc-findings")["attributes"]["timeFieldName"] = BAD
    elif name == "data view field format":
        _find(objects, "index-pattern", "soc-findings")["attributes"]["fieldFormatMap"] = json.dumps(
            {BAD: {"id": "string"}})
    elif name == "dashboard query":
        _set_source(_find(objects, "dashboard", "soc-overview"),
                    lambda source: source["query"].update(query=f"not {BAD} : info"))
    elif name == "visState field":
        _legacy_vis(objects)
    else:
        raise AssertionError(name)


PLACES = ("lens sourceField", "lens sortField", "lens query", "lens filters bucket", "lens filter pill",
          "lucene query", "search column", "search sort", "search filter key", "search filter query", "search query",
          "data view time field", "data view field format", "dashboard query", "visState field")


@pytest.mark.parametrize("place", PLACES)
def test_a_made_up_field_is_caught(objects: list[dict[str, Any]], place: str) -> None:
    changed = copy.deepcopy(objects)
    _mutate(place, changed)
    problems = field_problems(changed)
    assert problems, f"{place}: {BAD} was not caught"
    assert all(BAD in problem for problem in problems), problems


def test_a_field_used_the_wrong_way_is_caught(objects: list[dict[str, Any]]) -> None:
    """A text field in a terms bucket, a keyword in a date histogram, a number-only operation on a keyword."""
    changed = copy.deepcopy(objects)
    columns = _lens_columns(_find(changed, "lens", "soc-findings-by-check"))
    columns["check"]["sourceField"] = "soc.title_vi"
    columns["time"]["sourceField"] = "soc.status"
    problems = field_problems(changed)
    assert any("soc.title_vi (text) cannot be aggregated" in problem for problem in problems), problems
    assert any("soc.status is a keyword" in problem for problem in problems), problems


def test_a_data_view_on_no_shape_is_caught(objects: list[dict[str, Any]]) -> None:
    changed = copy.deepcopy(objects)
    _find(changed, "index-pattern", "soc-kpis")["attributes"]["title"] = "soc-kpi"
    assert any("soc-kpi" in problem and "no shape" in problem for problem in field_problems(changed))


def test_a_dangling_reference_is_caught(objects: list[dict[str, Any]]) -> None:
    changed = [item for item in copy.deepcopy(objects) if key(item) != ("lens", "soc-drill-scores")]
    assert any("soc-drill-scores" in problem for problem in reference_problems(changed))
    changed = copy.deepcopy(objects)
    _find(changed, "lens", "soc-kpis-trend")["references"] = []
    assert any("layer layer1 has no data view" in problem for problem in reference_problems(changed))


@pytest.mark.parametrize(("query", "fields"), [
    ('soc.status : (open or acknowledged) and soc.due_at < now', {"soc.status", "soc.due_at"}),
    ('url.domain:"a:b.gov.vn" and not @timestamp >= "2026-01-01"', {"url.domain", "@timestamp"}),
    ("soc.kpi.percent>=90 OR organization.id:province", {"soc.kpi.percent", "organization.id"}),
    ('"just text: with a colon"', set()),
    ("", set()),
])
def test_query_string_fields(query: str, fields: set[str]) -> None:
    assert query_string_fields(query) == fields
