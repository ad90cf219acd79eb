"""The SIARD part of every package equals the PostgreSQL source, value by value, read by a reader not ours.

One ``dag.test()`` run of the VAS demo system's test delivery, its source in a PostgreSQL
database of this test's own. Every package's ``representations/rep2`` SIARD file is read back with
``tests/siard_reader.py`` (written from the SIARD specification, importing nothing of the writer)
and compared with ``SELECT *`` of each source table: every row inside the cut-off is there once,
with every column as stored (the flagged rows too, the corrected diagnosis with the value the
source holds, attachments as large-object files), and the rows disposed of by decision are not.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import shutil
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from demo.generate import build
from tests.integration.test_dag_e2e import REPO, _run
from tests.siard_reader import read_siard

DATABASE = "decommission_siard_e2e"
CUT_OFF = "2024-10-01"  # the plan's cut-off (2024-09-30) plus a day, as the extraction bounds it


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def own_database(pg_dsn: str) -> str:
    """A database of this test's own: the demo's schema name (vas) is shared with other tests."""
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    url = urlsplit(pg_dsn)
    yield urlunsplit((url.scheme, url.netloc, f"/{DATABASE}", "", ""))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


UNITS = [("SUN-AKM", "Sunderby sjukhus, akutmottagning", True), ("PIT\\VC", "Vårdcentral Piteå \\ norr", False)]


def _plan_with_a_code_table(tmp_path: Path) -> Path:
    """The demo plan, its VAS mapping naming the code table ``vardenhet`` as a table not bound to a patient."""
    shutil.copytree(REPO / "include", tmp_path / "include")
    path = tmp_path / "include" / "mappings" / "vas.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["reference_tables"] = ["vardenhet"]
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return tmp_path / "include" / "programme.yaml"


def _add_code_table(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE vas.vardenhet (kod text PRIMARY KEY, namn text NOT NULL, aktiv boolean)")
        conn.execute("COMMENT ON TABLE vas.vardenhet IS 'Vårdenheter (kodtabell)'")
        conn.execute("COMMENT ON COLUMN vas.vardenhet.namn IS 'Enhetens namn'")
        for unit in UNITS:
            conn.execute("INSERT INTO vas.vardenhet VALUES (%s, %s, %s)", unit)


def _source_rows(url: str, table: str, spec: dict) -> dict[int, dict]:
    """Every row of a source table inside the cut-off, minus the ones a dispose decision covers, by key."""
    import psycopg
    from psycopg.rows import dict_row

    where = ""
    if spec.get("cutoff_column"):
        c = spec["cutoff_column"]
        where = f" WHERE ({c} IS NULL OR {c} < '{CUT_OFF}' OR {c} >= '9999-01-01')"
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM vas.{table}{where}")
        return {row[spec["key"]]: row for row in cur.fetchall()}


def _equal(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(b, memoryview):
        b = bytes(b)
    return a == b


def test_siard_parts_equal_the_postgres_source(tmp_path, monkeypatch, r7sim, airflow_db, own_database):
    from airflow.dag_processing.dagbag import DagBag

    from decommission.embedded import source_connection

    build("vas", own_database, seed=11, patients=130, schema="vas")
    _add_code_table(own_database)
    monkeypatch.setenv("DECOMMISSION_PLAN", str(_plan_with_a_code_table(tmp_path)))
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_VAS", source_connection(own_database, "vas"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_vas")
    dag.deadline = None
    run = _run(dag, dt.date(2025, 3, 3), "test_delivery")
    assert str(run.state) == "success", {ti.task_id: str(ti.state) for ti in run.get_task_instances()}

    out = tmp_path / "out" / "vas"
    read: dict[str, dict[int, dict]] = {}
    packages = sorted((out / "packages").glob("*.tar"))
    assert len(packages) == 2  # 130 patients in partitions of 100: each package holds its patients' raw rows
    patients_of: list[set[int]] = []
    for package in packages:
        with tarfile.open(package) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith(".siard")]
            assert len(members) == 1 and "/representations/rep2/data/" in members[0].name
            tables = read_siard(tar.extractfile(members[0]).read())
        patients_of.append({row["pat_id"] for t in tables.values() for row in t.rows if "pat_id" in row})
        with tarfile.open(package) as tar:
            metadata = zipfile.ZipFile(io.BytesIO(tar.extractfile(members[0]).read())).read("header/metadata.xml")
        # the code table once per delivery: in the first partition's package only, with its comments
        assert ("vardenhet" in tables) == package.name.endswith("p0001-test.tar")
        assert ("Vårdenheter (kodtabell)".encode() in metadata) == ("vardenhet" in tables)
        for name, table in tables.items():
            key = next(c.name for c in table.columns)  # the key comes first in every demo table
            assert table.rows_declared == len(table.rows)
            for row in table.rows:
                assert row[key] not in read.setdefault(name, {}), f"{name} {row[key]} in two packages"
                read[name][row[key]] = row
        report = json.loads((out / "validation" / f"{package.stem}.json").read_text())
        assert report["ok"] and report["raw_rows"] == {n: len(t.rows) for n, t in tables.items()}

    assert not patients_of[0] & patients_of[1]  # split by the partition's patient range
    assert max(patients_of[0]) < min(patients_of[1])
    mapping = yaml.safe_load((REPO / "include" / "mappings" / "vas.yaml").read_text(encoding="utf-8"))
    disposed_by = {d["table"] for d in mapping["dispositions"] if d["disposition"] == "dispose"}
    checked_values = 0
    for name, spec in mapping["tables"].items():
        source = _source_rows(own_database, name, spec)
        gone = {k for k, row in source.items() if name in disposed_by and row.get("makulerad") == 1}
        assert set(read[name]) == set(source) - gone, name  # every row, once; the disposed ones absent
        for key, row in read[name].items():
            assert set(row) == set(source[key]), name  # every column (the demo excludes none of VAS)
            for column, value in row.items():
                assert _equal(value, source[key][column]), (name, key, column)
                checked_values += 1
        if name in disposed_by:
            assert gone, f"the demo disposes of {name} rows"
    assert checked_values > 5000

    # flagged rows are there as the source holds them: a control character, the uncorrected code
    notes = read["journalanteckning"].values()
    assert any(any(ord(ch) < 32 and ch not in "\t\n\r" for ch in (n["anteckning"] or "")) for n in notes)
    assert read["diagnos"][1]["icd10"] == "J18,9"  # corrected in the record file, as written in the SIARD part
    attachments = [row["innehall"] for row in read["bilaga"].values() if row["innehall"]]
    assert attachments and all(isinstance(a, bytes) for a in attachments)

    assert sorted((r["kod"], r["namn"], r["aktiv"]) for r in read["vardenhet"].values()) == sorted(UNITS)

    result = json.loads((out / "reconciliation" / "test_delivery" / "result.json").read_text())
    coverage = {t["table"]: t["class"] for t in result["coverage"]["tables"]}
    assert coverage["vardenhet"] == "preserved"
    assert result["raw"]["reasons"] == []
    assert {t["table"]: t["siard"] for t in result["raw"]["tables"]} == {n: len(r) for n, r in read.items()}
    html = (out / "reconciliation" / "test_delivery" / "report.html").read_text(encoding="utf-8")
    total = f"{sum(len(r) for r in read.values()):,}".replace(",", "\u00a0")  # Swedish: 12 345
    assert "Källraderna i SIARD-format" in html and f"(representations/rep2): {total} rader" in html
