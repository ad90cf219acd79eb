"""The hospital-shaped demo system (``sjukhus``) through ``dag.test()``, on SQLite and on PostgreSQL.

Two schemas (``adt`` and ``klinik``; on SQLite a second file the connection attaches), 21 tables,
composite keys, joins across the schemas, ICD-9 and ICD-10 in one column, ``char(n)`` codes, the
lab's own item ids, times on the clock-change days: archived by configuration alone
(``include/mappings/sjukhus.yaml``, no view). The reconciliation must PASS with figures equal,
exactly, to the generator's dirt report: every dirty row archived flagged or disposed of under the
demo's decision, each under its reason.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tarfile
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from demo.generate import build, expected_outcome
from tests.integration.test_dag_e2e import REPO
from tests.siard_reader import read_siard

DATABASE = "decommission_hospital_e2e"
PATIENTS = 60


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def own_database(pg_dsn: str):
    """A database of this test's own: the demo's schema names (adt, klinik) are no one else's there."""
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    url = urlsplit(pg_dsn)
    yield urlunsplit((url.scheme, url.netloc, f"/{DATABASE}", "", ""))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _wire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> tuple:
    """Build the hospital source, wire its connections; return its DAG and dirt report."""
    from airflow.dag_processing.dagbag import DagBag

    from decommission.embedded import source_connection
    from demo.sjukhus import KLINIK, klinik_path

    report = build("sjukhus", target, seed=11, patients=PATIENTS)
    if target.startswith("postgres"):
        from demo.readonly import create_reader

        # read through a SELECT-only login on both schemas, as preflight requires beyond the test delivery
        target = create_reader(target, "adt", name="hospital_e2e_reader", also=(KLINIK,))
        conn = source_connection(target, "adt")
    else:
        conn = source_connection(target, "adt", {KLINIK: str(klinik_path(target))})
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_SJUKHUS", conn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_sjukhus")
    dag.deadline = None  # Airflow 3.3.2: dag.test() crashes on deadline alerts (see demo/run.py)
    return dag, report


