"""A source of several schemas on SQLite: the other schemas are files the connection attaches, read-only.

SQLite has no schemas; a system whose tables sit in two schemas (``adt`` and ``klinik``) is two files
on SQLite. The connection's extra names the second (``attach``); the source attaches it under the
schema's name, read-only, before ATTACH is disabled: a mapping's SQL can neither attach another
file nor write through the attached one.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from decommission.errors import SourceError
from decommission.source.catalogue import raw_scope, read_catalogue, reference_scope
from decommission.source.database import Partition, Source

SPEC = """\
system: two
patient_table: patient
reference_tables: [klinik.analys]
tables:
  patient:
    entity: patient
    key: patient_id
    patient_key: patient_id
    fields:
      patient_key: {column: patient_id}
    constants: {protected_identity: false, blocked: false, confidential: false}
  diagnos:
    entity: diagnosis
    schema: klinik
    key: [vtf_id, rad]
    patient_key: v.patient_id
    join:
      - {table: encounter, schema: adt, as: v, on: {vtf_id: encounter_id}}
    fields:
      patient_key: {column: v.patient_id}
      code: {column: kod, transform: trim}
"""


@pytest.fixture
def two_files(tmp_path, monkeypatch):
    from decommission.embedded import source_connection
    from decommission.plan.mapping_spec import load_spec

    main, klinik = tmp_path / "adt.sqlite", tmp_path / "klinik.sqlite"
    with sqlite3.connect(main) as db:
        db.execute("CREATE TABLE patient (patient_id INTEGER PRIMARY KEY, namn TEXT)")
        db.execute("CREATE TABLE encounter (encounter_id INTEGER PRIMARY KEY, patient_id INTEGER)")
        db.executemany("INSERT INTO patient VALUES (?, ?)", [(1, "Anna"), (2, "Erik")])
        db.executemany("INSERT INTO encounter VALUES (?, ?)", [(10, 1), (11, 2)])
    with sqlite3.connect(klinik) as db:
        db.execute("CREATE TABLE diagnos (vtf_id INTEGER, rad INTEGER, kod CHAR(7), PRIMARY KEY (vtf_id, rad))")
        db.execute("CREATE TABLE analys (analys_id TEXT PRIMARY KEY, namn TEXT)")
        # a table of the same name as one of the main file: the two stay apart (klinik.patient)
        db.execute("CREATE TABLE patient (x INTEGER)")
        db.executemany(
            "INSERT INTO diagnos VALUES (?, ?, ?)", [(10, 1, "I10    "), (10, 2, "E11.9  "), (11, 1, "V45.81 ")]
        )
        db.execute("INSERT INTO analys VALUES ('50912', 'Kreatinin')")
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_TWO", source_connection(str(main), "adt", {"klinik": str(klinik)}))
    spec_path = tmp_path / "two.yaml"
    spec_path.write_text(SPEC, encoding="utf-8")
    return Source("legacy_two", schema="adt"), load_spec(spec_path), main, klinik


def test_the_other_schema_is_read_under_its_name_and_the_source_own_tables_by_theirs(two_files, tmp_path):
    import pyarrow.parquet as pq

    source, spec, _, _ = two_files
    assert spec.schemas("adt") == ["klinik"]
    catalogue = read_catalogue(source, schemas=spec.schemas("adt"))
    assert sorted(catalogue) == ["encounter", "klinik.analys", "klinik.diagnos", "klinik.patient", "patient"]
    assert catalogue["klinik.diagnos"].primary_key == ("vtf_id", "rad")
    assert catalogue["klinik.diagnos"].rows == 3 and catalogue["patient"].rows == 2
    assert sorted(raw_scope(catalogue, spec, (), "adt")) == ["diagnos", "patient"]
    assert list(reference_scope(catalogue, spec, (), "adt")) == ["klinik.analys"]
    assert source.count_rows(spec, dt.date(2024, 9, 30)) == {"patient": 2, "diagnos": 3}
    totals = source.extract_partition(
        spec, Partition("p1", None, 2), dt.date(2024, 9, 30), lambda t: (tmp_path / f"{t}.parquet").open("wb")
    )
    assert totals["diagnos"]["rows"] == 2  # patient 1's stay only: the partition bound goes through the join
    assert pq.read_table(tmp_path / "diagnos.parquet")["_row_key"].to_pylist() == ["10-1", "10-2"]
    whole = source.extract_whole(
        reference_scope(catalogue, spec, (), "adt"), lambda t: (tmp_path / f"ref.{t}.parquet").open("wb")
    )
    assert whole["reference:klinik.analys"]["rows"] == 1


def test_the_attached_file_is_read_only_and_no_statement_attaches_another(two_files):
    source, _, main, klinik = two_files
    with source.snapshot() as conn:
        cur = conn.cursor()
        cur.execute("COMMIT")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            cur.execute('DELETE FROM "klinik".diagnos')
        with pytest.raises(sqlite3.OperationalError):
            cur.execute(f"ATTACH DATABASE 'file:{klinik}?mode=rw' AS again")
        with pytest.raises(sqlite3.OperationalError):
            cur.execute(f"ATTACH DATABASE '{main}' AS again")
    with sqlite3.connect(klinik) as db:
        assert db.execute("SELECT COUNT(*) FROM diagnos").fetchone()[0] == 3
    assert source.write_access(["klinik"]) == []


@pytest.mark.parametrize(
    ("attach", "message"),
    [({"main": "x.sqlite"}, "not schema names"), ({"kli nik": "x.sqlite"}, "not schema names"), (["x"], "must map")],
)
def test_a_bad_attach_entry_is_refused_naming_the_connection(tmp_path, monkeypatch, attach, message):
    conn = {"conn_type": "sqlite", "host": str(tmp_path / "a.sqlite"), "extra": {"attach": attach}}
    sqlite3.connect(tmp_path / "a.sqlite").close()
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_BAD", json.dumps(conn))
    with pytest.raises(SourceError, match=f"source connection 'legacy_bad'.*{message}"):
        Source("legacy_bad").attached()
