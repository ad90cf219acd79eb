"""The mapping spec for real schemas: joins, schemas, queries, composite and prefixed keys, composed fields,
constants; every fault named with the spec file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from decommission.errors import MappingError
from decommission.plan.mapping_spec import ROW_KEY, check_against_source, load_spec

SPEC = """\
system: his
patient_table: person
tables:
  person:
    entity: patient
    schema: demografi
    key: person_id
    patient_key: person_id
    join:
      - {table: namn, schema: demografi, as: n, on: {person_id: person_id}}
    fields:
      patient_key: {column: person_id}
      given_name: {column: n.fornamn}
      family_name: {column: n.efternamn}
    constants: {protected_identity: false, blocked: false, confidential: false}
  diagnos_icd10:
    entity: diagnosis
    table: diagnos
    schema: klinik
    key: [vistelse_id, rad]
    key_prefix: "icd10-"
    patient_key: person_id
    fields:
      patient_key: {column: person_id}
      code: {column: kod}
      case_id: {compose: "vistelse-{vistelse_id}/{avdelning}"}
  diagnos_icd9:
    entity: diagnosis
    query: >-
      SELECT d.vistelse_id, d.rad, v.person_id, d.kod9 FROM klinik.diagnos9 d
      JOIN klinik.vistelse v ON v.vistelse_id = d.vistelse_id WHERE d.kod9 LIKE 'V%'
    reads: [klinik.diagnos9, klinik.vistelse]
    key: [vistelse_id, rad]
    key_prefix: "icd9-"
    patient_key: person_id
    fields:
      patient_key: {column: person_id}
      code: {column: kod9, lookup: {V45: V45}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "his.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_real_schema_spec_loads_with_its_keys_and_fields(tmp_path):
    spec = load_spec(_write(tmp_path, SPEC))
    person, icd10, icd9 = (spec.tables[t] for t in ("person", "diagnos_icd10", "diagnos_icd9"))
    assert person.row_key == "person_id" and not person.derived_key
    assert person.fields["confidential"].value is False  # constants are fields of every row
    assert icd10.row_key == ROW_KEY and icd10.fields["diagnosis_id"].column == ROW_KEY  # the id defaults to it
    assert icd10.columns() == ["vistelse_id", "rad", "person_id", "kod", "avdelning"]
    assert icd10.staged_columns()[-1] == ROW_KEY
    assert [r.label for r in spec.relations("person")] == ["demografi.person", "demografi.namn"]
    assert [r.label for r in spec.relations("diagnos_icd9")] == ["(its query)"]
    assert person.join_of("n.fornamn") == ("n", "fornamn") and person.join_of("fornamn") == (None, "fornamn")


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ('key: [vistelse_id, rad]\n    key_prefix: "icd10-"', "key: [rad, rad]", 20, "a list of different"),
        ('{compose: "vistelse-{vistelse_id}/{avdelning}"}', '{compose: "{kod!r}"}', 26, "must name a column"),
        ('{compose: "vistelse-{vistelse_id}/{avdelning}"}', '{compose: "{kod}", column: kod}', 26, "only one of"),
        ("constants: {protected_identity: false,", "constants: {given_name: x, protected_identity: false,", 15, "also"),
        ("WHERE d.kod9 LIKE 'V%'", "WHERE d.kod9 LIKE 'V%'; DELETE FROM klinik.diagnos9", 29, "one statement"),
        ("{table: namn, schema: demografi, as: n,", "{table: namn, schema: demografi, as: 'n x',", 10, "join.0.as"),
        ("    query: >-", "    table: x\n    query: >-", 30, "no 'table'"),
    ],
)
def test_a_broken_entry_is_named_with_its_file_and_line(tmp_path, old, new, line, message):
    assert old in SPEC
    path = _write(tmp_path, SPEC.replace(old, new, 1))
    with pytest.raises(MappingError) as err:
        load_spec(path)
    text = str(err.value)
    assert text.startswith(f"{path}: line {line}: tables."), text
    assert message in text


def test_the_live_schema_check_names_the_line_of_each_missing_column(tmp_path):
    spec = load_spec(_write(tmp_path, SPEC))
    live = {
        "demografi.person": ["person_id"],
        "demografi.namn": ["person_id", "fornamn"],  # efternamn is missing
        "klinik.diagnos": ["vistelse_id", "rad", "person_id", "kod"],  # avdelning is missing
        # the query could not be read (not in the live schema)
    }
    problems = check_against_source(spec, live)
    assert len(problems) == 3, problems
    assert (
        f"{spec.path}: line 14: tables.person: column 'efternamn' not in source table 'demografi.namn'" in (problems[0])
    )
    assert "line 26: tables.diagnos_icd10: column 'avdelning' not in source table 'klinik.diagnos'" in problems[1]
    assert "line 29: tables.diagnos_icd9: its query cannot be read" in problems[2]


def test_the_shipped_mappings_still_load():
    repo = Path(__file__).resolve().parents[3]
    for path in sorted((repo / "include" / "mappings").glob("*.yaml")):
        spec = load_spec(path)
        if path.stem != "sjukhus":  # the hospital system's keys are composite and prefixed on purpose
            assert all(not t.derived_key for t in spec.tables.values()), path
    hospital = load_spec(repo / "include" / "mappings" / "sjukhus.yaml")
    assert hospital.schemas("adt") == ["klinik"] and len(hospital.tables) + len(hospital.reference_tables) == 21


def test_a_query_names_the_tables_it_reads_and_their_schemas_are_inventoried(tmp_path):
    # we do not parse SQL: a schema only a query reads would be in no coverage inventory without the list
    without = SPEC.replace("    reads: [klinik.diagnos9, klinik.vistelse]\n", "")
    with pytest.raises(MappingError, match="reads"):
        load_spec(_write(tmp_path, without))
    spec = load_spec(_write(tmp_path, SPEC.replace("[klinik.diagnos9, klinik.vistelse]", "[arkiv.diagnos9]")))
    assert "arkiv" in spec.schemas()
    # a table's own and joined tables are known: reads only with a query
    with pytest.raises(MappingError, match="only with a query"):
        load_spec(_write(tmp_path, SPEC.replace("    schema: klinik\n", "    schema: klinik\n    reads: [x]\n", 1)))