def _delivered_and_reconciled(dag, report: dict, out: Path) -> dict:
    from decommission.plan.mapping_spec import load_spec

    run = dag.test(logical_date=dt.datetime(2025, 6, 9, tzinfo=dt.UTC), run_conf={"milestone": "test_delivery"})
    assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    result = json.loads((out / "reconciliation" / "test_delivery" / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "PASS", result["reasons"]

    expected = expected_outcome(report, load_spec(REPO / "include" / "mappings" / "sjukhus.yaml"))
    for kind, by_table in expected.items():
        assert {t: row[kind] for t, row in result["tables"].items() if row[kind]} == by_table, kind
    assert expected["disposed"] and expected["flagged"]
    # every kind of the hospital's dirt is there, each under its own reason
    flagged = {r for reasons in expected["flagged"].values() for r in reasons}
    assert flagged >= {
        "ID_INVALID_CHECKSUM",
        "ID_INVALID_FORMAT",
        "CODE_INVALID",
        "LOCAL_TIME_ADJUSTED",
        "SENTINEL_DATE",
        "XML_ILLEGAL_CHAR",
        "ENCODING_SUSPECT",
        "ORPHAN",
    }
    patient_tables = {t: n for t, n in report["tables"].items() if t in result["tables"]}
    assert len(patient_tables) == 14 and len(report["tables"]) == 21
    for table, row in result["tables"].items():
        assert row["source"] == report["tables"][table] == row["extracted"] == row["archived"] + row["disposed_total"]
    totals = result["totals"]
    assert totals["source"] == sum(patient_tables.values()) == totals["archived"] + totals["disposed"]
    for kind in ("flagged", "corrected", "disposed"):
        assert totals[kind] == sum(sum(r.values()) for r in expected[kind].values()), kind
    assert result["placeholders"] == report["placeholder_patients"] > 0
    for entity, row in result["entities"].items():
        assert row["mapped"] == row["packaged"] == row["accepted"], entity
    assert result["sample"]["mismatches"] == []

    # every table and column classified; the other schema's tables named schema.table
    coverage = result["coverage"]
    assert coverage["coverage"] == 1.0 and coverage["findings"] == [], coverage["findings"]
    names = {t["table"]: t["class"] for t in coverage["tables"]}
    assert names["klinik.diagnos"] == "mapped" and names["klinik.labanalys"] == "preserved"
    assert names["patient"] == "mapped" and names["care_unit"] == "preserved"
    assert len(names) == 21
    raw = {t["table"]: t for t in result["raw"]["tables"]}
    assert all(t["ok"] for t in raw.values()) and raw["klinik.labsvar"]["disposed"] > 0
    assert raw["klinik.kodverk"]["siard"] == report["tables"]["kodverk"]
    return result


def _check_records(out: Path, report: dict) -> None:
    """Every table in its own kind of record; padded codes trimmed, each with its code system."""
    seen: Counter[str] = Counter()
    raw_tables: dict[str, int] = {}
    for package in sorted((out / "packages").glob("*.tar")):
        with tarfile.open(package) as tar:
            for member in tar.getmembers():
                if member.name.endswith("record.xml"):
                    text = tar.extractfile(member).read().decode("utf-8")
                    for tag in ("transfer", "procedure", "observation", "order", "deathDate", "referenceHigh"):
                        seen[tag] += text.count(f"<{tag}>") + text.count(f"<{tag} ")
                    for system in ("icd10se", "icd9cm", "kva", "sjukhus_lab", "vitalparametrar", "atc"):
                        seen[system] += text.count(f'codeSystem="{system}"')
                    assert not re.search(r'codeSystem="[a-z0-9_]+">[^<]* <', text), "a padded code archived"
                elif member.name.endswith(".siard"):
                    # the two schemas each a schema of the SIARD part, read by the reader that is not ours
                    data = tar.extractfile(member).read()
                    assert b"<name>adt</name>" in zipfile.ZipFile(io.BytesIO(data)).read("header/metadata.xml")
                    for name, table in read_siard(data).items():
                        raw_tables[name] = raw_tables.get(name, 0) + len(table.rows)
    tables = report["tables"]
    disposed = report["expected_findings"]["labsvar"]["SOFT_DELETED"]
    assert seen["transfer"] == tables["transfer"] and seen["procedure"] == tables["atgard"]
    assert seen["observation"] == tables["vitalparameter"]
    assert seen["order"] == tables["provtagning"] + tables["bestallning"] + tables["remiss"]
    assert seen["deathDate"] == report["clean_but_hard"]["deaths"] > 0
    assert 0 < seen["referenceHigh"] <= tables["labsvar"] - disposed + tables["vitalparameter"]
    assert raw_tables["klinik.diagnos"] == tables["diagnos"] and raw_tables["patient"] == tables["patient"]
    assert raw_tables["klinik.labsvar"] == tables["labsvar"] - disposed and raw_tables["klinik.kodverk"] == 4
    assert len(raw_tables) == 21
    assert seen["icd9cm"] > 0 and seen["icd10se"] > 0 and seen["kva"] > 0 and seen["atc"] > 0, seen


def test_the_hospital_system_on_sqlite_reconciles_pass_with_exact_figures(tmp_path, monkeypatch, r7sim, airflow_db):
    dag, report = _wire(tmp_path, monkeypatch, str(tmp_path / "sjukhus.sqlite"))
    out = tmp_path / "out" / "sjukhus"
    _delivered_and_reconciled(dag, report, out)
    _check_records(out, report)


def test_the_hospital_system_on_postgres_reconciles_pass_with_exact_figures(
    tmp_path, monkeypatch, r7sim, airflow_db, own_database
):
    from demo.readonly import drop_reader

    try:
        dag, report = _wire(tmp_path, monkeypatch, own_database)
        _delivered_and_reconciled(dag, report, tmp_path / "out" / "sjukhus")
        _check_records(tmp_path / "out" / "sjukhus", report)
    finally:
        drop_reader(own_database, "adt", name="hospital_e2e_reader")
