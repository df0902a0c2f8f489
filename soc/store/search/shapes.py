"""What each SOC record looks like in the search engine: one table per index, model field → document path.

The same table gives the index template's mapping, the document written and the model read back, so a
field can only be renamed in one place. Paths follow the Elastic Common Schema where it has a field for
the fact (`@timestamp`, `url.full`, `vulnerability.*`, `organization.id`, `user.name`, `file.hash.sha256`,
`event.*`, `host.name`, `process.pid`); the rest lives under `soc.*`. Mappings are strict: a document with
a field not in its table is refused by the engine, not silently indexed. Content a scanned portal controls
(evidence, raw observations) is stored, bounded by the collectors, and never parsed by the engine
(`enabled: false` or `text`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from soc.core.collectors import COLLECTORS
from soc.core.models import Severity

KEYWORD: Mapping[str, Any] = {"type": "keyword", "ignore_above": 2048}
TEXT: Mapping[str, Any] = {"type": "text"}
TIME: Mapping[str, Any] = {"type": "date_nanos"}
"""Microseconds, as the models keep them (a `date` would round to milliseconds and misorder close events)."""
DAY: Mapping[str, Any] = {"type": "date", "format": "strict_date"}
LONG: Mapping[str, Any] = {"type": "long"}
FLOAT: Mapping[str, Any] = {"type": "double"}
BOOL: Mapping[str, Any] = {"type": "boolean"}
OPAQUE: Mapping[str, Any] = {"type": "object", "enabled": False}
"""Kept in the document, not indexed: raw collector output, scorecards, figures."""
BINARY: Mapping[str, Any] = {"type": "binary"}


@dataclass(frozen=True)
class Shape:
    """One kind of document: its index name (after the prefix), the fields of its model, derived fields.

    `fields`: model field → (document path, mapping). `derived`: extra fields computed from the model's
    JSON values (for Kibana and for queries, e.g. a severity's rank to sort by), never read back.
    `timed`: the index is time-based (`<name>-YYYY.MM` behind the alias `<name>`).
    """

    name: str
    fields: Mapping[str, tuple[str, Mapping[str, Any]]]
    derived: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    derive: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    timed: bool = False
    binary: frozenset[str] = frozenset()

    def path(self, name: str) -> str:
        """The document path of a model field (KeyError: the table has no such field)."""
        return self.fields[name][0]

    def mapping(self) -> dict[str, Any]:
        """The strict mapping of the index template."""
        properties: dict[str, Any] = {}
        typed = [(path, spec) for path, spec in self.fields.values()] + list(self.derived.items())
        for path, spec in typed:
            node = properties
            *parents, leaf = path.split(".") if not path.startswith("@") else [path]
            for parent in parents:
                node = node.setdefault(parent, {"properties": {}})["properties"]
            node[leaf] = dict(spec)
        return {"dynamic": "strict", "properties": properties}

    def paths(self) -> dict[str, str]:
        """Every document path of this shape → its mapping type (what a Kibana object may reference)."""
        typed = [(path, spec) for path, spec in self.fields.values()] + list(self.derived.items())
        return {path: str(spec.get("type", "object")) for path, spec in typed}

    def document(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The document of a model's JSON values (`model_dump(mode="json")`, bytes as they are)."""
        flat: dict[str, Any] = {}
        for name, (path, _spec) in self.fields.items():
            if name in values:
                value = values[name]
                if name in self.binary and isinstance(value, bytes | bytearray):
                    value = base64.b64encode(value).decode("ascii")
                flat[path] = value
        if self.derive is not None:
            flat.update(self.derive(values))
        return nest(flat)

    def values(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """The model's values read back from a document's `_source`."""
        out: dict[str, Any] = {}
        for name, (path, _spec) in self.fields.items():
            value = pick(source, path)
            if name in self.binary and isinstance(value, str):
                value = base64.b64decode(value)
            out[name] = value
        return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a.b': 1} → {'a': {'b': 1}} (`@timestamp` stays a top-level field)."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".") if not path.startswith("@") else [path]
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


def pick(source: Mapping[str, Any], path: str) -> Any:
    """The value at a document path (None when absent)."""
    if path.startswith("@"):
        return source.get(path)
    node: Any = source
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


_RANK = {severity.value: severity.rank for severity in Severity}


def _finding_derived(values: Mapping[str, Any]) -> dict[str, Any]:
    """The severity's rank (to sort worst first) and whether it was resolved after its deadline (queries
    cannot compare two fields of a document without scripts, which OpenSearch-compatible servers lack)."""
    check = str(values.get("check_id", ""))
    resolved, due = values.get("resolved_at"), values.get("due_at")
    late = (datetime.fromisoformat(str(resolved)) > datetime.fromisoformat(str(due))) if resolved and due else None
    return {"soc.severity_rank": _RANK.get(str(values.get("severity")), len(_RANK)),
            "soc.resolved_late": late, "vulnerability.category": check.split(".", 1)[0], "event.kind": "state",
            "url.domain": _domain(values.get("portal_url"))}


def _domain(url: Any) -> str | None:
    """The host of a portal URL (None for subjects like `system:qlvb`), so dashboards can group by portal."""
    if not isinstance(url, str) or "://" not in url:
        return None
    return urlsplit(url).hostname


FINDINGS = Shape("findings", {
    "fingerprint": ("soc.fingerprint", KEYWORD),
    "portal_url": ("url.full", KEYWORD),
    "check_id": ("vulnerability.id", KEYWORD),
    "severity": ("vulnerability.severity", KEYWORD),
    "title_vi": ("soc.title_vi", TEXT),
    "title_en": ("vulnerability.description", TEXT),
    "evidence": ("soc.evidence", TEXT),
    "remediation_vi": ("soc.remediation_vi", TEXT),
    "remediation_en": ("soc.remediation_en", TEXT),
    "detail": ("soc.detail", TEXT),
    "status": ("soc.status", KEYWORD),
    "first_seen": ("event.created", TIME),
    "last_seen": ("@timestamp", TIME),
    "resolved_at": ("soc.resolved_at", TIME),
    "last_run_id": ("soc.last_run_id", KEYWORD),
    "status_note": ("soc.status_note", TEXT),
    "opened_at": ("soc.opened_at", TIME),
    "due_at": ("soc.due_at", TIME),
    "warn_at": ("soc.warn_at", TIME),
    "assignee": ("organization.id", KEYWORD),
    "risk_expires": ("soc.risk_expires", TIME),
    "risk_approver": ("soc.risk_approver", KEYWORD),
}, derived={"soc.severity_rank": LONG, "soc.resolved_late": BOOL, "vulnerability.category": KEYWORD,
            "event.kind": KEYWORD, "url.domain": KEYWORD},
    derive=_finding_derived)
"""Findings, one document per fingerprint (the document id): re-indexing never duplicates."""

FINDING_EVENTS = Shape("finding-events", {
    "fingerprint": ("soc.fingerprint", KEYWORD),
    "at": ("@timestamp", TIME),
    "run_id": ("soc.run_id", KEYWORD),
    "actor": ("user.name", KEYWORD),
    "old_status": ("soc.old_status", KEYWORD),
    "new_status": ("soc.new_status", KEYWORD),
    "note": ("soc.note", TEXT),
    "sequence": ("event.sequence", LONG),
}, timed=True)
"""A finding's status history (append-only); `sequence` orders events of the same instant."""

RUNS = Shape("runs", {
    "id": ("event.id", KEYWORD),
    "started_at": ("@timestamp", TIME),
    "finished_at": ("event.end", TIME),
    "status": ("soc.status", KEYWORD),
    "inventory": ("soc.inventory", KEYWORD),
    "portal_count": ("soc.portal_count", LONG),
    "portals_done": ("soc.portals_done", LONG),
    "owner_host": ("host.name", KEYWORD),
    "owner_pid": ("process.pid", LONG),
    "owner_started": ("process.start", KEYWORD),
    "heartbeat_at": ("soc.heartbeat_at", TIME),
})
"""Scan runs (few, updated while they run): one index, the run id as document id."""

RUN_FINDINGS = Shape("run-findings", {
    "run_id": ("soc.run_id", KEYWORD),
    "fingerprint": ("soc.fingerprint", KEYWORD),
}, timed=True)
"""Which findings a run saw (document id `run:fingerprint`)."""

OBSERVATIONS = Shape("observations", {
    "collector": ("event.dataset", KEYWORD),
    "portal_url": ("url.full", KEYWORD),
    "observed_at": ("@timestamp", TIME),
    "complete": ("soc.complete", BOOL),
    "unjudged": ("soc.unjudged", KEYWORD),
    "data": ("soc.data", OPAQUE),
    "run_id": ("soc.run_id", KEYWORD),
    "sequence": ("event.sequence", LONG),
}, derived={"event.kind": KEYWORD}, derive=lambda _values: {"event.kind": "event"}, timed=True)
"""Raw collector output, by month of the run's start."""

PORTAL_SCANS = Shape("portal-scans", {
    "run_id": ("soc.run_id", KEYWORD),
    "portal_url": ("url.full", KEYWORD),
    "recorded_at": ("@timestamp", TIME),
    "collectors": ("soc.collectors", {"type": "object", "properties": {
        name: dict(BOOL) for name in COLLECTORS}}),
    "tls_grade": ("soc.tls_grade", KEYWORD),
    "grade_without_trust": ("soc.grade_without_trust", KEYWORD),
    "score": ("soc.score", LONG),
    "category_scores": ("soc.category_scores", OPAQUE),
    "reasons": ("soc.reasons", KEYWORD),
    "label_valid": ("soc.label_valid", BOOL),
    "sequence": ("event.sequence", LONG),
}, derived={"url.domain": KEYWORD}, derive=lambda values: {"url.domain": _domain(values.get("portal_url"))},
    timed=True)
"""Each portal's assessment per run (grade, score, trust label), by month of the run's start."""

CLAIMS = Shape("claims", {
    "key": ("soc.claim", KEYWORD),
    "owner": ("host.name", KEYWORD),
    "at": ("@timestamp", TIME),
})
"""Batches of portals a worker took for one slot of a scan (document id = the key; created once)."""

_VERSION_FIELDS: dict[str, tuple[str, Mapping[str, Any]]] = {
    "key": ("soc.key", KEYWORD),
    "valid_from": ("soc.valid_from", TIME),
    "valid_to": ("soc.valid_to", TIME),
    "recorded_at": ("@timestamp", TIME),
    "superseded_at": ("soc.superseded_at", TIME),
    "actor": ("user.name", KEYWORD),
    "source": ("soc.source", KEYWORD),
    "data": ("soc.data", OPAQUE),
    "sequence": ("event.sequence", LONG),
}


def _version_derived(values: Mapping[str, Any]) -> dict[str, Any]:
    data = values.get("data") or {}
    agency = data.get("agency") if isinstance(data, Mapping) else None
    return {"organization.id": agency}


SYSTEM_VERSIONS = Shape("register-systems", _VERSION_FIELDS, derived={"organization.id": KEYWORD},
                        derive=_version_derived)
"""Versions of the register's systems, bitemporal (valid time, record time)."""
COVERAGE_VERSIONS = Shape("register-coverage", _VERSION_FIELDS, derived={"organization.id": KEYWORD},
                          derive=_version_derived)
"""Versions of each agency's anti-malware coverage, bitemporal."""

DRILL_SESSIONS = Shape("drill-sessions", {
    "id": ("soc.session_id", KEYWORD),
    "scenario_id": ("soc.scenario_id", KEYWORD),
    "scenario_version": ("soc.scenario_version", LONG),
    "title_vi": ("soc.title_vi", TEXT),
    "title_en": ("soc.title_en", TEXT),
    "scenario_text": ("soc.scenario_text", {"type": "text", "index": False}),
    "source": ("soc.source", KEYWORD),
    "drill_date": ("soc.drill_date", DAY),
    "ruleset": ("soc.ruleset", KEYWORD),
    "facilitator": ("user.name", KEYWORD),
    "participants": ("soc.participants", OPAQUE),
    "status": ("soc.status", KEYWORD),
    "created_at": ("@timestamp", TIME),
    "updated_at": ("event.end", TIME),
    "target_system": ("soc.target_system", KEYWORD),
    "target_level": ("soc.target_level", LONG),
    "target_agency": ("organization.id", KEYWORD),
    "score": ("soc.score", FLOAT),
    "scorecard": ("soc.scorecard", OPAQUE),
})
"""Tabletop drill sessions with the scenario they ran (a snapshot) and their score."""

DRILL_EVENTS = Shape("drill-events", {
    "session_id": ("soc.session_id", KEYWORD),
    "seq": ("event.sequence", LONG),
    "kind": ("event.action", KEYWORD),
    "real_at": ("@timestamp", TIME),
    "exercise_seconds": ("soc.exercise_seconds", FLOAT),
    "actor": ("user.name", KEYWORD),
    "data": ("soc.data", OPAQUE),
})
"""A session's append-only log (document id `session:seq`, created once: two writers never share a seq)."""

DRILL_ACTIONS = Shape("drill-actions", {
    "id": ("soc.action_id", KEYWORD),
    "session_id": ("soc.session_id", KEYWORD),
    "scenario_id": ("soc.scenario_id", KEYWORD),
    "expectation_id": ("soc.expectation_id", KEYWORD),
    "text_vi": ("soc.text_vi", TEXT),
    "text_en": ("soc.text_en", TEXT),
    "owner_agency": ("organization.id", KEYWORD),
    "due": ("soc.due", DAY),
    "status": ("soc.status", KEYWORD),
    "created_at": ("@timestamp", TIME),
    "done_at": ("soc.done_at", TIME),
    "done_by": ("soc.done_by", KEYWORD),
    "done_note": ("soc.done_note", TEXT),
    "confirmed_at": ("soc.confirmed_at", TIME),
    "confirmed_by": ("soc.confirmed_by", KEYWORD),
    "confirm_findings": ("soc.confirm_findings", KEYWORD),
})
"""Corrective actions drills produced."""

REPORTS = Shape("reports", {
    "id": ("soc.report_id", KEYWORD),
    "kind": ("soc.kind", KEYWORD),
    "period": ("soc.period", KEYWORD),
    "lang": ("soc.lang", KEYWORD),
    "created_at": ("@timestamp", TIME),
    "created_by": ("user.name", KEYWORD),
    "sha256": ("file.hash.sha256", KEYWORD),
    "pdf_size": ("file.size", LONG),
    "pdf": ("soc.pdf", BINARY),
    "html": ("soc.html", {"type": "text", "index": False}),
    "figures": ("soc.figures", OPAQUE),
}, binary=frozenset({"pdf"}))
"""The report archive: the PDF bytes (base64, not indexed), the HTML and the figures, as generated."""

KPI_SNAPSHOTS = Shape("kpis", {
    "as_of": ("@timestamp", DAY),
    "scope": ("organization.id", KEYWORD),
    "kpi_id": ("soc.kpi.id", KEYWORD),
    "title_vi": ("soc.kpi.title_vi", KEYWORD),
    "title_en": ("soc.kpi.title_en", KEYWORD),
    "kind": ("soc.kpi.kind", KEYWORD),
    "target": ("soc.kpi.target", KEYWORD),
    "target_percent": ("soc.kpi.target_percent", FLOAT),
    "numerator": ("soc.kpi.numerator", LONG),
    "denominator": ("soc.kpi.denominator", LONG),
    "percent": ("soc.kpi.percent", FLOAT),
    "status": ("soc.kpi.status", KEYWORD),
    "ruleset": ("soc.ruleset", KEYWORD),
    "recorded_at": ("event.created", TIME),
})
"""The plan's KPIs as the daily compliance job computed them, per day and scope ('province' or an agency id);
document id `day:scope:kpi`, so a day evaluated again replaces its figures (KPIs against targets over time)."""

SHAPES: tuple[Shape, ...] = (FINDINGS, FINDING_EVENTS, RUNS, RUN_FINDINGS, OBSERVATIONS, PORTAL_SCANS, CLAIMS,
                             SYSTEM_VERSIONS, COVERAGE_VERSIONS, DRILL_SESSIONS, DRILL_EVENTS, DRILL_ACTIONS, REPORTS,
                             KPI_SNAPSHOTS)
"""Every index of the search backend (`soc store setup` loads a template for each)."""
