"""The coverage inventory of a source of two schemas, read live (SQLite: a file and the one it attaches).

The own schema (``adt``) names its tables plainly, the other (``klinik``) as ``schema.table``: in the plan's
exclusions as in the inventory. A table is covered only when its rows are in the raw representation (a
mapped table or a reference table) or a decision covers it: a table read only through a join, or only by
a spec table's query, is not.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest

from decommission.plan.mapping_spec import MappingSpec, load_spec
from decommission.plan.programme import Exclusion
from decommission.reconcile.coverage import coverage_of
from decommission.source.database import Source

CUT_OFF = dt.date(2024, 9, 30)

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
      given_name: {column: namn}
    constants: {protected_identity: false, blocked: false, confidential: false}
  encounter:
    entity: case
    key: encounter_id
    patient_key: patient_id
    fields:
      patient_key: {column: patient_id}
      care_unit: {column: unit}
  adt_diagnos:
    entity: diagnosis
    table: diagnos
    key: diag_id
    key_prefix: "adt-"
    patient_key: patient_id
    fields:
      patient_key: {column: patient_id}
      code: {column: kod}
  diagnos:
    entity: diagnosis
    schema: klinik
    key: [vtf_id, rad]
    patient_key: v.patient_id
    join:
      - {table: encounter, schema: adt, as: v, on: {vtf_id: encounter_id}}
    fields:
      patient_key: {column: v.patient_id}
      code: {column: kod}
"""


@pytest.fixture
def source(tmp_path, monkeypatch) -> Source:
    from decommission.embedded import source_connection

    main, klinik = tmp_path / "adt.sqlite", tmp_path / "klinik.sqlite"
    with sqlite3.connect(main) as db:
        db.execute("CREATE TABLE patient (patient_id INTEGER PRIMARY KEY, namn TEXT)")
        db.execute("CREATE TABLE encounter (encounter_id INTEGER PRIMARY KEY, patient_id INTEGER, unit TEXT)")
        # a table of the same name as one of klinik's: both mapped, each counted under its own name
        db.execute("CREATE TABLE diagnos (diag_id INTEGER PRIMARY KEY, patient_id INTEGER, kod TEXT, notering TEXT)")
        db.execute("CREATE TABLE unit (code TEXT PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO patient VALUES (?, ?)", [(1, "Anna"), (2, "Erik")])
        db.executemany("INSERT INTO encounter VALUES (?, ?, ?)", [(10, 1, "AVD1"), (11, 2, "AVD2")])
        db.execute("INSERT INTO diagnos VALUES (1, 1, 'I10', 'x')")
        db.executemany("INSERT INTO unit VALUES (?, ?)", [("AVD1", "Avd 1"), ("AVD2", "Avd 2"), ("AVD3", "Avd 3")])
    with sqlite3.connect(klinik) as db:
        db.execute(
            "CREATE TABLE diagnos (vtf_id INTEGER, rad INTEGER, kod TEXT, notering TEXT, PRIMARY KEY (vtf_id, rad))"
        )
        db.execute("CREATE TABLE analys (analys_id TEXT PRIMARY KEY, namn TEXT, intern TEXT)")
        db.execute("CREATE TABLE patient (x INTEGER)")  # same name as adt's patient, mapped by no one
        rows = [(10, 1, "I10", "a"), (10, 2, "E11", "b"), (11, 1, "J45", "c")]
        db.executemany("INSERT INTO diagnos VALUES (?, ?, ?, ?)", rows)
        db.execute("INSERT INTO analys VALUES ('50912', 'Kreatinin', 'i')")
        db.execute("INSERT INTO patient VALUES (1)")
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_GAPS", source_connection(str(main), "adt", {"klinik": str(klinik)}))
    return Source("legacy_gaps", schema="adt")


def _spec(tmp_path, text: str = SPEC) -> MappingSpec:
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def _exclusion(table: str, column: str | None = None) -> Exclusion:
    return Exclusion(table=table, column=column, decision="gallras", reference="RN 1", decided_by="A", date=CUT_OFF)


def _coverage(source: Source, spec: MappingSpec, exclusions: list[Exclusion]) -> dict[str, Any]:
    system = SimpleNamespace(
        id="gaps",
        source=SimpleNamespace(schema_name="adt"),
        exclusions=exclusions,
        agreement=SimpleNamespace(cut_off=CUT_OFF),
    )
    return coverage_of(system, spec, source, source.count_rows(spec, CUT_OFF))  # type: ignore[arg-type]


def _classes(coverage: dict[str, Any]) -> dict[str, str]:
    out = {t["table"]: t["class"] for t in coverage["tables"]}
    out |= {f"{t['table']}.{c['name']}": c["class"] for t in coverage["tables"] for c in t["columns"]}
    return out


