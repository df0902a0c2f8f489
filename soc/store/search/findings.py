"""Runs, observations and findings in Elasticsearch / OpenSearch: carries out what `soc.findings.lifecycle`
decides, as the SQLite store does, with optimistic concurrency instead of transactions.

A portal's sightings are written in two steps: first the findings (new ones created, known ones written
back only if their `_seq_no` / `_primary_term` are still those read — two scanners never lose a
transition; a conflict re-reads and plans again), then the portal's history in one bulk (events,
observations, the run's links, the assessment, under ids that make a retry idempotent). Searches see
writes after a refresh: `finish_run` and every triage write refresh, so a run's results and a person's
change are read back at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from soc.compliance.kpi import PortalVerdicts
from soc.core.clock import SYSTEM_CLOCK, Clock
from soc.core.models import (
    Finding,
    FindingEvent,
    FindingStatus,
    Observation,
    PortalChanges,
    PortalScan,
    RunningRun,
    RunOwner,
    RunStatus,
    ScanRun,
    Severity,
    StoredFinding,
)
from soc.findings import lifecycle
from soc.findings.sla import CLOCK_RUNS, SlaState
from soc.store.errors import StoreError
from soc.store.query import CursorError, FindingQuery, FindingSort, Page, SlaTally, decode_cursor, encode_cursor
from soc.store.search.indices import SearchIndices, iso, nanos
from soc.store.search.shapes import (
    CLAIMS,
    FINDING_EVENTS,
    FINDINGS,
    OBSERVATIONS,
    PORTAL_SCANS,
    RUN_FINDINGS,
    RUNS,
)

ATTEMPTS = 8
"""Times a portal's findings are planned again after another writer changed one of them first."""
_RUNNING = [status.value for status in CLOCK_RUNS]
F = FINDINGS.path
_SORTS: dict[FindingSort, list[tuple[str, str]]] = {
    FindingSort.SEVERITY: [("soc.severity_rank", "asc"), (F("portal_url"), "asc"), (F("check_id"), "asc"),
                           (F("fingerprint"), "asc")],
    FindingSort.FIRST_SEEN: [(F("first_seen"), "desc"), (F("fingerprint"), "desc")],
    FindingSort.LAST_SEEN: [(F("last_seen"), "desc"), (F("fingerprint"), "desc")],
}


def _terms(path: str, values: Collection[str]) -> dict[str, Any]:
    return {"terms": {path: list(values)}}


def _term(path: str, value: Any) -> dict[str, Any]:
    return {"term": {path: value}}


def _range(path: str, **bounds: datetime) -> dict[str, Any]:
    return {"range": {path: {op: iso(moment) for op, moment in bounds.items()}}}


def _missing(path: str) -> dict[str, Any]:
    return {"bool": {"must_not": [{"exists": {"field": path}}]}}


def _exists(path: str) -> dict[str, Any]:
    return {"exists": {"field": path}}


