from __future__ import annotations

import copy
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
    # a spec names its correction list, a file under its own folder
    (tmp_path / "mappings" / "corrections").mkdir(exist_ok=True)
    for f in (REPO / "include" / "mappings" / "corrections").glob("*.yaml"):
        (tmp_path / "mappings" / "corrections" / f.name).write_bytes(f.read_bytes())
    path = tmp_path / "programme.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(PLAN.read_text(encoding="utf-8"))


class TestLoadPlan:
    def test_demo_plan_is_valid(self):
        plan = load_plan(PLAN)
        assert [s.id for s in plan.systems] == ["vas", "lab", "anestesi", "sjukhus"]
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
        assert [s.id for s in plan.systems] == ["vas", "sjukhus"]
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

    def test_duplicate_system_id_rejects_both_entries(self, tmp_path, raw):
        impostor = copy.deepcopy(raw["systems"][0]) | {"supplier": "Impostor AB"}
        raw["systems"].append(impostor)
        plan = load_plan(_write(tmp_path, raw))
        assert "vas" not in [s.id for s in plan.systems]
        assert [str(p).split(": ", 2)[-1] for p in plan.problems] == [
            "id: the system id appears 2 times; no entry with it is built"
        ] * 2


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
        assert [s.id for s in plan.systems] == ["vas", "anestesi", "sjukhus"]  # no DAG for lab, the others run
        (problem,) = plan.problems
        assert problem.system == "lab" and problem.field == "signoff"
        assert f"the information owner and the archivist are the same user '{archivist}'" in str(problem)
        assert "system 'lab': signoff:" in str(problem)


class TestFailsSafe:
    """A plan or mapping that is broken, hostile or careless builds nothing it should not, and says why."""

    def test_an_id_with_a_trailing_newline_is_refused(self, tmp_path, raw):
        raw["systems"][1]["id"] = "lab\n"
        plan = load_plan(_write(tmp_path, raw))
        assert [s.id for s in plan.systems] == ["vas", "anestesi", "sjukhus"]
        assert "must be lower case letters" in str(plan.problems[0])

    def test_a_yaml_alias_bomb_is_refused_quickly(self, tmp_path):
        lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
        path = tmp_path / "programme.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(PlanError, match=r"line 2: YAML aliases \(\*a0\) are not allowed in the plan"):
            load_plan(path)

    def test_a_plan_larger_than_its_bound_is_refused(self, tmp_path):
        path = tmp_path / "programme.yaml"
        path.write_text("# " + "x" * (1 << 20) + "\n", encoding="utf-8")
        with pytest.raises(PlanError, match="larger than 1048576 bytes"):
            load_plan(path)

    @pytest.mark.parametrize(
        ("mapping", "message"),
        [
            ("/etc/passwd", "must name a file under"),
            ("../outside.yaml", "must name a file under"),
            ("mappings/zero.yaml", "must name a file under"),
            ("mappings/fifo.yaml", "is not a regular file"),
        ],
        ids=["absolute-path", "outside-mappings", "symlink-to-a-device", "fifo"],
    )
    def test_mapping_must_be_a_regular_file_under_mappings(self, tmp_path, raw, mapping, message):
        import os

        path = _write(tmp_path, raw)
        (tmp_path / "outside.yaml").write_bytes((tmp_path / "mappings" / "lab.yaml").read_bytes())
        os.symlink("/dev/zero", tmp_path / "mappings" / "zero.yaml")
        os.mkfifo(tmp_path / "mappings" / "fifo.yaml")
        raw["systems"][1]["mapping"] = mapping
        plan = load_plan(_write(tmp_path, raw))
        assert "lab" not in [s.id for s in plan.systems]
        (problem,) = plan.problems
        assert problem.field == "mapping" and message in problem.message
        assert path.exists()

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("timezone", "Europe/Stokholm", "'Europe/Stokholm' is not a known time zone"),
            ("id_reference_date", "2025-13-01", "'2025-13-01' is not a date"),
        ],
        ids=["time-zone", "reference-date"],
    )
    def test_mapping_fields_are_checked_at_load(self, tmp_path, raw, field, value, message):
        _write(tmp_path, raw)
        spec = yaml.safe_load((tmp_path / "mappings" / "lab.yaml").read_text(encoding="utf-8"))
        spec[field] = value
        (tmp_path / "mappings" / "lab.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
        plan = load_plan(tmp_path / "programme.yaml")
        (problem,) = plan.problems
        assert problem.system == "lab" and message in problem.message

    def test_a_broken_region_still_builds_the_watchdog_naming_it(self, tmp_path, raw, monkeypatch):
        import datetime as dt

        from airflow.dag_processing.dagbag import DagBag

        from decommission.errors import DecommissionError
        from decommission.plan.alerts import check_programme
        from decommission.plan.programme import load_plan_or_problem

        raw["region"]["nmae"] = raw["region"].pop("name")
        path = _write(tmp_path, raw)
        plan = load_plan_or_problem(path)
        assert plan.systems == () and "region.name: Field required" in str(plan.problems[0])
        with pytest.raises(DecommissionError, match="1 plan problem"):
            check_programme(plan, dt.date(2025, 6, 1), lambda *_: 0)
        monkeypatch.setenv("DECOMMISSION_PLAN", str(path))
        bag = DagBag(dag_folder=str(REPO / "dags"))
        assert bag.import_errors == {} and sorted(bag.dag_ids) == ["decommission_watchdog"]