def test_an_exclusion_names_another_schemas_table_as_schema_table(source, tmp_path):
    exclusions = [
        _exclusion("KLINIK.Patient"),  # case-insensitive, as every name of the inventory
        _exclusion("klinik.diagnos", "notering"),
        _exclusion("diagnos", "notering"),  # a plain name: the own schema's diagnos only
        _exclusion("adt.unit"),  # the own schema named: the same as its plain name
    ]
    coverage = _coverage(source, _spec(tmp_path), exclusions)
    classes = _classes(coverage)
    assert classes["klinik.patient"] == classes["klinik.patient.x"] == "excluded"
    assert classes["klinik.diagnos.notering"] == classes["diagnos.notering"] == "excluded"
    assert classes["unit"] == "excluded"
    assert coverage["findings"] == []


def test_a_plain_exclusion_is_of_the_own_schema_only(source, tmp_path):
    coverage = _coverage(source, _spec(tmp_path), [_exclusion("diagnos", "notering"), _exclusion("unit")])
    classes = _classes(coverage)
    assert classes["diagnos.notering"] == "excluded"
    assert classes["klinik.diagnos.notering"] == "unclassified"
    assert classes["klinik.patient"] == "unclassified"
    assert coverage["findings"] == [
        "column klinik.diagnos.notering is in no mapping and no exclusion",
        "table klinik.patient (1 rows) is in no mapping and no exclusion",
    ]


def test_an_exclusion_of_another_schemas_table_the_source_lacks_is_named_so(source, tmp_path):
    exclusions = [_exclusion("klinik.patient"), _exclusion("klinik.borta"), _exclusion("diagnos", "notering")]
    exclusions += [_exclusion("unit"), _exclusion("klinik.diagnos", "notering")]
    found = _coverage(source, _spec(tmp_path), exclusions)["findings"]
    assert found == ["the exclusion names klinik.borta, which the source does not have"]


def test_two_mapped_tables_of_one_name_in_two_schemas_are_both_counted(source, tmp_path):
    text = SPEC.replace("reference_tables: [klinik.analys]", "reference_tables: [klinik.analys, klinik.patient]")
    text = text.replace("      code: {column: kod}\n", "      code: {column: kod}\n    preserved: [notering]\n")
    coverage = _coverage(source, _spec(tmp_path, text), [_exclusion("unit")])
    tables = {t["table"]: t for t in coverage["tables"]}
    assert tables["diagnos"]["class"] == tables["klinik.diagnos"]["class"] == "mapped"
    assert (tables["diagnos"]["rows_in_cutoff"], tables["klinik.diagnos"]["rows_in_cutoff"]) == (1, 3)
    assert tables["patient"]["class"] == "mapped" and tables["klinik.patient"]["class"] == "preserved"
    assert coverage["coverage"] == 1.0 and coverage["findings"] == []


def test_two_mapped_tables_of_one_name_in_two_schemas_both_reach_the_siard_part(source, tmp_path):
    """From the catalogue through extraction and the package's raw part to the reconciliation's count: each
    ``diagnos`` is a table of its own schema in the SIARD part, with its own rows."""
    import json

    from decommission.package.siard import write_siard
    from decommission.reconcile.raw import raw_check
    from decommission.source.catalogue import raw_scope, read_catalogue
    from decommission.source.database import Partition
    from decommission.stages import RAW_CATALOGUE, _raw_part
    from tests.siard_reader import read_siard

    spec = _spec(tmp_path)
    catalogue = read_catalogue(source, count=False, schemas=spec.schemas("adt"))
    scope = raw_scope(catalogue, spec, (), "adt")
    assert (scope["adt_diagnos"].name, scope["diagnos"].name) == ("diagnos", "klinik.diagnos")
    extract_dir, mapped_dir = tmp_path / "extract", tmp_path / "mapped"
    extract_dir.mkdir()
    mapped_dir.mkdir()
    extra = {name: [c.name for c in table.columns] for name, table in scope.items()}
    source.extract_partition(
        spec, Partition("p1", None, None), CUT_OFF, lambda t: (extract_dir / f"{t}.parquet").open("wb"), extra
    )
    raw = {"tables": {name: table.to_dict() for name, table in scope.items()}, "reference": {}}
    (extract_dir / RAW_CATALOGUE).write_text(json.dumps(raw), encoding="utf-8")
    system = SimpleNamespace(
        id="gaps",
        name="Två scheman",
        supplier="Leverantör",
        source=SimpleNamespace(schema_name="adt"),
        agreement=SimpleNamespace(cut_off=CUT_OFF),
    )
    run = SimpleNamespace(
        spec=spec,
        system=system,
        plan=SimpleNamespace(region=SimpleNamespace(name="Region")),
        package_created=dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
    )
    part = _raw_part(run, extract_dir, mapped_dir)  # type: ignore[arg-type]
    assert [(t.schema, t.plain_name) for t in part.tables if t.plain_name == "diagnos"] == [
        (None, "diagnos"),
        ("klinik", "diagnos"),
    ]
    result = write_siard(tmp_path / "raw.siard", part.database, part.tables)
    assert (result.rows["diagnos"], result.rows["klinik.diagnos"]) == (1, 3)
    read = read_siard((tmp_path / "raw.siard").read_bytes())
    assert (read["diagnos"].rows_declared, read["klinik.diagnos"].rows_declared) == (1, 3)
    checked = raw_check(spec, source.count_rows(spec, CUT_OFF), [], [{"raw_rows": result.rows}], None, "adt")
    assert checked["reasons"] == []
    assert {t["table"]: t["siard"] for t in checked["tables"]} == {
        "diagnos": 1,
        "encounter": 2,
        "klinik.diagnos": 3,
        "patient": 2,
    }


