"""End to end through ``dag.test()``: a demo system from its test delivery to its contract exit.

The reconciliation figures must equal, exactly, the dirt the generator injected.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from demo.generate import build

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


class Responder(threading.Thread):
    """Answers waiting sign-off tasks over the REST API, recording the HTTP status of each answer."""

    def __init__(self, answers: dict[str, tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.answers = answers  # task_id -> (user, option)
        self.statuses: list[tuple[str, str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        from demo.signoff import answer, waiting

        client = TestClient(create_app(apps="core"))
        done: set[tuple[str, str]] = set()
        while not self.stop.is_set():
            for dag_id, run_id, task_id in waiting():
                if (run_id, task_id) in done:
                    continue
                if task_id == "signoff_information_owner":  # someone who is not assigned is refused
                    refused = answer(
                        client, dag_id=dag_id, run_id=run_id, task_id=task_id, username="operator", password="user"
                    )
                    self.statuses.append(("operator", task_id, refused.status_code))
                user, option = self.answers[task_id]
                response = answer(
                    client, dag_id=dag_id, run_id=run_id, task_id=task_id, username=user, password="user", option=option
                )
                self.statuses.append((user, task_id, response.status_code))
                done.add((run_id, task_id))
            time.sleep(0.3)


def _wire_vas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patients: int) -> tuple:
    """Build the VAS demo source (SQLite), wire its connections, return its DAG and dirt report."""
    from airflow.dag_processing.dagbag import DagBag

    from decommission.embedded import source_connection

    report = build("vas", str(tmp_path / "vas.sqlite"), seed=11, patients=patients)
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_VAS", source_connection(str(tmp_path / "vas.sqlite"), "vas"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_vas")
    dag.deadline = None  # Airflow 3.3.2: dag.test() crashes on deadline alerts (see demo/run.py)
    return dag, report


@pytest.fixture
def demo_system(tmp_path, monkeypatch, r7sim, airflow_db):
    """The VAS demo system against a well-behaved r7sim, outputs under tmp_path."""
    dag, report = _wire_vas(tmp_path, monkeypatch, patients=40)
    return dag, report, tmp_path / "out" / "vas"


def _run(dag, day: dt.date, milestone: str):
    return dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), run_conf={"milestone": milestone})


def test_vas_from_test_delivery_to_contract_exit(demo_system):
    from decommission.ledger import Ledger

    dag, dirt, out = demo_system
    responder = Responder(
        {
            "signoff_information_owner": ("verksamhetschef", "Approve"),
            "signoff_archivist": ("regionarkivarie", "Approve"),
        }
    )
    responder.start()
    try:
        test_run = _run(dag, dt.date(2025, 3, 3), "test_delivery")
        assert str(test_run.state) == "success"
        states = {ti.task_id: str(ti.state) for ti in test_run.get_task_instances()}
        assert states["signoff_information_owner"] == "skipped" and states["contract_exit"] == "skipped"
        test_packages = sorted(p.name for p in (out / "packages").iterdir() if p.is_dir())
        assert test_packages and all(name.endswith("-test") for name in test_packages)
        mets = (out / "packages" / test_packages[0] / "METS.xml").read_text(encoding="utf-8")
        assert 'RECORDSTATUS="TEST"' in mets

        final = _run(dag, dt.date(2025, 9, 1), "final_delivery")
    finally:
        responder.stop.set()
    assert str(final.state) == "success"
    assert ("operator", "signoff_information_owner", 403) in responder.statuses
    assert ("verksamhetschef", "signoff_information_owner", 200) in responder.statuses
    assert ("regionarkivarie", "signoff_archivist", 200) in responder.statuses

    result = json.loads((out / "reconciliation" / "final_delivery" / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "PASS", result["reasons"]
    quarantined = {t: row["quarantined"] for t, row in result["tables"].items() if row["quarantined"]}
    assert quarantined == dirt["expected_quarantine"]
    for table, row in result["tables"].items():
        assert row["source"] == dirt["tables"][table] == row["extracted"] == row["mapped"] + row["quarantined_total"]
    for entity, row in result["entities"].items():
        assert row["mapped"] == row["packaged"] == row["accepted"], entity
    assert result["sample"]["checked"] == 10 and result["sample"]["mismatches"] == []

    record = json.loads((out / "evidence" / "contract-exit.json").read_text(encoding="utf-8"))
    assert record["status"] == "decommissioned"
    assert [(a["role"], a["by"]) for a in record["approvals"]] == [
        ("information_owner", "verksamhetschef"),
        ("archivist", "regionarkivarie"),
    ]
    assert record["contract_end_date"] == "2026-09-01"  # signed 2025-09-01 + 12 months' notice
    # no identifier in clear in anything written for people or machines outside the package
    with sqlite3.connect(out.parent.parent / "vas.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT personnr FROM patient")]
    outputs = [
        out / "reconciliation" / "final_delivery" / "report.html",
        out / "evidence" / "contract-exit.json",
        *(out / "receipts").iterdir(),
        *(out / "validation").iterdir(),
    ]
    texts = [p.read_text(encoding="utf-8") for p in outputs]
    assert not [i for i in ids if any(i in t or f"{i[:8]}-{i[8:]}" in t for t in texts)]

    ledger = Ledger.sqlite(out.parent.parent / "ledger.sqlite")
    assert ledger.verify() is None
    kinds = [e.kind for e in ledger.entries(system_id="vas")]
    assert kinds[-1] == "contract_exit" and "reconciliation" in kinds and "ingest_receipt" in kinds


def test_rejected_package_fails_the_run_with_the_archives_reason(tmp_path, monkeypatch, r7sim_factory, airflow_db):
    """The archive rejects one package: await_ingest fails, the receipt with its reasons is kept."""
    rejected = "vas-LO-2025-VAS-01-p0001-test"
    server = r7sim_factory.start("--reject", rejected)
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    dag, _ = _wire_vas(tmp_path, monkeypatch, patients=20)
    run = _run(dag, dt.date(2025, 3, 3), "test_delivery")
    assert str(run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["await_ingest"] == "failed" and states["reconcile"] == "upstream_failed"
    receipt = json.loads((tmp_path / "out" / "vas" / "receipts" / f"{rejected}.ingest.json").read_text())
    assert receipt["status"] == "rejected" and receipt["reasons"]
