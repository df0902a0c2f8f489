"""`soc drill generate --from-findings`: a valid draft built on the province's own exposures, owner and system
filled in, its hostile evidence bounded, and its corrective actions confirmed when a scan fixes the finding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from checks.catalogue import make_finding
from drills.responses import ResponsesFile
from drills.validate import read_text
from soc.cli import app
from soc.cli.common import CliState
from soc.core.clock import FixedClock
from soc.core.drill_records import ActionStatus
from soc.core.models import FindingStatus, Observation
from soc.core.settings import Settings
from soc.services import drills
from soc.services.context import ServiceContext, ServiceError, open_context

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
PORTAL = "https://dichvucong.dongnai.gov.vn/"
INVENTORY = """
agencies:
  - {id: vpubnd, name: Văn phòng Ủy ban nhân dân tỉnh}
  - {id: syt, name: Sở Y tế}
portals:
  - {url: "https://dichvucong.dongnai.gov.vn/", agency: vpubnd, system: DVC}
  - {url: "https://syt.dongnai.gov.vn/", agency: syt}
systems:
  - {id: DVC, name: Hệ thống thông tin giải quyết thủ tục hành chính, agency: vpubnd, level: 3}
"""


def _scan(context: ServiceContext, portal: str, ports: list[int], evidence: str = "") -> None:
    """Record one ports observation for a portal, as a scan does (complete: unseen ports resolve)."""
    store = context.backend.findings
    run = store.begin_run("lab", 1)
    findings = [make_finding(portal, "ports.risky_open", evidence or f"{port}/tcp open", str(port)) for port in ports]
    observation = Observation(collector="ports", portal_url=portal, observed_at=context.clock.now(), complete=True,
                              data={})
    store.record_portal(run.id, portal, [observation], findings)
    store.finish_run(run.id, complete=True)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    db = tmp_path / "soc.db"
    with open_context(Settings(db=db), FixedClock(NOW), "scanner") as context:
        _scan(context, PORTAL, [3389], "3389/tcp open — ms-wbt-server <script>alert(1)</script>" + "x" * 5000)
        _scan(context, "https://syt.dongnai.gov.vn/", [3306])
    return db, inventory


def test_the_draft_is_a_valid_scenario_about_the_worst_exposure(world: tuple[Path, Path], tmp_path: Path) -> None:
    db, inventory = world
    out = tmp_path / "draft.yaml"
    result = CliRunner().invoke(app, ["drill", "generate", "--from-findings", "--db", str(db), "-i", str(inventory),
                                      "--out", str(out)], obj=CliState(clock=FixedClock(NOW)))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Bản nháp")
    checked = read_text(text, str(out))
    assert checked.ok, [str(p) for p in checked.problems]
    scenario = checked.scenario
    assert scenario is not None
    assert "RDP" in scenario.title.vi and PORTAL in scenario.title.vi
    assert (scenario.target.agency, scenario.target.system_id, scenario.target.level) == ("vpubnd", "DVC", 3)
    assert len(scenario.injects) >= 8 and scenario.decisions
    evidence = scenario.inject("inj-finding").artefacts[0].content
    assert "<script>" in evidence and len(evidence) < 2_000  # quoted as text, bounded
    assert yaml.safe_load(text)["generated_from"]


def test_one_agency_only_and_a_clear_refusal_when_there_is_nothing(world: tuple[Path, Path], tmp_path: Path) -> None:
    db, inventory = world
    result = CliRunner().invoke(app, ["drill", "generate", "--from-findings", "--agency", "syt", "--db", str(db),
                                      "-i", str(inventory)], obj=CliState(clock=FixedClock(NOW)))
    assert result.exit_code == 0, result.output
    drafted = yaml.safe_load(result.stdout)
    assert drafted["target"]["agency"] == "syt" and "3306" in drafted["title"]["vi"]
    empty = tmp_path / "empty.db"
    refused = CliRunner().invoke(app, ["drill", "generate", "--from-findings", "--db", str(empty),
                                       "-i", str(inventory)])
    assert refused.exit_code == 2 and "no open finding" in refused.output
    unknown = CliRunner().invoke(app, ["drill", "generate", "--from-findings", "--agency", "nope", "--db", str(db),
                                       "-i", str(inventory)])
    assert unknown.exit_code == 2 and "--agency nope" in unknown.output


def test_actions_of_a_drafted_drill_are_confirmed_when_a_scan_resolves_the_finding(
        world: tuple[Path, Path], tmp_path: Path) -> None:
    db, inventory_path = world
    from soc.inventory import load_inventory

    clock = FixedClock(NOW)
    with open_context(Settings(db=db), clock, "facilitator") as context:
        drafted = drills.draft_from_findings(context, load_inventory(inventory_path), "vpubnd")
        path = tmp_path / "drafted.yaml"
        path.write_text(drafted.text, encoding="utf-8")
        finished = drills.run_scripted(context, path, ResponsesFile())
        fix = next(a for a in finished.actions if a.expectation_id == "e-fix")
        assert fix.confirm_findings == [drafted.exposures[0].finding.fingerprint]
        drills.mark_done(context, fix.id, "RDP closed at the edge firewall")
        assert context.backend.drills.action(fix.id).status is ActionStatus.DONE  # type: ignore[union-attr]
        clock.advance(timedelta(days=1))
        _scan(context, PORTAL, [])  # the next scan finds port 3389 closed
        drills.evaluate_actions(context)
        action = context.backend.drills.action(fix.id)
        assert action is not None and action.status is ActionStatus.CONFIRMED
        assert (action.confirmed_by or "").startswith("finding:")
        finding = next(f for f in context.backend.findings.list_findings(check_ids=["drill.corrective_action"])
                       if f.detail == fix.id)
        assert finding.status is FindingStatus.RESOLVED
        with pytest.raises(ServiceError):
            drills.draft_from_findings(context, load_inventory(inventory_path), "vpubnd")  # nothing open any more
