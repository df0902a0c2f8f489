"""Index names, templates, bulk writes and reads over every match: what every search store shares."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError, helpers

from soc.core.clock import SYSTEM_CLOCK
from soc.store.errors import StoreError
from soc.store.search.client import pit_body, point_in_time
from soc.store.search.shapes import SHAPES, Shape

PAGE = 1000
"""Documents per page when reading every match (search_after over a point in time)."""
BULK_CHUNK = 500


@dataclass(frozen=True)
class BulkResult:
    """What a bulk write did: ids written, ids refused by a version conflict, other failures."""

    written: list[str]
    conflicts: list[str]
    failed: list[tuple[str, str]]


def iso(moment: datetime) -> str:
    """A timestamp as the documents keep it (UTC, microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def nanos(moment: datetime) -> int:
    """Epoch nanoseconds (how a `date_nanos` field sorts), exact for microsecond times."""
    moment = moment.astimezone(UTC)
    return (int(moment.replace(microsecond=0).timestamp()) * 1_000_000 + moment.microsecond) * 1000


class SearchIndices:
    """The indices of one SOC on one cluster (names under `prefix`), and the ways the stores use them."""

    def __init__(self, client: Elasticsearch, prefix: str, flavour: str, retries: int = 3) -> None:
        self.client = client
        self.prefix = prefix
        self.flavour = flavour
        self.retries = retries
        # microseconds since the epoch: below 2**53 (until 2255), so that an engine or client reading numbers
        # as doubles (aggregations, top_hits sort values, JavaScript) still tells two sequences apart
        self._sequence = itertools.count(time.time_ns() // 1000)
        self._lock = threading.Lock()

    # --- names -----------------------------------------------------------------------------------------

    def read(self, shape: Shape) -> str:
        """The index (or alias over the monthly indices) searches read."""
        return f"{self.prefix}-{shape.name}"

    def write(self, shape: Shape, moment: datetime | None = None) -> str:
        """The index a document goes to: its month's for a time-based shape."""
        if not shape.timed:
            return self.read(shape)
        month = (moment or SYSTEM_CLOCK.now()).astimezone(UTC)  # only `setup`'s first empty index
        return f"{self.prefix}-{shape.name}-{month:%Y.%m}"

    def sequence(self) -> int:
        """A number that grows with every call in this process (orders documents of the same instant)."""
        with self._lock:
            return next(self._sequence)

    # --- templates -------------------------------------------------------------------------------------

    def template(self, shape: Shape) -> dict[str, Any]:
        """The index template of a shape (what `soc store setup` loads)."""
        name = self.read(shape)
        body: dict[str, Any] = {
            "index_patterns": [f"{name}-*" if shape.timed else name],
            "priority": 200,
            "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
                         "mappings": shape.mapping()},
            "_meta": {"managed_by": "soc", "shape": shape.name},
        }
        if shape.timed:
            body["template"]["aliases"] = {name: {}}
        return body

    def setup(self) -> list[str]:
        """Load every index template and create the indices that are not time-based; return their names.
        Existing indices keep their data (a template change applies to indices created after it)."""
        done = []
        for shape in SHAPES:
            name = self.read(shape)
            body = self.template(shape)
            self._call(lambda n=name, b=body: self.client.indices.put_index_template(
                name=n, index_patterns=b["index_patterns"], priority=b["priority"], template=b["template"],
                meta=b["_meta"]))
            if not shape.timed and not self.client.indices.exists(index=name):
                try:
                    self.client.indices.create(index=name)
                except ApiError as exc:
                    if exc.meta.status != 400 or "already_exists" not in str(exc):
                        raise StoreError(f"{name}: cannot create the index ({exc})") from exc
            elif shape.timed and not self.client.indices.exists_alias(name=name):
                # an empty current month's index, so that reads of the alias work before the first write
                self.client.indices.create(index=self.write(shape))
            done.append(name)
        return done

    def ready(self) -> bool:
        """The templates are loaded (every shape's index or alias exists)."""
        try:
            return all(self.client.indices.exists(index=self.read(shape)) for shape in SHAPES)
        except TransportError as exc:
            raise StoreError(f"the search cluster cannot be reached ({exc})") from exc

    def drop(self) -> None:
        """Delete every index and template of this prefix (tests, `soc store migrate --restart`)."""
        for shape in SHAPES:
            pattern = f"{self.read(shape)}-*" if shape.timed else self.read(shape)
            with contextlib.suppress(NotFoundError):
                self.client.indices.delete(index=pattern, ignore_unavailable=True, allow_no_indices=True)

    # --- writes ----------------------------------------------------------------------------------------

    def bulk(self, actions: Iterable[Mapping[str, Any]], refresh: bool | str = False) -> BulkResult:
        """Write actions in chunks; 429s are retried with growing waits (elasticsearch.helpers)."""
        written: list[str] = []
        conflicts: list[str] = []
        failed: list[tuple[str, str]] = []
        try:
            for ok, item in helpers.streaming_bulk(
                    self.client, (dict(action) for action in actions), chunk_size=BULK_CHUNK,
                    max_retries=self.retries, initial_backoff=0.5,
                    max_backoff=8, raise_on_error=False, raise_on_exception=True, refresh=refresh):
                _op, info = next(iter(item.items()))
                doc_id = str(info.get("_id"))
                if ok:
                    written.append(doc_id)
                elif info.get("status") == 409:
                    conflicts.append(doc_id)
                else:
                    failed.append((doc_id, str(info.get("error"))[:500]))
        except TransportError as exc:
            raise StoreError(f"the search cluster failed a bulk write ({exc})") from exc
        return BulkResult(written, conflicts, failed)

    def bulk_or_raise(self, actions: Iterable[Mapping[str, Any]], refresh: bool | str = False) -> BulkResult:
        """`bulk`, where any refused document is an error (StoreError naming the first)."""
        result = self.bulk(actions, refresh=refresh)
        problems = [(doc_id, "version conflict") for doc_id in result.conflicts] + result.failed
        if problems:
            doc_id, reason = problems[0]
            raise StoreError(f"the search cluster refused {len(problems)} document(s); first {doc_id}: {reason}")
        return result

    def refresh(self, *shapes: Shape) -> None:
        """Make what was written visible to searches (Elasticsearch shows writes after a refresh only)."""
        names = ",".join(self.read(shape) for shape in shapes)
        self._call(lambda: self.client.indices.refresh(index=names, ignore_unavailable=True))

    # --- reads -----------------------------------------------------------------------------------------

    def get(self, shape: Shape, doc_id: str) -> dict[str, Any] | None:
        """A document of a non-time-based index by id (realtime), with `_seq_no` / `_primary_term`, or None."""
        try:
            found = self._call(lambda: self.client.get(index=self.read(shape), id=doc_id))
        except NotFoundError:
            return None
        return dict(found)

    def mget(self, shape: Shape, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Documents by id (realtime), those found, with their sequence numbers."""
        if not ids:
            return {}
        answer = self._call(lambda: self.client.mget(index=self.read(shape), ids=list(ids)))
        return {doc["_id"]: dict(doc) for doc in answer["docs"] if doc.get("found")}

    def search(self, shape: Shape, query: Mapping[str, Any] | None = None, *, sort: Sequence[Any] = (),
               size: int = PAGE, search_after: Sequence[Any] | None = None, versions: bool = False,
               aggs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One search request over a shape's index (or alias)."""
        body: dict[str, Any] = {"query": query or {"match_all": {}}, "size": size, "track_total_hits": False}
        if sort:
            body["sort"] = list(sort)
        if search_after is not None:
            body["search_after"] = list(search_after)
        if versions:
            body["seq_no_primary_term"] = True
        if aggs is not None:
            body["aggs"] = dict(aggs)
        return dict(self._call(lambda: self.client.search(index=self.read(shape), body=body)))

    def hits(self, shape: Shape, query: Mapping[str, Any] | None = None, *, sort: Sequence[Any],
             limit: int | None = None, versions: bool = False) -> Iterator[dict[str, Any]]:
        """Every matching document in `sort` order (which must end with a unique field), read page by page
        with search_after; more than a page is read over a point in time (one consistent view)."""
        wanted = limit
        first = self.search(shape, query, sort=sort, size=min(PAGE, wanted) if wanted else PAGE, versions=versions)
        page = first["hits"]["hits"]
        yield from page
        if wanted is not None:
            wanted -= len(page)
        if len(page) < PAGE or (wanted is not None and wanted <= 0):
            return
        with point_in_time(self.client, self.flavour, self.read(shape)) as pit:
            after = page[-1]["sort"]
            while True:
                body: dict[str, Any] = {"query": query or {"match_all": {}}, "sort": list(sort),
                                        "size": min(PAGE, wanted) if wanted else PAGE, "pit": dict(pit_body(pit)),
                                        "search_after": after, "track_total_hits": False}
                if versions:
                    body["seq_no_primary_term"] = True
                answer = self._call(lambda b=body: self.client.search(body=b))
                page = answer["hits"]["hits"]
                yield from page
                if wanted is not None:
                    wanted -= len(page)
                if len(page) < PAGE or (wanted is not None and wanted <= 0):
                    return
                after = page[-1]["sort"]

    def count(self, shape: Shape, query: Mapping[str, Any] | None = None) -> int:
        """How many documents match."""
        answer = self._call(lambda: self.client.count(index=self.read(shape), query=query or {"match_all": {}}))
        return int(answer["count"])

    def _call(self, request: Any) -> Any:
        """One request; a cluster that cannot be reached or fails is a StoreError (a missing document is not)."""
        try:
            return request()
        except NotFoundError:
            raise
        except ApiError as exc:
            raise StoreError(f"the search cluster refused a request: {exc.meta.status} {str(exc)[:500]}") from exc
        except TransportError as exc:
            raise StoreError(f"the search cluster cannot be reached ({exc})") from exc
