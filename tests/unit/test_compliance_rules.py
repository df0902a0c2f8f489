"""Legal rules as versioned data: both shipped rule sets, date arithmetic, broken files, a new decree as data."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from soc.compliance.models import ApprovalStatus, Environment, SystemRecord
from soc.compliance.rules import (
    RULESETS_DIR,
    RulesError,
    RuleSet,
    add_months,
    load_rulesets,
    ruleset_by_id,
    ruleset_for,
)

ND85 = "nd85-2016"
LUAT116 = "luat116-2025"


def record(**fields: Any) -> SystemRecord:
    base: dict[str, Any] = {"id": "qlvb", "name": "Hệ thống Quản lý văn bản", "agency": "stttt"}
    return SystemRecord.model_validate(base | fields)


def nd85() -> RuleSet:
    return ruleset_by_id(ND85)


def luat116() -> RuleSet:
    return ruleset_by_id(LUAT116)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rule sets to break or extend."""
    target = tmp_path / "rulesets"
    shutil.copytree(RULESETS_DIR, target)
    return target


def edit(directory: Path, ruleset_id: str, change: Any) -> None:
    """Load a rule-set file, let `change` modify the data, write it back."""
    path = directory / f"{ruleset_id}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def problems_of(directory: Path) -> str:
    with pytest.raises(RulesError) as caught:
        load_rulesets(directory)
    return str(caught.value)


# --- the shipped rule sets --------------------------------------------------------------------------------------


def test_both_shipped_rule_sets_load_in_date_order() -> None:
    rulesets = load_rulesets()
    assert [r.id for r in rulesets] == [ND85, LUAT116]
    assert rulesets[0].valid_from == date(2016, 9, 1)
    assert rulesets[0].valid_to == rulesets[1].valid_from == date(2026, 7, 1)
    assert rulesets[1].valid_to is None
    for ruleset in rulesets:
        assert [rule.level for rule in ruleset.levels] == [1, 2, 3, 4, 5]
        assert all(rule.criteria.vi and rule.criteria.en for rule in ruleset.levels)


def test_shipped_rule_sets_load_from_the_package_directory() -> None:
    assert Path(__file__).resolve().parents[2] / "soc" / "compliance" / "rulesets" == RULESETS_DIR
    assert [r.id for r in load_rulesets(RULESETS_DIR)] == [ND85, LUAT116]


def test_default_loading_is_cached_and_callers_cannot_disturb_the_cache() -> None:
    first = load_rulesets()
    first.clear()
    assert [r.id for r in load_rulesets()] == [ND85, LUAT116]
    assert load_rulesets()[0] is load_rulesets()[0]


def test_rule_sets_are_frozen() -> None:
    with pytest.raises(ValidationError):
        nd85().valid_to = None


def test_nd85_cites_its_legal_basis_and_authorities() -> None:
    ruleset = nd85()
    refs = [item.ref for item in ruleset.legal_basis]
    for cited in ("85/2016/NĐ-CP", "12/2022/TT-BTTTT", "05/2017/QĐ-TTg", "20/2017/TT-BTTTT", "TCVN 11930:2017",
                  "09/CT-TTg"):
        assert any(cited in ref for ref in refs), cited
    assert not ruleset.to_be_confirmed
    assert "chuyên trách" in ruleset.level(1).approving_authority.vi
    assert "UBND tỉnh" in ruleset.level(3).approving_authority.vi
    assert "Information and Communications" in ruleset.level(4).approving_authority.en
    assert "Prime-Minister" in ruleset.level(5).approving_authority.en
    assert [ruleset.level(n).reassessment_months for n in range(1, 6)] == [None, None, 12, 12, 6]
    assert ruleset.minimum_level_rules == ()
    assert ruleset.deadlines == ()


def test_luat116_is_marked_to_be_confirmed_fact_by_fact() -> None:
    ruleset = luat116()
    assert ruleset.to_be_confirmed
    assert any("Công báo" in note.vi and "official gazette" in note.en for note in ruleset.notes)
    assert {item.ref: item.effective for item in ruleset.legal_basis}["Nghị định 331/2026/NĐ-CP"] == date(2026, 8, 19)
    facts: list[Any] = [*ruleset.legal_basis, *ruleset.levels, *ruleset.recipients, *ruleset.requirement_groups,
             *ruleset.minimum_level_rules, *ruleset.deadlines, ruleset.operation_rule]
    assert all(not fact.confirmed for fact in facts)
    assert "Bộ Công an" in ruleset.level(4).approving_authority.vi
    assert "Bộ Công an" in ruleset.level(5).approving_authority.vi


