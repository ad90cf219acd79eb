"""Nothing left behind unnoticed: a final delivery FAILs on a column no one classified or a table the cut-off empties.

One ``dag.test()`` run of the VAS demo system's final delivery (the test approval overridden and
recorded, so the run needs no earlier milestones), against a source changed the way a real one
drifts: a column added without a mapping or an exclusion, and every row of a table dated after
the delivery's cut-off.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from tests.integration.test_dag_e2e import _wire_vas


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


def test_final_delivery_fails_naming_unclassified_column_and_emptied_table(tmp_path, monkeypatch, r7sim, airflow_db):
    dag, _ = _wire_vas(tmp_path, monkeypatch, patients=20)
    with sqlite3.connect(tmp_path / "vas.sqlite") as db:
        db.execute("ALTER TABLE diagnos ADD COLUMN sidoangivelse TEXT")
        db.execute("UPDATE labsvar SET provtid = '2025-06-01 10:00:00'")
        lab_rows = db.execute("SELECT COUNT(*) FROM labsvar").fetchone()[0]
    assert lab_rows

    run = dag.test(
        logical_date=dt.datetime(2025, 10, 1, tzinfo=dt.UTC),
        run_conf={"milestone": "final_delivery", "override_test_approval": "test: no earlier milestones in this test"},
    )

    assert str(run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["reconcile"] == "success" and states["report"] == "failed"
    assert states["signoff_information_owner"] in ("upstream_failed", "skipped")
    out = tmp_path / "out" / "vas"
    result = json.loads((out / "reconciliation" / "final_delivery" / "result.json").read_text())
    assert result["verdict"] == "FAIL"
    assert "column vas.diagnos.sidoangivelse is in no mapping and no exclusion" in result["reasons"]
    assert (
        f"table vas.labsvar has {lab_rows} rows in the source but none on or before the cut-off 2024-09-30"
        in result["reasons"]
    )
    coverage = result["coverage"]
    assert coverage["columns_by_class"]["unclassified"] == 1
    labsvar = next(t for t in coverage["tables"] if t["table"] == "labsvar")
    assert (labsvar["rows"], labsvar["rows_in_cutoff"], labsvar["rows_after_cutoff"]) == (lab_rows, 0, lab_rows)
    html = (out / "reconciliation" / "final_delivery" / "report.html").read_text(encoding="utf-8")
    assert "Täckning av källdatabasen" in html and "OKLASSAD" in html
    assert result["hash_key"]["demo"] and "DEMONSTRATIONSNYCKEL" in html
    assert not (out / "evidence" / "contract-exit.json").exists()
