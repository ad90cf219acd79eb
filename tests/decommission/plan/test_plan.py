from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from decommission.errors import PlanError
from decommission.plan.programme import Milestone, load_plan

REPO = Path(__file__).resolve().parents[3]
PLAN = REPO / "include" / "programme.yaml"


def _write(tmp_path: Path, data: dict) -> Path:
    (tmp_path / "mappings").mkdir(exist_ok=True)
    for f in (REPO / "include" / "mappings").glob("*.yaml"):
        (tmp_path / "mappings" / f.name).write_bytes(f.read_bytes())
    path = tmp_path / "programme.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(PLAN.read_text(encoding="utf-8"))


class TestLoadPlan:
    def test_demo_plan_is_valid(self):
        plan = load_plan(PLAN)
        assert [s.id for s in plan.systems] == ["vas", "lab", "anestesi"]
        assert plan.problems == ()
        vas = plan.system("vas")
        assert vas.milestone_on(vas.milestones.test_delivery) is Milestone.TEST_DELIVERY
        assert Milestone.TEST_DELIVERY.record_status == "TEST"
        assert Milestone.FINAL_DELIVERY.record_status == "NEW"

    def test_broken_entry_is_reported_and_others_still_load(self, tmp_path, raw):
        raw["systems"][1]["contract"]["notice_months"] = "twelve"
        del raw["systems"][1]["agreement"]["cut_off"]
        raw["systems"][2]["milestones"]["final_delivery"] = "2025-01-02"
        plan = load_plan(_write(tmp_path, raw))
        assert [s.id for s in plan.systems] == ["vas"]
        messages = [str(p) for p in plan.problems]
        assert any("system 'lab': contract.notice_months: Input should be a valid integer" in m for m in messages)
        assert any("system 'lab': agreement.cut_off: Field required" in m for m in messages)
        assert any("system 'anestesi'" in m and "final_delivery (2025-01-02) must come after" in m for m in messages)
        assert all(m.startswith(str(tmp_path / "programme.yaml")) for m in messages)

    def test_mapping_naming_unknown_field_drops_the_system(self, tmp_path, raw):
        path = _write(tmp_path, raw)
        spec = yaml.safe_load((tmp_path / "mappings" / "lab.yaml").read_text(encoding="utf-8"))
        spec["tables"]["prov"]["fields"]["colour"] = {"column": "npu"}
        (tmp_path / "mappings" / "lab.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        plan = load_plan(path)
        assert "lab" not in [s.id for s in plan.systems]
        (problem,) = plan.problems
        assert problem.system == "lab" and problem.field == "mapping"
        assert "tables.prov" in problem.message and "colour" in problem.message

    @pytest.mark.parametrize(
        ("text", "match"),
        [("systems: [1, 2", "not valid YAML"), ("- a list", "must be a mapping"), ("region: {}\n", "region")],
        ids=["bad-yaml", "not-a-mapping", "bad-region"],
    )
    def test_unusable_file_raises(self, tmp_path, text, match):
        path = tmp_path / "programme.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PlanError, match=match):
            load_plan(path)

    def test_duplicate_system_id(self, tmp_path, raw):
        raw["systems"].append(dict(raw["systems"][0]))
        plan = load_plan(_write(tmp_path, raw))
        assert [str(p).split(": ", 2)[-1] for p in plan.problems] == ["id: duplicate system id"]


class TestEvidenceSettings:
    def test_waivers_access_log_and_language_are_read(self, tmp_path, raw):
        raw["systems"][0]["waivers"] = [
            {"check": "source = extracted", "scope": "patient", "rows": 1, "by": "Karin", "reason": "test patient"}
        ]
        raw["systems"][0]["report_language"] = "en"
        vas = load_plan(_write(tmp_path, raw)).system("vas")
        assert vas.waivers[0].by == "Karin" and vas.waivers[0].rows == 1
        assert vas.report_language == "en" and vas.access_log.disposition == "archived"

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"access_log": {"disposition": "deletion_decision"}}, "a deletion decision needs its reference"),
            ({"waivers": [{"check": "x", "scope": "y", "rows": 1, "by": "", "reason": "r"}]}, "waivers.0.by"),
            ({"report_language": "de"}, "report_language"),
        ],
        ids=["deletion-without-reference", "waiver-without-who", "language"],
    )
    def test_incomplete_evidence_settings_are_plan_problems(self, tmp_path, raw, change, message):
        raw["systems"][0].update(change)
        plan = load_plan(_write(tmp_path, raw))
        assert "vas" not in [s.id for s in plan.systems]
        assert any(message in str(p) for p in plan.problems), [str(p) for p in plan.problems]


class TestSignoffRespondents:
    @pytest.mark.parametrize("archivist", ["verksamhetschef", " Verksamhetschef"], ids=["same", "same-but-case"])
    def test_one_person_in_both_roles_is_a_plan_problem(self, tmp_path, raw, archivist):
        raw["systems"][1]["signoff"]["archivist"] = {"id": archivist, "name": "Karin again"}
        plan = load_plan(_write(tmp_path, raw))
        assert [s.id for s in plan.systems] == ["vas", "anestesi"]  # no DAG for lab, the others still run
        (problem,) = plan.problems
        assert problem.system == "lab" and problem.field == "signoff"
        assert f"the information owner and the archivist are the same user '{archivist}'" in str(problem)
        assert "system 'lab': signoff:" in str(problem)