def test_luat116_keeps_the_tcvn_11930_group_ids_unconfirmed() -> None:
    old, new = nd85(), luat116()
    assert [g.id for g in new.requirement_groups] == [g.id for g in old.requirement_groups]
    assert {g.kind for g in old.requirement_groups} == {"management", "technical"}
    assert len([g for g in old.requirement_groups if g.kind == "management"]) == 5
    assert len([g for g in old.requirement_groups if g.kind == "technical"]) == 4
    assert all(g.confirmed for g in old.requirement_groups)
    assert not any(g.confirmed for g in new.requirement_groups)
    assert new.requirement_group("network").title.vi == "Bảo đảm an toàn mạng"
    with pytest.raises(KeyError, match="physical"):
        new.requirement_group("physical")


def test_level_lookup_names_the_rule_set_when_missing() -> None:
    assert nd85().level(3).level == 3
    with pytest.raises(KeyError, match=rf"{ND85}.*level 6"):
        nd85().level(6)


# --- which rule set is in force ---------------------------------------------------------------------------------


def test_ruleset_for_switches_on_the_first_day_of_the_new_law() -> None:
    assert ruleset_for(date(2016, 9, 1)).id == ND85
    assert ruleset_for(date(2026, 6, 30)).id == ND85
    assert ruleset_for(date(2026, 7, 1)).id == LUAT116
    assert ruleset_for(date(2040, 1, 1)).id == LUAT116


def test_ruleset_for_refuses_days_before_the_first_rule_set() -> None:
    with pytest.raises(RulesError, match=r"2016-08-31.*2016-09-01"):
        ruleset_for(date(2016, 8, 31))


def test_ruleset_for_accepts_an_explicit_sequence() -> None:
    only_old = [nd85()]
    assert ruleset_for(date(2020, 1, 1), only_old).id == ND85
    with pytest.raises(RulesError, match="no rule set in force on 2026-07-01"):
        ruleset_for(date(2026, 7, 1), only_old)


def test_ruleset_by_id_names_the_known_ids() -> None:
    with pytest.raises(RulesError, match=rf"unknown rule set 'nd64-2007'.*{ND85}, {LUAT116}"):
        ruleset_by_id("nd64-2007")


# --- re-assessment arithmetic -----------------------------------------------------------------------------------


def test_level_3_is_reassessed_yearly_from_the_last_assessment() -> None:
    system = record(approved_level=3, status=ApprovalStatus.APPROVED, decision_date=date(2023, 3, 1),
                    requirements_assessed=date(2024, 5, 10))
    assert nd85().reassessment_due(system, today=date(2025, 1, 1)) == date(2025, 5, 10)


def test_without_an_assessment_the_period_runs_from_the_decision() -> None:
    system = record(approved_level=4, status=ApprovalStatus.APPROVED, decision_date=date(2024, 2, 29))
    assert nd85().reassessment_due(system, today=date(2024, 6, 1)) == date(2025, 2, 28)


def test_level_5_is_reassessed_every_six_months_clamped_to_month_end() -> None:
    system = record(approved_level=5, status=ApprovalStatus.APPROVED, requirements_assessed=date(2025, 8, 31))
    assert nd85().reassessment_due(system, today=date(2025, 9, 1)) == date(2026, 2, 28)


def test_add_months_handles_month_ends_and_leap_years() -> None:
    assert add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 11, 15), 2) == date(2026, 1, 15)
    assert add_months(date(2025, 3, 31), 12) == date(2026, 3, 31)


def test_level_2_has_no_mandated_reassessment() -> None:
    system = record(approved_level=2, status=ApprovalStatus.APPROVED, decision_date=date(2024, 1, 1))
    assert nd85().reassessment_due(system, today=date(2025, 1, 1)) is None


def test_no_reassessment_without_an_approved_level() -> None:
    system = record(proposed_level=3, status=ApprovalStatus.SUBMITTED, requirements_assessed=date(2024, 1, 1))
    assert nd85().reassessment_due(system, today=date(2025, 1, 1)) is None


def test_an_explicit_next_reassessment_wins() -> None:
    system = record(approved_level=3, status=ApprovalStatus.APPROVED, requirements_assessed=date(2024, 1, 1),
                    next_reassessment=date(2024, 9, 30))
    assert nd85().reassessment_due(system, today=date(2024, 3, 1)) == date(2024, 9, 30)


def test_an_approved_system_with_no_dates_is_due_now() -> None:
    system = record(approved_level=3, status=ApprovalStatus.APPROVED)
    assert luat116().reassessment_due(system, today=date(2026, 9, 1)) == date(2026, 9, 1)


# --- minimum levels, operation, recipients, deadlines -----------------------------------------------------------


