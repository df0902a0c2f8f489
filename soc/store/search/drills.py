"""Drill sessions, their event logs and corrective actions on a search cluster, and the report archive.

A session's events are documents `session:seq` created once (`op_type=create`): two writers appending at
once cannot both take the same seq; the loser reads the log again and takes the next.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from soc.core.drill_records import ActionStatus, CorrectiveAction, DrillEvent, DrillSession, SessionStatus
from soc.core.report_records import ArchivedReport, ReportKind, ReportSummary
from soc.store.errors import StoreError
from soc.store.search.indices import SearchIndices, iso
from soc.store.search.shapes import DRILL_ACTIONS, DRILL_EVENTS, DRILL_SESSIONS, REPORTS, Shape

ATTEMPTS = 20


def _status(exc: Exception) -> int | None:
    return getattr(getattr(exc, "meta", None), "status", None)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, ActionStatus | SessionStatus):
        return value.value
    return value


class SearchDrillStore:
    """The `DrillStore` protocol on a search cluster."""

    def __init__(self, indices: SearchIndices) -> None:
        self._ix = indices

    def _create(self, shape: Shape, doc_id: str, values: Mapping[str, Any], what: str) -> None:
        try:
            self._ix.client.index(index=self._ix.read(shape), id=doc_id, document=shape.document(values),
                                  op_type="create", refresh="wait_for")
        except Exception as exc:
            if _status(exc) == 409:
                raise ValueError(f"{what} {doc_id} already exists") from None
            raise StoreError(f"cannot keep {what} {doc_id}: {exc}") from exc

    def _update(self, shape: Shape, doc_id: str, change: Mapping[str, Any], what: str) -> dict[str, Any]:
        for _ in range(ATTEMPTS):
            doc = self._ix.get(shape, doc_id)
            if doc is None:
                raise KeyError(f"no {what} {doc_id}")
            values = shape.values(doc["_source"]) | {k: _json(v) for k, v in change.items()}
            try:
                self._ix.client.index(index=self._ix.read(shape), id=doc_id, document=shape.document(values),
                                      if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"],
                                      refresh="wait_for")
            except Exception as exc:
                if _status(exc) == 409:
                    continue
                raise StoreError(f"cannot update {what} {doc_id}: {exc}") from exc
            return values
        raise StoreError(f"{what} {doc_id}: changed by others {ATTEMPTS} times in a row")

    def create_session(self, session: DrillSession) -> DrillSession:
        """Keep a new session (ValueError: the id is taken)."""
        self._create(DRILL_SESSIONS, session.id, session.model_dump(mode="json"), "drill session")
        return session

    def session(self, session_id: str) -> DrillSession | None:
        """One session, or None."""
        doc = self._ix.get(DRILL_SESSIONS, session_id)
        return None if doc is None else DrillSession.model_validate(DRILL_SESSIONS.values(doc["_source"]))

    def sessions(self, status: SessionStatus | None = None, since: date | None = None, until: date | None = None,
                 limit: int = 200) -> list[DrillSession]:
        """Sessions, newest drill date first, optionally of one status and with since <= drill date <= until."""
        path = DRILL_SESSIONS.path
        clauses: list[dict[str, Any]] = []
        if status is not None:
            clauses.append({"term": {path("status"): status.value}})
        bounds = {op: day.isoformat() for op, day in (("gte", since), ("lte", until)) if day is not None}
        if bounds:
            clauses.append({"range": {path("drill_date"): bounds}})
        sort = [{path("drill_date"): "desc"}, {path("created_at"): "desc"}, {path("id"): "asc"}]
        hits = self._ix.hits(DRILL_SESSIONS, {"bool": {"filter": clauses}}, sort=sort, limit=limit)
        return [DrillSession.model_validate(DRILL_SESSIONS.values(hit["_source"])) for hit in hits]

    def append_event(self, event: DrillEvent, status: SessionStatus | None = None) -> DrillEvent:
        """Append one event with the next seq (and the session's new status); KeyError: no session."""
        if self._ix.get(DRILL_SESSIONS, event.session_id) is None:
            raise KeyError(f"no drill session {event.session_id}")
        for _ in range(ATTEMPTS):
            stored = event.model_copy(update={"seq": self._last_seq(event.session_id) + 1})
            try:
                self._create(DRILL_EVENTS, f"{event.session_id}:{stored.seq}", stored.model_dump(mode="json"),
                             "drill event")
            except ValueError:
                continue  # another writer took this seq first
            change: dict[str, Any] = {"updated_at": event.real_at}
            if status is not None:
                change["status"] = status
            self._update(DRILL_SESSIONS, event.session_id, change, "drill session")
            return stored
        raise StoreError(f"drill session {event.session_id}: its log was appended to by others {ATTEMPTS} times")

    def _last_seq(self, session_id: str) -> int:
        path = DRILL_EVENTS.path
        answer = self._ix.search(DRILL_EVENTS, {"term": {path("session_id"): session_id}}, size=0,
                                 aggs={"last": {"max": {"field": path("seq")}}})
        value = answer["aggregations"]["last"].get("value")
        return int(value) if value is not None else 0

    def events(self, session_id: str) -> list[DrillEvent]:
        """A session's events in order."""
        path = DRILL_EVENTS.path
        hits = self._ix.hits(DRILL_EVENTS, {"term": {path("session_id"): session_id}}, sort=[{path("seq"): "asc"}])
        return [DrillEvent.model_validate(DRILL_EVENTS.values(hit["_source"])) for hit in hits]

    def finish_session(self, session_id: str, score: float, scorecard: dict[str, Any], now: datetime,
                       actions: Sequence[CorrectiveAction]) -> DrillSession:
        """Keep an ended session's scoring and its new corrective actions (ids already kept stay as they are)."""
        values = self._update(DRILL_SESSIONS, session_id, {"score": score, "scorecard": scorecard, "updated_at": now},
                              "drill session")
        for action in actions:
            try:
                self._create(DRILL_ACTIONS, action.id, action.model_dump(mode="json"), "corrective action")
            except ValueError:
                continue
        return DrillSession.model_validate(values)

    def actions(self, session_id: str | None = None, status: ActionStatus | None = None) -> list[CorrectiveAction]:
        """Corrective actions, by due date."""
        path = DRILL_ACTIONS.path
        clauses: list[dict[str, Any]] = []
        if session_id is not None:
            clauses.append({"term": {path("session_id"): session_id}})
        if status is not None:
            clauses.append({"term": {path("status"): status.value}})
        hits = self._ix.hits(DRILL_ACTIONS, {"bool": {"filter": clauses}}, sort=[{path("due"): "asc"},
                                                                                 {path("id"): "asc"}])
        return [CorrectiveAction.model_validate(DRILL_ACTIONS.values(hit["_source"])) for hit in hits]

    def action(self, action_id: str) -> CorrectiveAction | None:
        """One corrective action, or None."""
        doc = self._ix.get(DRILL_ACTIONS, action_id)
        return None if doc is None else CorrectiveAction.model_validate(DRILL_ACTIONS.values(doc["_source"]))

    def update_action(self, action_id: str, **values: Any) -> CorrectiveAction:
        """Change an action's fields (status, done_*, confirmed_*); KeyError when unknown."""
        unknown = set(values) - set(CorrectiveAction.model_fields)
        if unknown:
            raise ValueError(f"corrective actions have no field {sorted(unknown)[0]!r}")
        return CorrectiveAction.model_validate(self._update(DRILL_ACTIONS, action_id, values, "corrective action"))


class SearchReportStore:
    """The `ReportStore` protocol on a search cluster (the PDF kept as base64, not indexed)."""

    def __init__(self, indices: SearchIndices) -> None:
        self._ix = indices

    def add(self, report: ArchivedReport) -> ArchivedReport:
        """Keep a generated report (ValueError: the id is taken)."""
        # the PDF is not UTF-8: pydantic's JSON dump of bytes would fail on it (the shape keeps it as base64)
        values = report.model_dump(mode="json", exclude={"pdf"}) | {"pdf": report.pdf}
        try:
            self._ix.client.index(index=self._ix.read(REPORTS), id=report.id, document=REPORTS.document(values),
                                  op_type="create", refresh="wait_for")
        except Exception as exc:
            if _status(exc) == 409:
                raise ValueError(f"report {report.id} already exists") from None
            raise StoreError(f"cannot keep report {report.id}: {exc}") from exc
        return report

    def get(self, report_id: str) -> ArchivedReport | None:
        """One report with its PDF, HTML and figures, or None."""
        doc = self._ix.get(REPORTS, report_id)
        return None if doc is None else ArchivedReport.model_validate(REPORTS.values(doc["_source"]))

    def list(self, kind: ReportKind | None = None, period: str | None = None,
             limit: int = 200) -> builtins.list[ReportSummary]:
        """Reports newest first (by period, then by creation), optionally of one kind and one period."""
        path = REPORTS.path
        clauses: builtins.list[dict[str, Any]] = []
        if kind is not None:
            clauses.append({"term": {path("kind"): kind.value}})
        if period is not None:
            clauses.append({"term": {path("period"): period}})
        sort = [{path("period"): "desc"}, {path("created_at"): "desc"}, {path("id"): "desc"}]
        body = {"bool": {"filter": clauses}}
        fields = [path(name) for name in ReportSummary.model_fields]
        answer = self._ix.client.search(index=self._ix.read(REPORTS), query=body, sort=sort, size=limit,
                                        source_includes=fields)
        out = []
        for hit in answer["hits"]["hits"]:
            values = REPORTS.values(hit["_source"])
            out.append(ReportSummary.model_validate({name: values[name] for name in ReportSummary.model_fields}))
        return out

    def latest(self, kind: ReportKind, period: str, lang: str) -> ArchivedReport | None:
        """The newest report of one kind, period and language, or None."""
        path = REPORTS.path
        query = {"bool": {"filter": [{"term": {path("kind"): kind.value}}, {"term": {path("period"): period}},
                                     {"term": {path("lang"): lang}}]}}
        answer = self._ix.search(REPORTS, query, sort=[{path("created_at"): "desc"}, {path("id"): "desc"}], size=1)
        hits = answer["hits"]["hits"]
        return None if not hits else ArchivedReport.model_validate(REPORTS.values(hits[0]["_source"]))
