"""The search engine the contract suite runs against: osmem-server (always), or a real cluster.

`SOC_TEST_SEARCH_URL` (with optional `SOC_TEST_SEARCH_FLAVOUR`, `SOC_TEST_SEARCH_USER`,
`SOC_TEST_SEARCH_PASSWORD`, `SOC_TEST_SEARCH_CA`) points the suite at a real Elasticsearch or OpenSearch:
each test then gets indices under a prefix of its own, deleted afterwards. Without it each test gets a
fresh clone of one osmem-server process (an in-memory OpenSearch-compatible server, copy-on-write).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from soc.core.settings import StoreSettings
from soc.store.search import open_indices

REAL_URL = os.environ.get("SOC_TEST_SEARCH_URL")


def engine_name() -> str:
    """What the search backend's tests ran against (printed in the test header)."""
    return f"{os.environ.get('SOC_TEST_SEARCH_FLAVOUR', 'elasticsearch')} at {REAL_URL}" if REAL_URL \
        else "osmem-server (in-memory OpenSearch-compatible)"


@pytest.fixture
def search_settings(request: pytest.FixtureRequest) -> Iterator[StoreSettings]:
    """Settings of an empty search store of the test's own, with its index templates loaded."""
    if REAL_URL:
        settings = StoreSettings(
            backend="search", url=REAL_URL, flavour=os.environ.get("SOC_TEST_SEARCH_FLAVOUR", "elasticsearch"),  # type: ignore[arg-type]
            username=os.environ.get("SOC_TEST_SEARCH_USER"),
            password=SecretStr(os.environ["SOC_TEST_SEARCH_PASSWORD"]) if "SOC_TEST_SEARCH_PASSWORD" in os.environ
            else None,
            ca_certs=Path(os.environ["SOC_TEST_SEARCH_CA"]) if "SOC_TEST_SEARCH_CA" in os.environ else None,
            index_prefix=f"soctest-{uuid.uuid4().hex[:10]}")
        indices = open_indices(settings)
        indices.setup()
        try:
            yield settings
        finally:
            indices.drop()
            indices.client.close()
        return
    clone: Any = request.getfixturevalue("osmem_clone")
    settings = StoreSettings(backend="search", url=clone.url, flavour="opensearch", index_prefix="soc")
    indices = open_indices(settings)
    indices.setup()
    indices.client.close()
    yield settings