QUERY_SPEC = SPEC.replace(
    """  adt_diagnos:
    entity: diagnosis
    table: diagnos
""",
    """  adt_diagnos:
    entity: diagnosis
    query: "SELECT diag_id, patient_id, kod FROM diagnos WHERE kod IS NOT NULL"
    reads: [diagnos]
""",
)


def test_a_query_fed_base_table_is_covered_only_by_a_siard_copy_or_a_decision(source, tmp_path):
    """The query's rows are in the records, not in the SIARD part: its base table (adt's diagnos) is
    unclassified, a finding naming schema.table, until it is a reference table or excluded by decision."""
    exclusions = [_exclusion("klinik.patient"), _exclusion("unit"), _exclusion("klinik.diagnos", "notering")]
    coverage = _coverage(source, _spec(tmp_path, QUERY_SPEC), exclusions)
    assert _classes(coverage)["diagnos"] == "unclassified"
    assert coverage["findings"] == ["table adt.diagnos (1 rows) is in no mapping and no exclusion"]
    kept = QUERY_SPEC.replace("reference_tables: [klinik.analys]", "reference_tables: [klinik.analys, diagnos]")
    coverage = _coverage(source, _spec(tmp_path, kept), exclusions)
    assert _classes(coverage)["diagnos"] == "preserved" and coverage["findings"] == []
    coverage = _coverage(source, _spec(tmp_path, QUERY_SPEC), [*exclusions, _exclusion("diagnos")])
    assert _classes(coverage)["diagnos"] == "excluded" and coverage["findings"] == []


JOIN_SPEC = SPEC.replace(
    """    fields:
      patient_key: {column: patient_id}
      care_unit: {column: unit}
""",
    """    join:
      - {table: unit, as: u, on: {unit: code}}
    fields:
      patient_key: {column: patient_id}
      care_unit: {column: u.name}
""",
)


def test_a_table_read_only_through_a_join_is_covered_only_by_a_siard_copy_or_a_decision(source, tmp_path):
    """Only the joined rows' values reach the records (AVD3 no encounter names is in none): the table is
    covered when its rows are in the SIARD part (a reference table) or a decision covers it."""
    exclusions = [_exclusion("klinik.patient"), _exclusion("klinik.diagnos", "notering")]
    exclusions += [_exclusion("diagnos", "notering")]
    coverage = _coverage(source, _spec(tmp_path, JOIN_SPEC), exclusions)
    unit = next(t for t in coverage["tables"] if t["table"] == "unit")
    assert unit["class"] == "unclassified" and {c["class"] for c in unit["columns"]} == {"unclassified"}
    assert coverage["findings"] == [
        "table adt.unit (3 rows) is read only through a join, and no SIARD copy holds its rows:"
        " name it in tables or reference_tables, or exclude it by decision"
    ]
    assert coverage["coverage"] < 1.0
    kept = JOIN_SPEC.replace("reference_tables: [klinik.analys]", "reference_tables: [klinik.analys, unit]")
    coverage = _coverage(source, _spec(tmp_path, kept), exclusions)
    assert _classes(coverage)["unit"] == "preserved" and coverage["findings"] == []
    assert coverage["coverage"] == 1.0
    coverage = _coverage(source, _spec(tmp_path, JOIN_SPEC), [*exclusions, _exclusion("unit")])
    classes = _classes(coverage)
    assert classes["unit"] == "excluded" and coverage["findings"] == []
    assert (classes["unit.name"], classes["unit.code"]) == ("mapped", "excluded")  # name feeds a field still
