"""Two source tables feeding one entity, through a real ``dag.test()`` run: fingerprints per source table.

The VAS demo system with a second diagnosis table (``biddiagnos``): its ids repeat the main
diagnosis table's (a key prefix keeps the records apart) and it sets the diagnosis code by lookup,
while ``diagnos`` copies its code. Each table's records are compared over that table's own carried
fields, so the delivery reconciles PASS; a real difference in the source afterwards still FAILs,
naming the table.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3

import pytest

from tests.integration.test_dag_e2e import REPO

SECOND_TABLE = """\
  biddiagnos:
    entity: diagnosis
    key: bd_id
    key_prefix: "bd-"
    patient_key: pat_id
    cutoff_column: tid
    fields:
      patient_key: {column: pat_id}
      case_id: {column: kontakt_id}
      code: {column: typ, lookup: {H: "Z99.9"}}
      time: {column: tid, transform: local_time}
"""


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def two_tables(tmp_path, monkeypatch, r7sim, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from decommission.embedded import source_connection
    from demo.generate import build

    include = tmp_path / "include"
    shutil.copytree(REPO / "include", include)
    spec = include / "mappings" / "vas.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("tables:\n", "tables:\n" + SECOND_TABLE, 1), "utf-8")
    build("vas", str(tmp_path / "vas.sqlite"), seed=11, patients=20)
    with sqlite3.connect(tmp_path / "vas.sqlite") as db:
        db.execute("CREATE TABLE biddiagnos (bd_id INTEGER, pat_id INTEGER, kontakt_id INTEGER, typ TEXT, tid TEXT)")
        # the same ids as diagnos: only the key prefix keeps the records of the two tables apart
        db.execute("INSERT INTO biddiagnos SELECT diag_id, pat_id, kontakt_id, 'H', diagnos_tid FROM diagnos")
        rows = db.execute("SELECT COUNT(*) FROM biddiagnos WHERE tid <= '2024-09-30 23:59:59'").fetchone()[0]
    monkeypatch.setenv("DECOMMISSION_PLAN", str(include / "programme.yaml"))
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_VAS", source_connection(str(tmp_path / "vas.sqlite"), "vas"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_vas")
    dag.deadline = None  # Airflow 3.3.2: dag.test() crashes on deadline alerts (see demo/run.py)
    return dag, tmp_path, rows


def test_two_tables_into_one_entity_reconcile_per_table_and_a_real_difference_fails(two_tables):
    from decommission.plan.programme import Milestone, load_plan
    from decommission.plan.run import Run
    from decommission.reconcile.breakdown import reconcile_breakdown
    from decommission.reconcile.closeout import breakdown_reasons

    dag, tmp_path, rows = two_tables
    assert rows > 0
    run = dag.test(logical_date=dt.datetime(2025, 3, 3, tzinfo=dt.UTC), run_conf={"milestone": "test_delivery"})
    assert str(run.state) == "success"
    out = tmp_path / "out" / "vas"
    result = json.loads((out / "reconciliation" / "test_delivery" / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "PASS", result["reasons"]
    assert result["tables"]["biddiagnos"]["archived"] == rows
    fingerprints = result["breakdown"]["fingerprints"]
    # each table over its own carried fields (and converted times): the lookup's code is not one of biddiagnos's
    assert fingerprints["biddiagnos"]["fields"] == ["case_id", "time"]
    assert "code" in fingerprints["diagnos"]["fields"]
    assert fingerprints["biddiagnos"]["rows"] == fingerprints["biddiagnos"]["package_rows"] == rows
    assert all(f["source"] == f["package"] for f in fingerprints.values()), fingerprints
    assert result["breakdown"]["id_collisions"] == []
    # the packages' digests were read by the validation gate (which table made which id: the partition's rows)
    packages = len(result["package_manifest"])
    assert result["breakdown"]["package_digests"] == {"from_validation": packages, "read_back": 0}

    # the source changes after the delivery: one carried value of biddiagnos is no longer what was archived
    with sqlite3.connect(tmp_path / "vas.sqlite") as db:
        db.execute(
            "UPDATE biddiagnos SET kontakt_id = kontakt_id + 100000 WHERE bd_id = (SELECT MIN(bd_id) FROM biddiagnos)"
        )
    plan = load_plan(tmp_path / "include" / "programme.yaml")
    again = Run(plan, plan.system("vas"), Milestone.TEST_DELIVERY, run.run_id, run.logical_date)
    # the run removed its staging once the archive held the packages verified: extract again
    from decommission.stages import extract, map_stage, plan_partitions

    partitions = sorted(map_stage(again, extract(again, p))["partition"]["id"] for p in plan_partitions(again))
    packages = sorted(p.stem for p in (out / "packages").glob("*.tar"))
    reasons = breakdown_reasons(reconcile_breakdown(again, partitions, packages))
    assert len(reasons) == 1 and reasons[0].startswith("content fingerprint of table biddiagnos (diagnosis"), reasons
    # no partition given (say every one failed before its mapping): the source rows of the key ranges no
    # partition covers are still read, and every patient shows as a difference
    nothing = reconcile_breakdown(again, [], [])
    assert nothing["partition_tallies"] == {"kept": 0, "counted_here": 0, "gaps": 1}
    source_rows = sum(t["source"] for t in result["tables"].values())
    assert sum(y["source"] for y in nothing["years"].values()) == source_rows
    assert sum(y["extracted"] for y in nothing["years"].values()) == 0
    assert len(nothing["patients"]["differing"]) == nothing["patients"]["count"] > 0