def test_admin_procedure_systems_need_level_3_only_under_the_new_law() -> None:
    portal = record(handles_admin_procedures=True, proposed_level=2)
    assert luat116().required_minimum_level(portal) == 3
    assert nd85().required_minimum_level(portal) is None
    assert luat116().required_minimum_level(record(handles_admin_procedures=False)) is None


def test_systems_in_operation_without_an_approved_level_are_flagged() -> None:
    for ruleset in (nd85(), luat116()):
        assert ruleset.operating_without_approval(record(in_operation=True))
        assert ruleset.operating_without_approval(record(in_operation=True, environment=Environment.TEST_REAL_DATA))
        assert not ruleset.operating_without_approval(record(in_operation=False))
        approved = record(in_operation=True, approved_level=2, status=ApprovalStatus.APPROVED)
        assert not ruleset.operating_without_approval(approved)


def test_recipients_move_to_the_police_on_1_march_2025() -> None:
    before = [r.name.vi for r in nd85().recipients_on(date(2025, 2, 28))]
    after = nd85().recipients_on(date(2025, 3, 1))
    assert before == ["Sở Thông tin và Truyền thông tỉnh Đồng Nai",
                      "Bộ Thông tin và Truyền thông (Cục An toàn thông tin)"]
    assert after[0].name.vi == "Công an tỉnh Đồng Nai"
    assert "Bộ Công an" in after[1].name.vi
    assert not any(r.confirmed for r in after)
    assert [r.name.vi for r in nd85().recipients_on(date(2026, 6, 30))] == [r.name.vi for r in after]
    assert "A05" in luat116().recipients_on(date(2026, 7, 1))[1].name.vi


def test_deadlines_passed_use_the_overdue_from_convention() -> None:
    ruleset = luat116()
    assert ruleset.deadlines_passed(date(2026, 12, 31)) == []
    assert [d.id for d in ruleset.deadlines_passed(date(2027, 1, 1))] == ["approval_old_procedure"]
    assert [d.id for d in ruleset.deadlines_passed(date(2027, 1, 2))] == ["approval_old_procedure"]
    assert [d.id for d in ruleset.deadlines_passed(date(2027, 7, 1))] == ["approval_old_procedure", "new_requirements"]
    assert nd85().deadlines_passed(date(2027, 1, 2)) == []


def test_deadlines_apply_to_the_systems_they_name() -> None:
    old_procedure, new_requirements = luat116().deadlines
    running, building = record(in_operation=True), record(in_operation=False)
    assert (old_procedure.applies_to, new_requirements.applies_to) == ("not_in_operation", "all")
    assert not old_procedure.applies(running)
    assert old_procedure.applies(building)
    assert new_requirements.applies(running)
    assert new_requirements.applies(building)


# --- broken rule-set files --------------------------------------------------------------------------------------


def test_a_bad_field_is_named_with_its_file(rules_dir: Path) -> None:
    edit(rules_dir, ND85, lambda d: d["levels"][2].update(reassessment_months="yearly"))
    message = problems_of(rules_dir)
    assert "nd85-2016.yaml: levels[2].reassessment_months:" in message
    assert "luat116" not in message


def test_an_unknown_field_is_refused(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d["deadlines"][0].update(due=d["deadlines"][0].pop("date")))
    message = problems_of(rules_dir)
    assert "luat116-2025.yaml: deadlines[0].due: Extra inputs are not permitted" in message
    assert "luat116-2025.yaml: deadlines[0].date: Field required" in message


def test_overlapping_rule_sets_are_refused(rules_dir: Path) -> None:
    edit(rules_dir, ND85, lambda d: d.update(valid_to=date(2026, 8, 1)))
    message = problems_of(rules_dir)
    assert "nd85-2016.yaml: valid_to: 2026-08-01 overlaps luat116-2025.yaml" in message


def test_an_open_ended_rule_set_followed_by_another_is_an_overlap(rules_dir: Path) -> None:
    edit(rules_dir, ND85, lambda d: d.update(valid_to=None))
    assert "nd85-2016.yaml: valid_to: open-ended, but luat116-2025.yaml starts on 2026-07-01" in problems_of(rules_dir)


def test_a_gap_between_rule_sets_is_refused(rules_dir: Path) -> None:
    edit(rules_dir, ND85, lambda d: d.update(valid_to=date(2026, 6, 1)))
    message = problems_of(rules_dir)
    assert "nd85-2016.yaml: valid_to: 2026-06-01 leaves a gap before luat116-2025.yaml" in message
    assert "no rule set from 2026-06-01 to 2026-06-30" in message


def test_an_unknown_system_record_field_in_when_is_refused(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d["minimum_level_rules"][0].update(when="handles_admin_procedure"))
    message = problems_of(rules_dir)
    assert "luat116-2025.yaml: minimum_level_rules[0].when: 'handles_admin_procedure' is not a yes/no field" in message
    assert "handles_admin_procedures" in message


