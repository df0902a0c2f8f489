"""The REST API fuzzed from its own OpenAPI document: no generated request, valid or not, gets a server error.

Every operation of /openapi.json (new routes included, as they appear in the document) gets requests built by
schemathesis from its schema, sent in process as the admin (so the handlers run, not just the guard) to a
real store holding a run and its findings. Hypothesis is derandomized: the same requests on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from soc.core.models import Role
from tests.integration.api_world import TARGET_USER, Seed, World, loopback_only, open_world, seed_store

schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes OpenAPI 3.1
EXAMPLES = 25
"""Requests per operation, valid and invalid ones together."""


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_store(tmp_path_factory.mktemp("seed"))


@pytest.fixture
def world(seed: Seed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    loopback_only(monkeypatch)
    opened = open_world(seed, tmp_path)
    try:
        yield opened
    finally:
        opened.context.close()


def real_ids(world: World) -> dict[str, st.SearchStrategy[str]]:
    """Ids that exist in the seeded store, by path parameter name."""
    with TestClient(world.app) as client:
        listed = client.get("/api/v1/portals", headers=world.credential(Role.ADMIN.value).headers())
    assert listed.status_code == 200, listed.text
    seed = world.seed
    return {"fingerprint": st.sampled_from(seed.fingerprints), "run": st.just(seed.run_id),
            "run_a": st.just(seed.run_id), "run_b": st.just(seed.run_id), "name": st.just(TARGET_USER),
            "token_id": st.just(seed.spare_token_id),
            "portal": st.sampled_from([item["id"] for item in listed.json()["items"]])}


@pytest.fixture
def api_schema(world: World) -> Any:
    loaded = schemathesis.from_asgi("/openapi.json", world.app,
                                    data_generation_methods=[schemathesis.DataGenerationMethod.positive,
                                                             schemathesis.DataGenerationMethod.negative])
    known = real_ids(world)

    def existing(parameters: Any) -> st.SearchStrategy[Any]:
        if not isinstance(parameters, dict):
            return st.just(parameters)
        return st.fixed_dictionaries({name: known.get(name, st.just(value)) for name, value in parameters.items()})

    @loaded.hook("before_generate_path_parameters")
    def half_of_them_real(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        # Random ids only reach the 404 of a lookup; real ones take the generated bodies and queries into
        # the handlers.
        return st.one_of(strategy, strategy.flatmap(existing))

    return loaded


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_no_generated_request_gets_a_server_error(case: Any, world: World) -> None:
    response = case.call(headers=world.credential(Role.ADMIN.value).headers())
    case.validate_response(response, checks=(not_a_server_error, status_code_conformance,
                                             content_type_conformance, response_schema_conformance))
