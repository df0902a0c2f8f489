"""The connection to the search cluster, and every difference between Elasticsearch and OpenSearch.

We use the official `elasticsearch` client for both flavours. Differences met (and measured against
osmem-server, an in-memory OpenSearch-compatible server), all handled here and nowhere else:

- Content type: the client sends `application/vnd.elasticsearch+json; compatible-with=N`, which OpenSearch
  answers with 406. `PlainJsonNode` sends `application/json`, which Elasticsearch accepts as well.
- Product check: the client checks the `X-Elastic-Product` header of Elasticsearch 8+; OpenSearch has none,
  so for `opensearch` the check is turned off (`_verified_elasticsearch`), the way opensearch-py does.
- Point in time: Elasticsearch `POST /{index}/_pit` / `DELETE /_pit` {"id"}; OpenSearch
  `POST /{index}/_search/point_in_time` / `DELETE /_search/point_in_time` {"pit_id": [...]}.
- Not used because OpenSearch-compatible servers lack them: scripted updates, ingest pipelines, runtime
  mappings (documents are written whole, with optimistic concurrency, and derived fields computed here).
- Visibility: osmem-server shows writes at once, Elasticsearch after a refresh; the stores refresh
  explicitly where the protocol promises read-your-writes (see `SearchIndices.refresh`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode
from elastic_transport._node._base import NodeApiResponse  # the type the node API returns (not re-exported)
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import Elasticsearch

from soc.core.settings import StoreSettings
from soc.store.errors import StoreError

KEEP_ALIVE = "2m"


class PlainJsonNode(Urllib3HttpNode):
    """Sends and accepts plain `application/json` (OpenSearch refuses the compatibility media type)."""

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None,
                        request_timeout: DefaultType | float | None = DEFAULT) -> NodeApiResponse:
        if headers is not None:
            headers = headers.copy()
            for name in ("content-type", "accept"):
                if name in headers:
                    headers[name] = "application/json"
        return super().perform_request(method, target, body=body, headers=headers, request_timeout=request_timeout)


def connect(settings: StoreSettings) -> Elasticsearch:
    """A client for the configured cluster (StoreError: no URL, or a setting that cannot work)."""
    if not settings.url:
        raise StoreError("SOC_STORE__BACKEND=search needs SOC_STORE__URL (e.g. https://es.soc.local:9200)")
    hosts = [url.strip() for url in settings.url.split(",") if url.strip()]
    options: dict[str, Any] = {
        "node_class": PlainJsonNode, "request_timeout": settings.timeout, "max_retries": settings.retries,
        "retry_on_timeout": True, "retry_on_status": (429, 502, 503, 504),
    }
    if settings.api_key is not None:
        options["api_key"] = settings.api_key.get_secret_value()
    elif settings.username:
        options["basic_auth"] = (settings.username, settings.password.get_secret_value() if settings.password else "")
    if settings.ca_certs is not None:
        if not settings.ca_certs.is_file():
            raise StoreError(f"SOC_STORE__CA_CERTS: {settings.ca_certs} is not a file")
        options["ca_certs"] = str(settings.ca_certs)
    client = Elasticsearch(hosts, **options)
    if settings.flavour == "opensearch":
        client._verified_elasticsearch = True  # OpenSearch sends no X-Elastic-Product header
    return client


def location(settings: StoreSettings) -> str:
    """The cluster's URL(s) without credentials, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    shown = []
    for url in (settings.url or "").split(","):
        parts = urlsplit(url.strip())
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        shown.append(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    return ",".join(shown) + f" ({settings.flavour}, indices {settings.index_prefix}-*)"


@contextmanager
def point_in_time(client: Elasticsearch, flavour: str, index: str) -> Iterator[str]:
    """A point in time over `index` (a consistent view for paging through every match), closed after."""
    if flavour == "opensearch":
        opened = client.perform_request("POST", f"/{index}/_search/point_in_time",
                                        params={"keep_alive": KEEP_ALIVE}, headers={"accept": "application/json"})
        pit = str(opened["pit_id"])
    else:
        pit = str(client.open_point_in_time(index=index, keep_alive=KEEP_ALIVE)["id"])
    try:
        yield pit
    finally:
        try:
            if flavour == "opensearch":
                client.perform_request("DELETE", "/_search/point_in_time", body={"pit_id": [pit]},
                                       headers={"accept": "application/json", "content-type": "application/json"})
            else:
                client.close_point_in_time(id=pit)
        except Exception:  # a PIT left open expires after KEEP_ALIVE
            pass


def pit_body(pit: str) -> Mapping[str, Any]:
    """The `pit` clause of a search over a point in time (the same on both flavours)."""
    return {"id": pit, "keep_alive": KEEP_ALIVE}
