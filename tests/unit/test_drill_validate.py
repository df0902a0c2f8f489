"""Scenario files: every problem named with its file, line and YAML path; the JSON Schema comes from the models."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drills.scenario import json_schema, parse_offset
from drills.validate import read_file, read_text
from soc.cli import app

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
MODEL = PLAYBOOKS / "qlvb-ransomware.yaml"


def _edited(tmp_path: Path, change: str, replacement: str, name: str = "bad.yaml") -> Path:
    text = MODEL.read_text(encoding="utf-8")
    assert change in text, change
    path = tmp_path / name
    path.write_text(text.replace(change, replacement, 1), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_the_model_scenario_is_valid_under_both_rule_sets() -> None:
    assert read_file(MODEL, date(2025, 6, 1)).ok
    assert read_file(MODEL, date(2026, 12, 1)).ok


def test_a_branch_to_a_missing_option_is_named_on_its_line(tmp_path: Path) -> None:
    path = _edited(tmp_path, "trigger: {decision: d-isolate, option: monitor, delay: +1h}",
                   "trigger: {decision: d-isolate, option: wait-and-see, delay: +1h}")
    checked = read_file(path, date(2026, 12, 1))
    assert not checked.ok
    [problem] = checked.problems
    assert problem.path == "injects[3].trigger.option"
    assert problem.line == _line_of(path, "wait-and-see")
    assert "no option 'wait-and-see'" in problem.message
    assert str(problem).startswith(f"{path}:{problem.line}: injects[3].trigger.option: ")


def test_an_undeclared_role_an_unknown_objective_and_a_missing_field_are_all_listed(tmp_path: Path) -> None:
    text = MODEL.read_text(encoding="utf-8")
    text = text.replace("    role: communications\n", "    role: press_officer\n", 1)
    text = text.replace("    objective: o-communicate\n    role: press_officer",
                        "    objective: o-media\n    role: press_officer")
    path = tmp_path / "many.yaml"
    path.write_text(text, encoding="utf-8")
    checked = read_file(path, date(2026, 12, 1))
    messages = {p.path: p.message for p in checked.problems}
    assert "role 'press_officer' is not declared" in messages["expectations[7].role"]
    assert "no objective 'o-media'" in messages["expectations[7].objective"]
    data = yaml.safe_load(MODEL.read_text(encoding="utf-8"))
    del data["injects"][2]["read_aloud"]
    missing = read_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "m.yaml", date(2026, 12, 1))
    assert [p.path for p in missing.problems] == ["injects[2].read_aloud"]
    assert missing.problems[0].message == "Field required"


def test_an_unreachable_inject_and_a_deadline_after_the_end_are_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(MODEL.read_text(encoding="utf-8"))
    data["decisions"][0]["after"] = "inj-ransom"  # the decision now opens with an inject only it releases
    data["duration"] = "1d"  # the closing-report deadlines fall after it
    checked = read_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "loop.yaml", date(2026, 12, 1))
    found = [str(p) for p in checked.problems]
    assert any("injects[3]: unreachable" in p for p in found), found
    assert any("after the end of the exercise" in p and "injects[" in p for p in found), found
    assert any(p.startswith("loop.yaml:") and "expectations[" in p and "deadline" in p for p in found), found


def test_a_reporting_duty_must_exist_and_apply(tmp_path: Path) -> None:
    path = _edited(tmp_path, "deadline: {report: initial_report}", "deadline: {report: personal_data_breach_notice}")
    [problem] = read_file(path, date(2026, 12, 1)).problems
    assert problem.path == "expectations[2].deadline.report"
    assert "applies only to personal data" in problem.message
    unknown = _edited(tmp_path, "deadline: {report: initial_report}", "deadline: {report: weekly_report}", "u.yaml")
    [problem] = read_file(unknown, date(2026, 12, 1)).problems
    assert "no reporting duty 'weekly_report'" in problem.message and "luat116-2025" in problem.message


def test_yaml_errors_and_non_mappings_name_their_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\ntitle: {vi: a, en: b\nsummary: c\n", encoding="utf-8")
    [problem] = read_file(broken).problems
    assert problem.line in (2, 3) and "not valid YAML" in problem.message
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    assert "expected a mapping" in read_file(listed).problems[0].message
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert read_file(binary).problems[0].message == "not UTF-8 text"


def test_soc_drill_validate_exits_2_with_every_problem_as_file_line_path_message(tmp_path: Path) -> None:
    bad = _edited(tmp_path, "after: inj-lateral\n    options:", "after: inj-nowhere\n    options:")
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["drill", "validate", str(MODEL), str(bad), str(broken)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(tmp_path))]
    assert f"{bad}:{_line_of(bad, 'inj-nowhere')}: decisions[0].after: no inject 'inj-nowhere'" in lines
    assert any(line.startswith(f"{broken}:") and "not valid YAML" in line for line in lines)
    ok = CliRunner().invoke(app, ["drill", "validate", str(MODEL)])
    assert ok.exit_code == 0, ok.output


def test_the_schema_is_generated_from_the_models_and_matches_the_committed_file() -> None:
    schema = json_schema()
    assert schema["title"] == "Scenario"
    assert {"injects", "expectations", "decisions", "roles"} <= set(schema["properties"])
    committed = json.loads((PLAYBOOKS / "schema.json").read_text(encoding="utf-8"))
    assert committed == schema, "playbooks/schema.json is stale: run `soc drill schema --out playbooks/schema.json`"


@pytest.mark.parametrize(("text", "seconds"), [("+45m", 2700), ("1d4h", 100800), ("0", 0), ("+90s", 90)])
def test_offsets_on_the_exercise_clock(text: str, seconds: int) -> None:
    assert parse_offset(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "+", "1x", "45", "h4", "+1h-2m"])
def test_bad_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_offset(text)
