"""The scaffold on every demo source: its draft loads, builds a DAG, and carries a test delivery to valid packages.

Each demo system is built by ``demo.generate`` into a SQLite file and into PostgreSQL (read through a
SELECT-only login, as the README asks), scaffolded with ``python -m decommission scaffold`` as the
onboarding guide writes it, and its draft used as the system's mapping in a one-system plan: the DAG
file builds the system's DAG from it, and the test delivery's stage functions (plan_partitions, then
extract, map, package and validate of every partition) reach valid packages. A new demo system is one
entry of :data:`SOURCES`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from decommission.__main__ import main

REPO = Path(__file__).resolve().parents[2]
#: demo system -> the schemas its PostgreSQL build holds ("{s}": the schema the test gives ``build``); the first is
#: the source's own. A system of several schemas names them all, e.g. ("{s}", "{s}_lab"); SQLite has one.
SOURCES: dict[str, tuple[str, ...]] = {"vas": ("{s}",), "lab": ("{s}",), "anestesi": ("{s}",)}
PATIENTS = 30
LOGICAL_DATE = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def _plan(work: Path, system: str, conn_id: str, schema: str, draft: Path) -> Path:
    """A one-system plan: the demo plan's entry for ``system`` (the VAS entry for a system it lacks), on the draft."""
    raw = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
    entry = next((s for s in raw["systems"] if s["id"] == system), None)
    if entry is None:
        entry = {**next(s for s in raw["systems"] if s["id"] == "vas"), "id": system, "name": f"{system} (scaffold)"}
    entry = {k: v for k, v in entry.items() if k not in ("exclusions", "waivers")}  # they name the real mapping's
    entry["source"] = {"conn_id": conn_id, "schema": schema, "max_connections": 1}
    entry["mapping"] = f"mappings/{draft.name}"
    raw["systems"] = [entry]
    path = work / "programme.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _source(backend: str, system: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    """Build the demo source; return the connection's JSON and the schemas to scaffold."""
    from decommission.embedded import source_connection
    from demo.generate import build

    if backend == "sqlite":
        target = tmp_path / f"{system}.sqlite"
        build(system, str(target), seed=5, patients=PATIENTS)
        return source_connection(str(target), None), []
    from demo.readonly import create_reader, drop_reader

    dsn = request.getfixturevalue("pg_dsn")
    schema = f"scaffold_{system}"
    build(system, dsn, seed=5, patients=PATIENTS, schema=schema)
    schemas = [s.format(s=schema) for s in SOURCES[system]]
    role = f"scaffold_{system}_reader"
    url = ""
    for s in schemas:  # one SELECT-only login for every schema of the system
        url = create_reader(dsn, s, name=role)
    request.addfinalizer(lambda: drop_reader(dsn, schemas[0], name=role))
    return source_connection(url, schemas[0]), schemas


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("system", sorted(SOURCES))
def test_scaffolded_draft_carries_a_test_delivery_to_valid_packages(
    system, backend, tmp_path, monkeypatch, request, capsys
):
    from airflow.dag_processing.dagbag import DagBag

    from decommission.plan.mapping_spec import load_spec
    from decommission.plan.programme import Milestone, load_plan
    from decommission.plan.run import Run
    from decommission.stages import extract, map_stage, package_stage, plan_partitions, validate_stage

    conn, schemas = _source(backend, system, tmp_path, request)
    conn_id = f"legacy_{system}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DECOMMISSION_STAGING", (tmp_path / "staging").as_uri())
    include = tmp_path / "include"
    draft = include / "mappings" / f"{system}.yaml"
    draft.parent.mkdir(parents=True)

    args = ["scaffold", "--conn-id", conn_id, "--out", str(draft), "--format", "json"]
    assert main([*args, *(a for s in schemas for a in ("--schema", s))]) == 0
    inventory = json.loads(capsys.readouterr().out)
    spec = load_spec(draft)
    assert inventory["totals"]["tables_by_role"]["undecided"] == 0, inventory["tables"]
    assert inventory["totals"]["rows"] > 0 and spec.patient_table == inventory["patient_table"]
    # every table and column of the source is in the draft: mapped, read, preserved, or a reference table
    for table in inventory["tables"]:
        assert table["role"] in ("patient", "entity", "reference"), table
        assert table["column_classes"]["undecided"] == 0, table

    plan_path = _plan(include, system, conn_id, schemas[0] if schemas else system, draft)
    monkeypatch.setenv("DECOMMISSION_PLAN", str(plan_path))
    plan = load_plan(plan_path)
    assert not plan.problems, plan.problems
    dagbag = DagBag(dag_folder=str(REPO / "dags"))
    assert dagbag.import_errors == {}, dagbag.import_errors
    assert f"decommission_{system}" in dagbag.dags

    run = Run(plan, plan.system(system), Milestone.TEST_DELIVERY, "scaffold-test", LOGICAL_DATE)
    partitions = plan_partitions(run)
    assert partitions
    extracted = mapped = 0
    for partition in partitions:
        staged = extract(run, partition)
        result = map_stage(run, staged)
        extracted += sum(result["extracted"].values())
        mapped += sum(result["mapped"].values())
        package = package_stage(run, result)
        assert validate_stage(run, package) == package
        report = json.loads((tmp_path / "home" / system / "validation" / f"{package['package_id']}.json").read_text())
        assert report["ok"] is True, report["problems"][:5]
    assert extracted > 0 and mapped > 0