def _all(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": list(clauses)}}


def _any(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


def _sort(keys: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{path: {"order": order}} for path, order in keys]


def _finding(source: Mapping[str, Any]) -> StoredFinding:
    return StoredFinding.model_validate(FINDINGS.values(source))


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def sla_clause(state: SlaState, now: datetime) -> dict[str, Any]:
    """The query form of `soc.findings.sla.sla_state(finding, now) == state` (a test checks they agree)."""
    due, warn, status = F("due_at"), F("warn_at"), F("status")
    running = [_terms(status, _RUNNING), _exists(due)]
    resolved = [_term(status, FindingStatus.RESOLVED.value), _exists(due)]
    if state is SlaState.BREACHED:
        return _all(*running, _range(due, lt=now))
    if state is SlaState.PRE_BREACH:
        return _all(*running, _range(due, gte=now), _exists(warn), _range(warn, lte=now))
    if state is SlaState.WITHIN:
        return _all(*running, _range(due, gte=now), _any(_missing(warn), _range(warn, gt=now)))
    resolved_at, late = F("resolved_at"), "soc.resolved_late"
    if state is SlaState.MET:  # coalesce(resolved_at, now) <= due
        return _all(*resolved, _any(_all(_exists(resolved_at), _term(late, False)),
                                    _all(_missing(resolved_at), _range(due, gte=now))))
    if state is SlaState.MISSED:
        return _all(*resolved, _any(_all(_exists(resolved_at), _term(late, True)),
                                    _all(_missing(resolved_at), _range(due, lt=now))))
    return _any(_missing(due), _terms(status, [FindingStatus.FALSE_POSITIVE.value,
                                               FindingStatus.RISK_ACCEPTED.value]))


class SearchFindingStore:
    """The `FindingStore` protocol on a search cluster."""

    def __init__(self, indices: SearchIndices, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ix = indices
        self._clock = clock

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError("the store clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    # --- runs ------------------------------------------------------------------------------------------

    def begin_run(self, inventory: str, portal_count: int, owner: RunOwner | None = None) -> ScanRun:
        """Create a run in state `running` (visible at once); an owner gets a heartbeat."""
        run = ScanRun(id=uuid4().hex, started_at=self._now(), status=RunStatus.RUNNING, inventory=inventory,
                      portal_count=portal_count)
        values = run.model_dump(mode="json")
        if owner is not None:
            values |= {"owner_host": owner.host, "owner_pid": owner.pid, "owner_started": owner.started,
                       "heartbeat_at": iso(run.started_at)}
        self._ix.client.index(index=self._ix.read(RUNS), id=run.id, document=RUNS.document(values), op_type="create",
                              refresh="wait_for")
        return run

    def _run_doc(self, run_id: str) -> dict[str, Any]:
        found = self._ix.get(RUNS, run_id)
        if found is None:
            raise KeyError(f"no scan run with id {run_id!r}")
        return found

    def _update_run(self, run_id: str, change: Mapping[str, Any], *, only_running: bool = False,
                    refresh: bool | str = "wait_for") -> ScanRun | None:
        """Write a run back with `change` applied, if nobody changed it meanwhile (else read and try again)."""
        for _ in range(ATTEMPTS):
            doc = self._run_doc(run_id)
            values = RUNS.values(doc["_source"])
            if only_running and values["status"] != RunStatus.RUNNING.value:
                return None
            values |= change
            try:
                self._ix.client.index(index=self._ix.read(RUNS), id=run_id, document=RUNS.document(values),
                                      if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"], refresh=refresh)
            except Exception as exc:
                if getattr(getattr(exc, "meta", None), "status", None) == 409:
                    continue
                raise StoreError(f"cannot update scan run {run_id}: {exc}") from exc
            return ScanRun.model_validate(values)
        raise StoreError(f"scan run {run_id}: changed by others {ATTEMPTS} times in a row")

    def heartbeat(self, run_id: str) -> None:
        """Record that the run's process is alive, now (nothing happens to a run no longer running)."""
        try:
            self._update_run(run_id, {"heartbeat_at": iso(self._now())}, only_running=True, refresh=False)
        except KeyError:
            return

    def finish_run(self, run_id: str, complete: bool) -> ScanRun:
        """Mark a run complete or incomplete, and make everything it wrote visible to searches."""
        status = RunStatus.COMPLETE if complete else RunStatus.INCOMPLETE
        run = self._update_run(run_id, {"finished_at": iso(self._now()), "status": status.value})
        self._ix.refresh(FINDINGS, FINDING_EVENTS, OBSERVATIONS, PORTAL_SCANS, RUN_FINDINGS)
        assert run is not None
        return run

    def _runs(self, query: Mapping[str, Any], sort: list[tuple[str, str]], limit: int | None = None
              ) -> list[dict[str, Any]]:
        return [RUNS.values(hit["_source"]) for hit in self._ix.hits(RUNS, query, sort=_sort(sort), limit=limit)]

    def _abandon(self, ids: Sequence[str]) -> list[ScanRun]:
        done = []
        for run_id in ids:
            changed = self._update_run(run_id, {"status": RunStatus.INCOMPLETE.value}, only_running=True)
            done.append(changed if changed is not None else ScanRun.model_validate(RUNS.values(
                self._run_doc(run_id)["_source"])))
        return done

    def mark_abandoned_runs(self, started_before: datetime) -> list[ScanRun]:
        """Turn `running` runs started before the cutoff into `incomplete`; return them as they are now."""
        self._ix.refresh(RUNS)
        rows = self._runs(_all(_term(RUNS.path("status"), RunStatus.RUNNING.value),
                               _range(RUNS.path("started_at"), lt=started_before)),
                          [(RUNS.path("started_at"), "asc"), (RUNS.path("id"), "asc")])
        return self._abandon([row["id"] for row in rows])

    def running_runs(self) -> list[RunningRun]:
        """Every run still marked `running`, with its owner and last heartbeat (oldest first)."""
        self._ix.refresh(RUNS)
        rows = self._runs(_term(RUNS.path("status"), RunStatus.RUNNING.value),
                          [(RUNS.path("started_at"), "asc"), (RUNS.path("id"), "asc")])
        return [RunningRun(run=ScanRun.model_validate(row),
                           heartbeat_at=datetime.fromisoformat(row["heartbeat_at"]) if row["heartbeat_at"] else None,
                           owner=None if row["owner_pid"] is None or row["owner_host"] is None else RunOwner(
                               host=row["owner_host"], pid=row["owner_pid"], started=row["owner_started"]))
                for row in rows]

    def abandon_runs(self, run_ids: Collection[str]) -> list[ScanRun]:
        """Turn those of the runs that are still `running` into `incomplete`; return them as they are now."""
        found = self._ix.mget(RUNS, sorted(run_ids))
        running = sorted((RUNS.values(doc["_source"]) for doc in found.values()
                          if doc["_source"]["soc"]["status"] == RunStatus.RUNNING.value),
                         key=lambda row: (row["started_at"], row["id"]))
        return self._abandon([row["id"] for row in running])

    def get_run(self, run_id: str) -> ScanRun | None:
        """One run as stored, or None."""
        found = self._ix.get(RUNS, run_id)
        return None if found is None else ScanRun.model_validate(RUNS.values(found["_source"]))

    def list_runs(self, limit: int = 20, exclude: Collection[str] = ()) -> list[ScanRun]:
        """Most recent runs first, leaving out runs of the `exclude` kinds."""
        query: dict[str, Any] = ({"bool": {"must_not": [_terms(RUNS.path("inventory"), list(exclude))]}}
                                 if exclude else {"match_all": {}})
        rows = self._runs(query, [(RUNS.path("started_at"), "desc"), (RUNS.path("id"), "asc")], limit=limit)
        return [ScanRun.model_validate(row) for row in rows]

    def runs_by_prefix(self, prefix: str, limit: int = 2) -> list[ScanRun]:
        """Runs whose id starts with `prefix`, most recent first (at most `limit`)."""
        rows = self._runs({"prefix": {RUNS.path("id"): prefix}}, [(RUNS.path("started_at"), "desc"),
                                                                  (RUNS.path("id"), "asc")], limit=limit)
        return [ScanRun.model_validate(row) for row in rows]

    # --- a portal's sightings ----------------------------------------------------------------------------

    def record_portal(self, run_id: str, portal_url: str, observations: Sequence[Observation],
                      findings: Sequence[Finding], assessment: PortalScan | None = None) -> PortalChanges:
        """Store one portal's observations and findings and apply the lifecycle (see the protocol)."""
        lifecycle.check_portal(portal_url, observations, findings)
        for item in observations:  # refuse what cannot be stored before writing anything (as SQLite does)
            Observation.model_validate(item.model_dump())
            item.model_dump(mode="json")  # ValueError (PydanticSerializationError): data that is not JSON
        run = self._run_doc(run_id)
        started = datetime.fromisoformat(run["_source"]["@timestamp"])
        seen = {finding.fingerprint: finding for finding in findings}
        prefixes = lifecycle.resolving_prefixes(observations)
        unjudged = lifecycle.unjudged_checks(observations)
        now = self._now()
        applied: dict[str, str] = {}  # fingerprint → new | reopened | still_open | resolved
        events: list[dict[str, Any]] = []
        for _attempt in range(ATTEMPTS):
            known = self._ix.mget(FINDINGS, sorted(set(seen) - set(applied)))
            stale: dict[str, dict[str, Any]] = {}
            if prefixes:
                query = _all(_term(F("portal_url"), portal_url),
                             _any(*({"prefix": {F("check_id"): prefix}} for prefix in prefixes)))
                for hit in self._ix.hits(FINDINGS, query, sort=_sort([(F("fingerprint"), "asc")]), versions=True):
                    fingerprint = hit["_id"]
                    if fingerprint in seen or fingerprint in applied:
                        continue
                    values = FINDINGS.values(hit["_source"])
                    if lifecycle.resolves(values["check_id"], FindingStatus(values["status"]), prefixes, unjudged):
                        stale[fingerprint] = hit
            actions, changes = self._plan(run_id, seen, known, stale, applied, now)
            if not actions:
                break
            result = self._ix.bulk(actions, refresh=False)
            if result.failed:
                raise StoreError(f"{portal_url}: the search cluster refused findings: {result.failed[0][1]}")
            for fingerprint in result.written:
                kind, event = changes[fingerprint]
                applied[fingerprint] = kind
                if event is not None:
                    events.append(event)
            if not result.conflicts:
                break
        else:
            raise StoreError(f"{portal_url}: its findings were changed by another writer {ATTEMPTS} times in a row")
        self._ix.bulk_or_raise(self._history(run_id, portal_url, started, observations, seen, assessment, events))
        self._count_portal(run_id)
        return PortalChanges(new=[fp for fp in seen if applied.get(fp) == "new"],
                             reopened=[fp for fp in seen if applied.get(fp) == "reopened"],
                             still_open=[fp for fp in seen if applied.get(fp) == "still_open"],
                             resolved=sorted(fp for fp, kind in applied.items() if kind == "resolved"))

    def _count_portal(self, run_id: str) -> None:
        for _ in range(ATTEMPTS * 4):  # the portals of a run are recorded by one process, one at a time
            doc = self._run_doc(run_id)
            values = RUNS.values(doc["_source"])
            values["portals_done"] = int(values["portals_done"] or 0) + 1
            try:
                self._ix.client.index(index=self._ix.read(RUNS), id=run_id, document=RUNS.document(values),
                                      if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"])
                return
            except Exception as exc:
                if getattr(getattr(exc, "meta", None), "status", None) != 409:
                    raise StoreError(f"cannot update scan run {run_id}: {exc}") from exc
        raise StoreError(f"scan run {run_id}: changed by others too often")

    def _plan(self, run_id: str, seen: Mapping[str, Finding], known: Mapping[str, dict[str, Any]],
              stale: Mapping[str, dict[str, Any]], applied: Mapping[str, str], now: datetime
              ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, dict[str, Any] | None]]]:
        """The bulk actions of one attempt, and per fingerprint what it does and the event it leaves."""
        index = self._ix.read(FINDINGS)
        actions: list[dict[str, Any]] = []
        changes: dict[str, tuple[str, dict[str, Any] | None]] = {}
        pending = [finding for fingerprint, finding in seen.items() if fingerprint not in applied]
        statuses = {fp: FindingStatus(doc["_source"]["soc"]["status"]) for fp, doc in known.items()}
        plan = lifecycle.plan_sightings(pending, statuses)
        for finding in plan.new:
            values = _content(finding, run_id, now) | {
                "fingerprint": finding.fingerprint, "portal_url": finding.portal_url, "check_id": finding.check_id,
                "status": FindingStatus.OPEN.value, "first_seen": iso(now), "opened_at": iso(now)}
            actions.append({"_op_type": "create", "_index": index, "_id": finding.fingerprint,
                            "_source": FINDINGS.document(values)})
            changes[finding.fingerprint] = ("new", self._event(finding.fingerprint, now, lifecycle.SCAN_ACTOR,
                                                               FindingStatus.OPEN, run_id=run_id,
                                                               note=lifecycle.OPENED_NOTE))
        for kind, group in (("reopened", plan.reopened), ("still_open", plan.still_open)):
            for finding in group:
                doc = known[finding.fingerprint]
                values = FINDINGS.values(doc["_source"]) | _content(finding, run_id, now)
                event = None
                if kind == "reopened":
                    values |= {"status": FindingStatus.OPEN.value, "resolved_at": None,
                               "status_note": lifecycle.REOPENED_NOTE, "opened_at": iso(now), "due_at": None,
                               "warn_at": None, "risk_expires": None, "risk_approver": None}
                    event = self._event(finding.fingerprint, now, lifecycle.SCAN_ACTOR, FindingStatus.OPEN,
                                        old_status=FindingStatus.RESOLVED, run_id=run_id,
                                        note=lifecycle.REOPENED_NOTE)
                actions.append(_versioned(index, finding.fingerprint, doc, FINDINGS.document(values)))
                changes[finding.fingerprint] = (kind, event)
        for fingerprint, hit in stale.items():
            values = FINDINGS.values(hit["_source"])
            old = FindingStatus(values["status"])
            values |= {"status": FindingStatus.RESOLVED.value, "resolved_at": iso(now),
                       "status_note": lifecycle.RESOLVED_NOTE}
            actions.append(_versioned(index, fingerprint, hit, FINDINGS.document(values)))
            changes[fingerprint] = ("resolved", self._event(fingerprint, now, lifecycle.SCAN_ACTOR,
                                                            FindingStatus.RESOLVED, old_status=old, run_id=run_id,
                                                            note=lifecycle.RESOLVED_NOTE))
        return actions, changes

    def _history(self, run_id: str, portal_url: str, started: datetime, observations: Sequence[Observation],
                 seen: Mapping[str, Finding], assessment: PortalScan | None, events: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
        """The portal's append-only records of this run, under ids a retry writes again, not twice."""
        key = _url_key(portal_url)
        actions: list[dict[str, Any]] = list(events)
        obs_index = self._ix.write(OBSERVATIONS, started)
        for number, item in enumerate(observations):
            values = item.model_dump(mode="json") | {"run_id": run_id, "sequence": self._ix.sequence()}
            actions.append({"_op_type": "index", "_index": obs_index, "_id": f"{run_id}:{key}:{number}",
                            "_source": OBSERVATIONS.document(values)})
        links = self._ix.write(RUN_FINDINGS, started)
        for fingerprint in seen:
            actions.append({"_op_type": "index", "_index": links, "_id": f"{run_id}:{fingerprint}",
                            "_source": RUN_FINDINGS.document({"run_id": run_id, "fingerprint": fingerprint})})
        if assessment is not None:
            values = assessment.model_dump(mode="json") | {"run_id": run_id, "portal_url": portal_url,
                                                            "sequence": self._ix.sequence()}
            actions.append({"_op_type": "index", "_index": self._ix.write(PORTAL_SCANS, started),
                            "_id": f"{run_id}:{key}", "_source": PORTAL_SCANS.document(values)})
        return actions

    def _event(self, fingerprint: str, at: datetime, actor: str, new_status: FindingStatus, *,
               old_status: FindingStatus | None = None, run_id: str | None = None, note: str | None = None
               ) -> dict[str, Any]:
        """A bulk action writing one history event."""
        values = {"fingerprint": fingerprint, "at": iso(at), "run_id": run_id, "actor": actor,
                  "old_status": old_status.value if old_status else None, "new_status": new_status.value,
                  "note": note, "sequence": self._ix.sequence()}
        return {"_op_type": "create", "_index": self._ix.write(FINDING_EVENTS, at), "_id": uuid4().hex,
                "_source": FINDING_EVENTS.document(values)}

    # --- reads ---------------------------------------------------------------------------------------------

    def query_findings(self, query: FindingQuery) -> Page[StoredFinding]:
        """One page of the findings matching the query, in its order (search_after on the sort key)."""
        clauses = _filters(query)
        keys = _SORTS[query.sort]
        after = None
        if query.cursor:
            key = decode_cursor(query.sort, query.cursor)
            if len(key) != len(keys):
                raise CursorError("cursor does not match this order")
            after = [_bind(path, value) for (path, _), value in zip(keys, key, strict=True)]
        body_query = _all(*clauses) if clauses else {"match_all": {}}
        if query.limit is None:
            if after is not None:
                body_query = _all(*clauses, _after(keys, after))
            rows = [_finding(hit["_source"]) for hit in self._ix.hits(FINDINGS, body_query, sort=_sort(keys))]
            return Page(items=rows)
        answer = self._ix.search(FINDINGS, body_query, sort=_sort(keys), size=query.limit + 1, search_after=after)
        hits = answer["hits"]["hits"]
        rows = [_finding(hit["_source"]) for hit in hits]
        if len(rows) <= query.limit:
            return Page(items=rows)
        items = rows[: query.limit]
        return Page(items=items, next_cursor=encode_cursor(query.sort, _cursor_key(query.sort, items[-1])))

    def list_findings(self, statuses: Sequence[FindingStatus] = (), severities: Sequence[Severity] = (),
                      check_ids: Sequence[str] = (), portal_url: str | None = None) -> list[StoredFinding]:
        """Every finding matching every given filter (an empty filter matches all), worst first."""
        query = FindingQuery(statuses=tuple(statuses), severities=tuple(severities), check_ids=tuple(check_ids),
                             portal_urls=(portal_url,) if portal_url is not None else ())
        return self.query_findings(query).items

    def run_findings(self, run_id: str) -> list[StoredFinding]:
        """The findings seen in one run (their current state), worst first."""
        links = self._ix.hits(RUN_FINDINGS, _term(RUN_FINDINGS.path("run_id"), run_id),
                              sort=_sort([(RUN_FINDINGS.path("fingerprint"), "asc")]))
        fingerprints = [hit["_source"]["soc"]["fingerprint"] for hit in links]
        found: list[StoredFinding] = []
        for start in range(0, len(fingerprints), 1000):
            found += [_finding(doc["_source"]) for doc in
                      self._ix.mget(FINDINGS, fingerprints[start:start + 1000]).values()]
        return sorted(found, key=lambda f: (f.severity.rank, f.portal_url, f.check_id, f.fingerprint))

    def observations(self, run_id: str, portal_url: str | None = None) -> list[Observation]:
        """Raw observations kept for one run, in the order they were recorded."""
        clauses = [_term(OBSERVATIONS.path("run_id"), run_id)]
        if portal_url is not None:
            clauses.append(_term(OBSERVATIONS.path("portal_url"), portal_url))
        hits = self._ix.hits(OBSERVATIONS, _all(*clauses), sort=_sort([(OBSERVATIONS.path("sequence"), "asc")]))
        out = []
        for hit in hits:
            values = OBSERVATIONS.values(hit["_source"])
            out.append(Observation.model_validate({k: values[k] for k in Observation.model_fields}))
        return out

    def portal_scans(self, run_id: str) -> list[PortalScan]:
        """Every portal's assessment in one run, by portal URL."""
        hits = self._ix.hits(PORTAL_SCANS, _term(PORTAL_SCANS.path("run_id"), run_id),
                             sort=_sort([(PORTAL_SCANS.path("portal_url"), "asc")]))
        return [_scan(hit["_source"]) for hit in hits]

    def portal_verdicts(self, start: datetime, end: datetime) -> PortalVerdicts:
        """The portal KPIs' verdicts over [start, end] by two aggregations: portals with a complete TLS and
        HTTP assessment, and each portal's newest trust-label verdict."""
        window = _range(PORTAL_SCANS.path("recorded_at"), gte=start, lte=end)
        url = PORTAL_SCANS.path("portal_url")
        assessed = self._buckets(_all(window, _term("soc.collectors.tls", True), _term("soc.collectors.http", True)),
                                 url)
        label = PORTAL_SCANS.path("label_valid")
        newest = {"top_hits": {"size": 1, "_source": [label], "sort": [
            {PORTAL_SCANS.path("recorded_at"): {"order": "desc"}}, {PORTAL_SCANS.path("sequence"): {"order": "desc"}}]}}
        labelled: set[str] = set()
        for bucket in self._composite(_all(window, _exists(label)), url, {"newest": newest}):
            top = bucket["newest"]["hits"]["hits"]
            if top and top[0]["_source"]["soc"].get("label_valid") is True:
                labelled.add(bucket["key"]["k"])
        return PortalVerdicts(assessed=frozenset(assessed), labelled=frozenset(labelled))

    def _composite(self, query: Mapping[str, Any], path: str, sub: Mapping[str, Any] | None = None,
                   shape: Any = PORTAL_SCANS, extra: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
        """Every bucket of a composite aggregation over `path` (and `extra` sources), page by page."""
        sources = [{"k": {"terms": {"field": path}}}] + [{name: {"terms": {"field": p, "missing_bucket": True}}}
                                                         for name, p in extra]
        buckets: list[dict[str, Any]] = []
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": 1000, "sources": sources}
            if after is not None:
                composite["after"] = after
            agg: dict[str, Any] = {"composite": composite}
            if sub:
                agg["aggs"] = dict(sub)
            answer = self._ix.search(shape, query, size=0, aggs={"b": agg})
            page = answer["aggregations"]["b"]["buckets"]
            buckets += page
            after = answer["aggregations"]["b"].get("after_key")
            if len(page) < 1000 or after is None:
                return buckets

    def _buckets(self, query: Mapping[str, Any], path: str, shape: Any = PORTAL_SCANS) -> set[str]:
        return {bucket["key"]["k"] for bucket in self._composite(query, path, shape=shape)}

    def latest_portal_scans(self, since: datetime) -> list[PortalScan]:
        """Each portal's newest assessment since `since`, and its newest complete one when that is older."""
        recorded, sequence = PORTAL_SCANS.path("recorded_at"), PORTAL_SCANS.path("sequence")
        newest_first = [{recorded: {"order": "desc"}}, {sequence: {"order": "desc"}}]
        rows = [_scan(hit["_source"]) for hit in self._ix.hits(
            PORTAL_SCANS, _range(recorded, gte=since), sort=newest_first)]
        kept: list[PortalScan] = []
        newest: dict[str, bool] = {}  # portal → its newest so far was complete
        for scan in rows:
            complete = all(scan.collectors.values()) if scan.collectors else False
            if scan.portal_url not in newest:
                kept.append(scan)
                newest[scan.portal_url] = complete
            elif not newest[scan.portal_url] and complete:
                kept.append(scan)
                newest[scan.portal_url] = True
        return kept

    def portal_history(self, portal_url: str, since: datetime) -> list[PortalScan]:
        """One portal's assessments recorded since `since`, oldest first."""
        query = _all(_term(PORTAL_SCANS.path("portal_url"), portal_url),
                     _range(PORTAL_SCANS.path("recorded_at"), gte=since))
        sort = _sort([(PORTAL_SCANS.path("recorded_at"), "asc"), (PORTAL_SCANS.path("sequence"), "asc")])
        return [_scan(hit["_source"]) for hit in self._ix.hits(PORTAL_SCANS, query, sort=sort)]

    def open_counts_by_subject(self) -> dict[str, dict[Severity, int]]:
        """Subject → its open or acknowledged findings counted by severity (one composite aggregation)."""
        counts: dict[str, dict[Severity, int]] = {}
        for bucket in self._composite(_terms(F("status"), _RUNNING), F("portal_url"), shape=FINDINGS,
                                      extra=[("s", F("severity"))]):
            severity = bucket["key"]["s"]
            if severity in Severity._value2member_map_:
                counts.setdefault(bucket["key"]["k"], {})[Severity(severity)] = int(bucket["doc_count"])
        return counts

    def run_change_counts(self, run_id: str) -> dict[str, int]:
        """What one run did to findings: how many it opened (new), reopened and resolved (its events)."""
        counts = {"new": 0, "reopened": 0, "resolved": 0}
        path = FINDING_EVENTS.path
        aggs = {"new": {"filter": _missing(path("old_status"))},
                "resolved": {"filter": _all(_exists(path("old_status")),
                                            _term(path("new_status"), FindingStatus.RESOLVED.value))},
                "reopened": {"filter": _all(_exists(path("old_status")),
                                            {"bool": {"must_not": [_term(path("new_status"),
                                                                         FindingStatus.RESOLVED.value)]}})}}
        answer = self._ix.search(FINDING_EVENTS, _term(path("run_id"), run_id), size=0, aggs=aggs)
        for name in counts:
            counts[name] = int(answer["aggregations"][name]["doc_count"])
        return counts

    def sla_tally(self, resolved_after: datetime, resolved_before: datetime, now: datetime) -> list[SlaTally]:
        """Per subject and assignee: resolved within / after the deadline in the window, open past it at `now`."""
        closed = _all(_term(F("status"), FindingStatus.RESOLVED.value),
                      _range(F("resolved_at"), gt=resolved_after, lte=resolved_before))
        late = _all(_terms(F("status"), _RUNNING), _range(F("due_at"), lt=now))
        query = _all(_exists(F("due_at")), _any(closed, late))
        tallies: dict[tuple[str, str | None], list[int]] = {}
        for hit in self._ix.hits(FINDINGS, query, sort=_sort([(F("fingerprint"), "asc")])):
            finding = _finding(hit["_source"])
            counts = tallies.setdefault((finding.portal_url, finding.assignee), [0, 0, 0])
            assert finding.due_at is not None
            if finding.status is FindingStatus.RESOLVED and finding.resolved_at is not None \
                    and resolved_after < finding.resolved_at <= resolved_before:
                counts[0 if finding.resolved_at <= finding.due_at else 1] += 1
            elif finding.status in CLOCK_RUNS and finding.due_at < now:
                counts[2] += 1
        return [SlaTally(subject=subject, assignee=assignee, met=met, missed=missed, breached=breached)
                for (subject, assignee), (met, missed, breached) in tallies.items()]

    def finding(self, fingerprint: str) -> StoredFinding | None:
        """One finding by its full fingerprint."""
        found = self._ix.get(FINDINGS, fingerprint)
        return None if found is None else _finding(found["_source"])

    def events(self, fingerprint: str) -> list[FindingEvent]:
        """The status history of one finding, oldest first (empty for an unknown fingerprint)."""
        hits = self._ix.hits(FINDING_EVENTS, _term(FINDING_EVENTS.path("fingerprint"), fingerprint),
                             sort=_sort([(FINDING_EVENTS.path("at"), "asc"), (FINDING_EVENTS.path("sequence"), "asc")]))
        out = []
        for hit in hits:
            values = FINDING_EVENTS.values(hit["_source"])
            out.append(FindingEvent.model_validate({k: values[k] for k in FindingEvent.model_fields}))
        return out

    # --- triage --------------------------------------------------------------------------------------------

    def _change(self, fingerprint: str, change: Any) -> tuple[StoredFinding, FindingStatus]:
        """Apply `change(values) -> event or None` to one finding with optimistic concurrency; refresh."""
        for _ in range(ATTEMPTS):
            doc = self._ix.get(FINDINGS, fingerprint)
            if doc is None:
                raise KeyError(f"no finding with fingerprint {fingerprint!r}")
            values = FINDINGS.values(doc["_source"])
            old = FindingStatus(values["status"])
            event = change(values, old)
            try:
                self._ix.client.index(index=self._ix.read(FINDINGS), id=fingerprint,
                                      document=FINDINGS.document(values), if_seq_no=doc["_seq_no"],
                                      if_primary_term=doc["_primary_term"], refresh="wait_for")
            except Exception as exc:
                if getattr(getattr(exc, "meta", None), "status", None) == 409:
                    continue
                raise StoreError(f"cannot update finding {fingerprint}: {exc}") from exc
            if event is not None:
                self._ix.bulk_or_raise([event], refresh="wait_for")
            return StoredFinding.model_validate(values), old
        raise StoreError(f"finding {fingerprint}: changed by others {ATTEMPTS} times in a row")

    def set_status(self, fingerprint: str, status: FindingStatus, actor: str, note: str | None = None, *,
                   risk_expires: datetime | None = None, risk_approver: str | None = None) -> StoredFinding:
        """Triage: change a finding's status by hand, with who and why in its history (KeyError: unknown)."""
        now = self._now()

        def change(values: dict[str, Any], old: FindingStatus) -> dict[str, Any]:
            risk = status is FindingStatus.RISK_ACCEPTED
            values |= {"status": status.value, "resolved_at": iso(now) if status is FindingStatus.RESOLVED else None,
                       "status_note": note, "risk_expires": iso(risk_expires) if risk and risk_expires else None,
                       "risk_approver": risk_approver if risk else None}
            if status is FindingStatus.OPEN and old in (FindingStatus.RESOLVED, FindingStatus.FALSE_POSITIVE):
                values |= {"opened_at": iso(now), "due_at": None, "warn_at": None}
            return self._event(fingerprint, now, actor, status, old_status=old, note=note)

        return self._change(fingerprint, change)[0]

    def add_comment(self, fingerprint: str, actor: str, comment: str) -> FindingEvent:
        """Keep a comment in a finding's history without changing its status (KeyError: unknown)."""
        found = self.finding(fingerprint)
        if found is None:
            raise KeyError(f"no finding with fingerprint {fingerprint!r}")
        event = self._event(fingerprint, self._now(), actor, found.status, old_status=found.status, note=comment)
        self._ix.bulk_or_raise([event], refresh="wait_for")
        values = FINDING_EVENTS.values(event["_source"])
        return FindingEvent.model_validate({k: values[k] for k in FindingEvent.model_fields})

    def assign(self, fingerprint: str, assignee: str | None, actor: str) -> StoredFinding:
        """Assign a finding to an agency (None: its portal's owner), kept in its history (KeyError: unknown)."""
        now = self._now()

        def change(values: dict[str, Any], old: FindingStatus) -> dict[str, Any]:
            values["assignee"] = assignee
            note = f"assigned to {assignee}" if assignee else "assignment cleared"
            return self._event(fingerprint, now, actor, old, old_status=old, note=note)

        return self._change(fingerprint, change)[0]

    def without_deadline(self, severities: Sequence[Severity], limit: int = 10_000) -> list[StoredFinding]:
        """Open or acknowledged findings of these severities that have no SLA deadline yet."""
        if not severities:
            return []
        query = _all(_missing(F("due_at")), _terms(F("status"), _RUNNING),
                     _terms(F("severity"), [severity.value for severity in severities]))
        return [_finding(hit["_source"]) for hit in
                self._ix.hits(FINDINGS, query, sort=_sort([(F("fingerprint"), "asc")]), limit=limit)]

    def set_deadlines(self, deadlines: Mapping[str, tuple[datetime, datetime]]) -> int:
        """Set (warn_at, due_at) of findings that have none yet (a deadline once set is never moved)."""
        changed = 0
        remaining = dict(deadlines)
        for _ in range(ATTEMPTS):
            if not remaining:
                break
            docs = self._ix.mget(FINDINGS, sorted(remaining))
            actions = []
            for fingerprint, doc in docs.items():
                values = FINDINGS.values(doc["_source"])
                if values["due_at"] is not None:
                    remaining.pop(fingerprint)
                    continue
                warn_at, due_at = remaining[fingerprint]
                values |= {"warn_at": iso(warn_at), "due_at": iso(due_at)}
                actions.append(_versioned(self._ix.read(FINDINGS), fingerprint, doc, FINDINGS.document(values)))
            for fingerprint in set(remaining) - set(docs):
                remaining.pop(fingerprint)
            result = self._ix.bulk(actions, refresh="wait_for")
            if result.failed:
                raise StoreError(f"cannot set deadlines: {result.failed[0][1]}")
            changed += len(result.written)
            for fingerprint in result.written:
                remaining.pop(fingerprint, None)
        return changed

    def expire_risk_acceptances(self, now: datetime, actor: str) -> list[StoredFinding]:
        """Reopen every risk acceptance whose expiry is at or before `now` (the SLA clock restarts)."""
        query = _all(_term(F("status"), FindingStatus.RISK_ACCEPTED.value), _range(F("risk_expires"), lte=now))
        fingerprints = [hit["_id"] for hit in self._ix.hits(FINDINGS, query, sort=_sort([(F("fingerprint"), "asc")]))]
        reopened = []
        for fingerprint in fingerprints:
            def change(values: dict[str, Any], old: FindingStatus, fingerprint: str = fingerprint
                       ) -> dict[str, Any] | None:
                if old is not FindingStatus.RISK_ACCEPTED:
                    return None
                expires = datetime.fromisoformat(values["risk_expires"])
                note = (f"risk acceptance expired {expires.isoformat(timespec='minutes')}"
                        f" (approved by {values['risk_approver'] or 'unknown'})")
                values |= {"status": FindingStatus.OPEN.value, "resolved_at": None, "status_note": note,
                           "opened_at": iso(now), "due_at": None, "warn_at": None}
                return self._event(fingerprint, now, actor, FindingStatus.OPEN,
                                   old_status=FindingStatus.RISK_ACCEPTED, note=note)

            reopened.append(self._change(fingerprint, change)[0])
        return reopened

    # --- shared scans ----------------------------------------------------------------------------------------

    def claim(self, key: str, owner: str) -> bool:
        """Take the claim `key` (e.g. a batch of one scan slot's portals) if nobody has: True when taken."""
        try:
            self._ix.client.index(index=self._ix.read(CLAIMS), id=key, op_type="create", refresh="wait_for",
                                  document=CLAIMS.document({"key": key, "owner": owner, "at": iso(self._now())}))
        except Exception as exc:
            if getattr(getattr(exc, "meta", None), "status", None) == 409:
                return False
            raise StoreError(f"cannot take the claim {key}: {exc}") from exc
        return True


def _versioned(index: str, doc_id: str, doc: Mapping[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return {"_op_type": "index", "_index": index, "_id": doc_id, "_source": source,
            "if_seq_no": doc["_seq_no"], "if_primary_term": doc["_primary_term"]}


def _content(finding: Finding, run_id: str, now: datetime) -> dict[str, Any]:
    """The fields a new sighting refreshes: latest wording, evidence, and when/which run saw it."""
    return {"severity": finding.severity.value, "title_vi": finding.title_vi, "title_en": finding.title_en,
            "evidence": finding.evidence, "remediation_vi": finding.remediation_vi,
            "remediation_en": finding.remediation_en, "detail": finding.detail, "last_seen": iso(now),
            "last_run_id": run_id}


def _scan(source: Mapping[str, Any]) -> PortalScan:
    values = PORTAL_SCANS.values(source)
    return PortalScan.model_validate({k: values[k] for k in PortalScan.model_fields})


def _filters(query: FindingQuery) -> list[dict[str, Any]]:
    """The filter clauses of a findings query (the SQLite store's WHERE, clause for clause)."""
    clauses: list[dict[str, Any]] = []
    if query.statuses:
        clauses.append(_terms(F("status"), [status.value for status in query.statuses]))
    if query.severities:
        clauses.append(_terms(F("severity"), [severity.value for severity in query.severities]))
    if query.check_ids:
        clauses.append(_terms(F("check_id"), query.check_ids))
    if query.portal_urls:
        clauses.append(_terms(F("portal_url"), query.portal_urls))
    if query.fingerprint_prefix:
        clauses.append({"prefix": {F("fingerprint"): query.fingerprint_prefix}})
    bounds = (("first_seen", "gt", query.first_seen_after), ("first_seen", "lt", query.first_seen_before),
              ("last_seen", "gt", query.last_seen_after), ("last_seen", "lt", query.last_seen_before),
              ("resolved_at", "gt", query.resolved_after), ("resolved_at", "lte", query.resolved_before))
    for name, op, moment in bounds:
        if moment is not None:
            clauses.append(_range(F(name), **{op: moment}))
    if query.assignees:
        clauses.append(_terms(F("assignee"), query.assignees))
    if query.owners:
        clauses.append(_any(_terms(F("assignee"), query.owners),
                            _all(_missing(F("assignee")), _terms(F("portal_url"), query.owned_subjects or ["\0"]))))
    if query.sla_states:
        if query.now is None:
            raise ValueError("a query by SLA state needs `now`")
        clauses.append(_any(*(sla_clause(SlaState(state), query.now) for state in query.sla_states)))
    return clauses


def _cursor_key(sort: FindingSort, finding: StoredFinding) -> list[Any]:
    """The cursor's key of the last item of a page (the same key the SQLite store hands out)."""
    if sort is FindingSort.SEVERITY:
        return [finding.severity.rank, finding.portal_url, finding.check_id, finding.fingerprint]
    moment = finding.first_seen if sort is FindingSort.FIRST_SEEN else finding.last_seen
    return [moment.astimezone(UTC).isoformat(timespec="microseconds"), finding.fingerprint]


def _bind(path: str, value: Any) -> Any:
    """A cursor's key value as search_after wants it; CursorError when it is not of the field's kind."""
    if path == "soc.severity_rank":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif path in (F("first_seen"), F("last_seen")) and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.utcoffset() is not None:
            return nanos(moment)
    elif isinstance(value, str):
        return value
    raise CursorError("not a valid cursor: its key does not match this order")


def _after(keys: list[tuple[str, str]], after: list[Any]) -> dict[str, Any]:
    """Documents after the key `after` in the order `keys` (for reading every match from a cursor)."""
    values = []
    for (path, _), value in zip(keys, after, strict=True):
        if isinstance(value, int) and path in (F("first_seen"), F("last_seen")):
            # search_after's epoch nanoseconds, as a query reads a date (a bare number would be milliseconds)
            seconds, micros = divmod(value // 1000, 1_000_000)
            value = iso(datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros))
        values.append(value)
    options = []
    for depth in range(len(keys)):
        equal = [_term(path, value) for (path, _), value in zip(keys[:depth], values[:depth], strict=True)]
        path, order = keys[depth]
        bound = {"gt" if order == "asc" else "lt": values[depth]}
        options.append(_all(*equal, {"range": {path: bound}}))
    return _any(*options)
