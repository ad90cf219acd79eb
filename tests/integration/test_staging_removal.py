"""Staging removed once the archive holds the package, verified; files readable by the service only (issue 17, item 7).

The anaesthesia demo system runs its test delivery with ``dag.test()`` against r7sim: after the
report, the raw and mapped rows of every partition whose package the archive accepted and the
reconciliation read back whole are removed, each removal a ledger entry. A second removal finds
nothing and records nothing; a task cleared after the removal extracts again; a rerun of the
milestone goes through. Nothing the run wrote can be read by others.
"""

from __future__ import annotations

import datetime as dt
import json
import stat
import tempfile
from pathlib import Path

import pytest

from demo.generate import build

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def anestesi(tmp_path, monkeypatch, r7sim, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from decommission.embedded import source_connection

    build("anestesi", str(tmp_path / "anestesi.sqlite"), seed=5, patients=30)
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_ANESTESI", source_connection(str(tmp_path / "anestesi.sqlite"), None))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_anestesi")
    dag.deadline = None  # Airflow 3.3.2: dag.test() crashes on deadline alerts (see demo/run.py)
    return dag, tmp_path / "out"


def _run(dag, day: dt.date):
    run = dag.test(
        logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), run_conf={"milestone": "test_delivery"}
    )
    return run, {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _partitions(out: Path, stage: str) -> list[str]:
    folder = out / "staging" / "anestesi" / "test_delivery" / stage
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def test_staging_goes_once_the_archive_holds_the_package_verified(anestesi):
    from decommission.ledger import programme_ledger
    from decommission.plan.programme import load_plan
    from decommission.settings import plan_path
    from decommission.stages import map_stage, reconcile_partition, remove_staging, restore_staging, start_run

    dag, out = anestesi
    dag_run, states = _run(dag, dt.date(2025, 5, 5))
    assert str(dag_run.state) == "success", states
    assert states["remove_staging"] == "success"
    assert _partitions(out, "extract") == [] and _partitions(out, "mapped") == []

    ledger = programme_ledger()
    removed = [e for e in ledger.entries(system_id="anestesi", kind="staging_removed") if e.run_id == dag_run.run_id]
    packages = [e.payload for e in ledger.entries(system_id="anestesi", kind="package") if e.run_id == dag_run.run_id]
    assert packages and [e.payload["partition"] for e in removed] == sorted(p["partition"] for p in packages)
    for entry in removed:
        part = entry.payload["partition"]
        assert entry.payload["removed"] == [f"extract/{part}", f"mapped/{part}"]
        assert entry.payload["package_id"] == f"anestesi-LO-2025-ANE-01-{part}-test"
        assert entry.recorded_at  # when
    fixity = [e.payload for e in ledger.entries(system_id="anestesi", kind="fixity") if e.run_id == dag_run.run_id]
    assert fixity[-1]["verified"] == sorted(p["package_id"] for p in packages)

    plan = load_plan(plan_path())
    run = start_run(plan, plan.system("anestesi"), dag_run.run_id, dag_run.logical_date, dag_run.conf)
    # idempotent: nothing left, nothing recorded again
    assert remove_staging(run)["removed"] == []
    assert len(ledger.entries(system_id="anestesi", kind="staging_removed")) == len(removed)

    # a task cleared after the removal extracts again instead of failing on a missing folder
    first = removed[0].payload["partition"]
    assert map_stage(run, {"partition": {"id": first, "lo": None, "hi": None} | _bounds(ledger, run, first)})
    assert first in _partitions(out, "extract") and first in _partitions(out, "mapped")
    assert restore_staging(run) == sorted(p["partition"] for p in packages if p["partition"] != first)
    assert remove_staging(run)["removed"] == sorted(p["partition"] for p in packages)
    # a reconcile_partition task cleared after the removal restores its own partition only, and counts it
    last = max(p["partition"] for p in packages)
    assert reconcile_partition(run, {"partition": {"id": last}})["partition"] == last
    assert _partitions(out, "extract") == [last]
    assert remove_staging(run)["removed"] == [last]

    # a rerun of the milestone goes through from extraction, and removes its staging again
    again, states = _run(dag, dt.date(2025, 5, 6))
    assert str(again.state) == "success", states
    assert _partitions(out, "extract") == []

    # files readable by the service only: owner and group, nothing for others
    written = [p for p in out.rglob("*")]
    assert any(p.suffix == ".tar" for p in written) and any(p.name == "result.json" for p in written)
    others = [f"{p} {stat.filemode(p.stat().st_mode)}" for p in written if p.stat().st_mode & 0o007]
    assert not others, f"readable or writable by others: {others}"
    locks = Path(tempfile.gettempdir()) / "decommission-locks"
    assert stat.S_IMODE(locks.stat().st_mode) & 0o077 == 0
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in locks.iterdir())


def _bounds(ledger, run, partition: str) -> dict:
    """The partition's key range as its extract entry recorded it."""
    for e in reversed(ledger.entries(system_id="anestesi", kind="extract")):
        if e.run_id == run.run_id and e.payload["partition"]["id"] == partition:
            return {"lo": e.payload["partition"]["lo"], "hi": e.payload["partition"]["hi"]}
    raise AssertionError(f"no extract entry for {partition}")