def test_a_non_boolean_system_record_field_in_when_is_refused(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d["minimum_level_rules"][0].update(when="agency"))
    assert "minimum_level_rules[0].when: 'agency' is not a yes/no field of SystemRecord" in problems_of(rules_dir)


def test_every_level_must_be_defined_once(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d["levels"].pop(3))
    assert "luat116-2025.yaml: levels: must define each level 1–5 exactly once (missing [4])" in problems_of(rules_dir)


def test_recipients_must_cover_the_whole_rule_set(rules_dir: Path) -> None:
    def drop_police(data: dict[str, Any]) -> None:
        data["recipients"] = data["recipients"][:2]

    edit(rules_dir, ND85, drop_police)
    assert "nd85-2016.yaml: recipients: no recipient from 2025-03-01 to the end of the rule set" in problems_of(
        rules_dir)


def test_a_recipient_outside_its_rule_set_is_refused(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d["recipients"][0].update(valid_from=date(2025, 3, 1)))
    assert "luat116-2025.yaml: recipients[0].valid_from: 2025-03-01 is before" in problems_of(rules_dir)


def test_a_recipient_ending_after_its_rule_set_is_refused(rules_dir: Path) -> None:
    edit(rules_dir, ND85, lambda d: d["recipients"][2].update(valid_to=date(2026, 12, 31)))
    message = problems_of(rules_dir)
    assert "nd85-2016.yaml: recipients[2].valid_to: 2026-12-31 is after the rule set's valid_to 2026-07-01" in message


def test_a_rule_set_to_be_confirmed_needs_a_note(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d.update(notes=[]))
    assert "luat116-2025.yaml: notes: a rule set to be confirmed needs a note" in problems_of(rules_dir)


def test_the_id_must_match_the_file_name(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d.update(id="luat116-2026"))
    assert "luat116-2025.yaml: id: 'luat116-2026' does not match the file name" in problems_of(rules_dir)


def test_invalid_yaml_names_file_and_line(rules_dir: Path) -> None:
    (rules_dir / f"{ND85}.yaml").write_text("id: nd85-2016\nlevels: [\n", encoding="utf-8")
    message = problems_of(rules_dir)
    assert message.startswith("nd85-2016.yaml: line ")
    assert "not valid YAML" in message


def test_every_problem_of_every_file_is_reported_at_once(rules_dir: Path) -> None:
    edit(rules_dir, ND85, lambda d: d["levels"][0].update(level=7))
    edit(rules_dir, LUAT116, lambda d: d["requirement_groups"][0].update(kind="physical"))
    with pytest.raises(RulesError) as caught:
        load_rulesets(rules_dir)
    problems = caught.value.problems
    assert any(p.startswith("nd85-2016.yaml: levels[0].level:") for p in problems)
    assert any(p.startswith("luat116-2025.yaml: requirement_groups[0].kind:") for p in problems)


def test_an_empty_or_missing_directory_is_an_error(tmp_path: Path) -> None:
    assert "no rule-set files" in problems_of(tmp_path)
    assert "rule-set directory not found" in problems_of(tmp_path / "absent")


# --- a new decree is a data change ------------------------------------------------------------------------------


def test_a_new_decree_is_a_data_change(rules_dir: Path) -> None:
    edit(rules_dir, LUAT116, lambda d: d.update(valid_to=date(2030, 1, 1)))
    data = yaml.safe_load((rules_dir / f"{LUAT116}.yaml").read_text(encoding="utf-8"))
    data.update(id="nd999-2029", valid_from=date(2030, 1, 1), valid_to=None, deadlines=[])
    data["title"] = {"vi": "Nghị định giả định 999/2029/NĐ-CP", "en": "Hypothetical Decree 999/2029/NĐ-CP"}
    for recipient in data["recipients"]:
        recipient["valid_from"] = date(2030, 1, 1)
    data["levels"][2]["reassessment_months"] = 24
    (rules_dir / "nd999-2029.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                               encoding="utf-8")

    rulesets = load_rulesets(rules_dir)
    assert [r.id for r in rulesets] == [ND85, LUAT116, "nd999-2029"]
    assert ruleset_for(date(2029, 12, 31), rulesets).id == LUAT116
    newest = ruleset_for(date(2030, 6, 1), rulesets)
    assert newest.id == "nd999-2029"
    system = record(approved_level=3, status=ApprovalStatus.APPROVED, requirements_assessed=date(2030, 3, 31))
    assert newest.reassessment_due(system, today=date(2030, 6, 1)) == date(2032, 3, 31)
    assert [r.id for r in load_rulesets()] == [ND85, LUAT116]  # the shipped rule sets are untouched
