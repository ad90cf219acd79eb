"""The DAG delivers through the SFTP drop folder when the archive connection is of type sftp.

A real SSH/SFTP server process and the r7sim drop-folder stand-in; the DAG, its stages and the
receipt trigger are unchanged: only the connection differs.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.integration.test_dag_e2e import _run, _wire_vas
from tests.sftp_server import DropFolderServers

pytest.importorskip("asyncssh", reason="the SFTP tests need asyncssh (a dependency of the SFTP provider)")


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


def test_test_delivery_through_the_sftp_drop_folder(tmp_path, monkeypatch, airflow_db):
    with DropFolderServers(tmp_path / "drop") as drop:
        dag, _ = _wire_vas(tmp_path, monkeypatch, patients=20)
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", drop.connection_uri())

        run = _run(dag, dt.date(2025, 3, 3), "test_delivery")

        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert str(run.state) == "success", states
        receipts = sorted((tmp_path / "out" / "vas" / "receipts").glob("*.ingest.json"))
        assert receipts and {json.loads(p.read_text())["status"] for p in receipts} == {"accepted"}
        held = sorted(p.name for p in (drop.root / "holdings").iterdir())
        assert held == sorted(p.name.replace(".ingest.json", ".tar") for p in receipts)
        assert sorted(p.name for p in (drop.root / "inbox").iterdir()) == []  # every drop taken, none half-written
        result = json.loads((tmp_path / "out" / "vas" / "reconciliation" / "test_delivery" / "result.json").read_text())
        assert result["sample"]["checked"] > 0 and result["sample"]["mismatches"] == []  # read back over SFTP
        assert result["verdict"] == "PASS", result["reasons"]
