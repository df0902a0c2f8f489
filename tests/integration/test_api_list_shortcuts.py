"""What the findings list still does after its per-request shortcuts (bench/api_load.py): a page of portal
findings answers without reading the register, a page with a system's finding still gets that system's agency
from the register, and a token's `last_used` is still written on first use and then once a minute.

Real parts: a real SQLite store, the real services, FastAPI's TestClient; the example inventory's portal is only
a name here (nothing is scanned).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from checks.catalogue import make_finding
from soc.api import create_app
from soc.compliance.models import SystemRecord
from soc.core.clock import FixedClock
from soc.core.models import Observation, Role
from soc.core.settings import Settings
from soc.services.context import open_context
from soc.services.users import add_user, create_token

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "examples" / "dongnai.yaml"
PORTAL = "https://stp.dongnai.gov.vn/"
"""Agency `stp` in the example inventory."""
SYSTEM = "system:HT-LIST-01"
"""In the register only (agency `syt`): its owner is known from nothing else."""


def test_page_agencies_come_from_the_inventory_and_the_register(tmp_path: Path, clock: FixedClock) -> None:
    settings = Settings(db=tmp_path / "soc.db", inventory=INVENTORY)
    with open_context(settings, clock, actor="test") as context:
        store = context.backend.findings
        context.backend.register.apply_systems(
            [SystemRecord(id=SYSTEM.removeprefix("system:"), name="Hệ thống thử", agency="syt")], actor="test",
            source="register.xlsx", at=clock.now() - timedelta(days=1))
        run = store.begin_run("dongnai.yaml", 2)
        for subject, collector, check in ((PORTAL, "tls", "tls.protocol.tls10"),
                                          (SYSTEM, "compliance", "approval.missing_in_operation")):
            observation = Observation(collector=collector, portal_url=subject, observed_at=clock.now(), complete=True)
            store.record_portal(run.id, subject, [observation], [make_finding(subject, check, "evidence")])
        store.finish_run(run.id, complete=True)
        add_user(context, "viewer.user", Role.VIEWER, "mật-khẩu-thử-nghiệm-2026")
        token = create_token(context, "viewer.user")[1]
        client = TestClient(create_app(settings, context.backend, clock))
        headers = {"Authorization": f"Bearer {token}"}

        def agencies(query: str) -> dict[str, str | None]:
            response = client.get(f"/api/v1/findings{query}", headers=headers)
            assert response.status_code == 200, response.text
            return {item["portal_url"]: item["agency"] for item in response.json()["items"]}

        assert agencies("") == {PORTAL: "stp", SYSTEM: "syt"}
        assert agencies("?check=tls.protocol.tls10") == {PORTAL: "stp"}
        assert agencies("?check=approval.missing_in_operation") == {SYSTEM: "syt"}
        assert agencies("?agency=syt") == {SYSTEM: "syt"}  # the filter needs every owner, the register's too
        assert agencies("?agency=stp") == {PORTAL: "stp"}


def test_token_last_used_is_written_at_first_use_then_once_a_minute(tmp_path: Path, clock: FixedClock) -> None:
    settings = Settings(db=tmp_path / "soc.db", inventory=INVENTORY)
    with open_context(settings, clock, actor="test") as context:
        add_user(context, "viewer.user", Role.VIEWER, "mật-khẩu-thử-nghiệm-2026")
        token, secret = create_token(context, "viewer.user")
        client = TestClient(create_app(settings, context.backend, clock))

        def used_at_after_a_call() -> object:
            assert client.get("/api/v1/findings", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
            found = context.backend.users.token(token.id)
            assert found is not None
            return found[0].last_used

        first = clock.now()
        assert used_at_after_a_call() == first
        clock.advance(timedelta(seconds=50))
        assert used_at_after_a_call() == first
        clock.advance(timedelta(seconds=20))
        assert used_at_after_a_call() == clock.now()
