"""Repository policy over every DAG: it imports, and has an owner, tags, docs and a milestone timetable."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())


def test_one_dag_per_valid_system_plus_the_watchdog(dagbag):
    from decommission.plan.programme import load_plan

    plan = load_plan(REPO / "include" / "programme.yaml")
    assert set(dagbag.dags) == {f"decommission_{s.id}" for s in plan.systems} | {
        "decommission_watchdog",
        "decommission_board_report",
    }


def _dag_ids():
    from decommission.plan.programme import load_plan

    plan = load_plan(REPO / "include" / "programme.yaml")
    return [f"decommission_{s.id}" for s in plan.systems] + ["decommission_watchdog", "decommission_board_report"]


@pytest.mark.parametrize("dag_id", _dag_ids())
def test_policy(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.owner and dag.owner != "airflow", f"{dag_id}: set an owner in the plan's region.owner"
    assert "decommission" in dag.tags, f"{dag_id}: tag it 'decommission'"
    assert dag.doc_md, f"{dag_id}: give it doc_md"


@pytest.mark.parametrize(
    "dag_id", [d for d in _dag_ids() if d not in ("decommission_watchdog", "decommission_board_report")]
)
def test_system_dag_shape(dagbag, dag_id):
    from decommission.plan.timetable import MilestoneTimetable

    dag = dagbag.dags[dag_id]
    assert isinstance(dag.timetable, MilestoneTimetable), f"{dag_id}: schedule it on its milestones"
    assert dag.catchup, f"{dag_id}: catchup must be on, so a missed milestone still runs"
    assert dag.deadline, f"{dag_id}: needs a deadline alert"
    expected = [
        "preflight",
        "plan_partitions",
        "extract",
        "map_partition",
        "package",
        "validate",
        "submit",
        "await_ingest",
        "reconcile_partition",
        "reconcile",
        "report",
        "remove_staging",
        "is_final_delivery",
        "signoff_information_owner",
        "signoff_archivist",
        "evidence_pack",
        "contract_exit",
    ]
    assert sorted(dag.task_ids) == sorted(expected)
    # a rejected package fails await_ingest, but the report must still be written (and show it)
    assert dag.get_task("reconcile").trigger_rule == "all_done", f"{dag_id}.reconcile: trigger_rule all_done"
    assert dag.get_task("report").trigger_rule == "all_success", f"{dag_id}.report: only after a reconcile"
    # nothing leaves unvalidated: submit takes the packages validate passed on
    assert dag.get_task("validate").upstream_task_ids == {"package"}, f"{dag_id}.validate: after package"
    assert dag.get_task("submit").upstream_task_ids == {"validate"}, f"{dag_id}.submit: only validated packages"
    for task_id in ("signoff_information_owner", "signoff_archivist"):
        task = dag.get_task(task_id)
        assert task.assigned_users and task.ignore_downstream_trigger_rules, f"{dag_id}.{task_id}: reject stops all"
    upstream = dag.get_task("contract_exit").upstream_task_ids
    assert {"signoff_archivist", "evidence_pack", "report"} <= upstream, f"{dag_id}.contract_exit: {upstream}"
    system = dag_id.removeprefix("decommission_")
    for task_id in ("plan_partitions", "extract", "reconcile_partition"):
        assert dag.get_task(task_id).pool == f"legacy_{system}", f"{dag_id}.{task_id}: use the source pool"
    for task_id in ("preflight", "extract", "submit", "reconcile"):
        task = dag.get_task(task_id)
        assert task.retries >= 3 and task.retry_exponential_backoff, f"{dag_id}.{task_id}: retry with backoff"


def test_broken_plan_builds_only_valid_dags(tmp_path, monkeypatch):
    """A broken entry builds no DAG, the others still load and the file has no import error."""
    import shutil

    import yaml
    from airflow.dag_processing.dagbag import DagBag

    shutil.copytree(REPO / "include" / "mappings", tmp_path / "mappings")
    raw = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
    raw["systems"][0]["contract"]["annual_cost_sek"] = -1
    (tmp_path / "programme.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("DECOMMISSION_PLAN", str(tmp_path / "programme.yaml"))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dags) == {
        "decommission_lab",
        "decommission_anestesi",
        "decommission_sjukhus",
        "decommission_watchdog",
        "decommission_board_report",
    }


@pytest.mark.parametrize("dag_id", _dag_ids()[:-2])
def test_operators_see_the_systems_name_and_choose_the_milestone(dagbag, dag_id):
    from decommission.plan.programme import load_plan

    system = load_plan(REPO / "include" / "programme.yaml").system(dag_id.removeprefix("decommission_"))
    dag = dagbag.dags[dag_id]
    assert dag.dag_display_name == system.name, f"{dag_id}: show the system's name"
    param = dag.params.get_param("milestone")
    assert param.schema["enum"] == ["test_delivery", "production_delivery", "final_delivery"]
    assert param.schema["values_display"]["final_delivery"] == "Slutleverans (final_delivery)"
    assert param.value in param.schema["enum"], f"{dag_id}: a schedule needs a default within the choice"
