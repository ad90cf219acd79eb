"""What of the catalogue the raw representation holds: every column but those a decision excludes."""

from __future__ import annotations

import datetime as dt

from decommission.plan.mapping_spec import MappingSpec
from decommission.plan.programme import Exclusion
from decommission.source.catalogue import Column, Table, raw_scope, reference_scope

SPEC = MappingSpec.model_validate(
    {
        "system": "demo",
        "patient_table": "patient",
        "tables": {
            "patient": {
                "entity": "patient",
                "key": "id",
                "patient_key": "id",
                "fields": {"patient_key": {"column": "id"}, "personal_id": {"column": "pnr"}},
            },
            "operation": {
                "entity": "document",
                "key": "op_id",
                "patient_key": "patient",
                "fields": {"document_id": {"column": "op_id"}, "patient_key": {"column": "patient"}},
            },
        },
        "reference_tables": ["enhet"],
    }
)


def _table(name: str, *columns: str) -> Table:
    return Table(name, tuple(Column(c, "text") for c in columns), 5, (columns[0],))


CATALOGUE = {
    "patient": _table("patient", "id", "pnr", "notering"),
    "operation": _table("operation", "op_id", "patient", "asa_klass", "anteckning"),
    "enhet": _table("enhet", "kod", "namn", "intern"),
    "okand": _table("okand", "x"),
}


def _exclusion(table: str, column: str | None) -> Exclusion:
    return Exclusion(
        table=table, column=column, decision="gallras", reference="RN 1", decided_by="A", date=dt.date(2025, 1, 1)
    )


def test_every_column_but_the_excluded_ones_of_every_mapped_table():
    scope = raw_scope(CATALOGUE, SPEC, [_exclusion("operation", "asa_klass"), _exclusion("patient", "id")])
    assert [c.name for c in scope["operation"].columns] == ["op_id", "patient", "anteckning"]
    # a column the mapping reads stays, even when an exclusion names it: the mapping needs it
    assert [c.name for c in scope["patient"].columns] == ["id", "pnr", "notering"]
    assert set(scope) == {"patient", "operation"}


def test_reference_tables_whole_but_for_exclusions():
    scope = reference_scope(CATALOGUE, SPEC, [_exclusion("enhet", "intern")])
    assert list(scope) == ["enhet"] and [c.name for c in scope["enhet"].columns] == ["kod", "namn"]
    assert reference_scope(CATALOGUE, SPEC, [_exclusion("enhet", None)]) == {}  # a whole table excluded by decision


TWO = MappingSpec.model_validate(
    {
        **SPEC.model_dump(by_alias=True, exclude={"path", "lines", "correction_list"}),
        "tables": {
            **SPEC.model_dump(by_alias=True)["tables"],
            "diagnos": {
                "entity": "diagnosis",
                "schema": "klinik",
                "key": "diag_id",
                "patient_key": "patient",
                "fields": {"patient_key": {"column": "patient"}, "code": {"column": "kod"}},
            },
        },
        "reference_tables": ["enhet", "klinik.kodverk"],
    }
)
TWO_CATALOGUE = {
    **CATALOGUE,
    "diagnos": _table("diagnos", "diag_id", "patient", "notering"),  # the own schema's, mapped by no one
    "klinik.diagnos": _table("klinik.diagnos", "diag_id", "patient", "kod", "notering"),
    "klinik.kodverk": _table("klinik.kodverk", "kod", "namn", "intern"),
}


def test_an_exclusion_names_another_schemas_table_as_schema_table_and_the_own_ones_plainly():
    exclusions = [
        _exclusion("Klinik.Diagnos", "NOTERING"),  # case-insensitive
        _exclusion("kodverk", "namn"),  # plain: a table of the own schema, not klinik's kodverk
        _exclusion("adt.operation", "asa_klass"),  # the own schema named: as its plain name
        _exclusion("KLINIK.kodverk", "intern"),
    ]
    scope = raw_scope(TWO_CATALOGUE, TWO, exclusions, "adt")
    assert [c.name for c in scope["diagnos"].columns] == ["diag_id", "patient", "kod"]
    assert [c.name for c in scope["operation"].columns] == ["op_id", "patient", "anteckning"]
    reference = reference_scope(TWO_CATALOGUE, TWO, exclusions, "adt")
    assert [c.name for c in reference["klinik.kodverk"].columns] == ["kod", "namn"]
    assert list(reference_scope(TWO_CATALOGUE, TWO, [_exclusion("klinik.KODVERK", None)], "adt")) == ["enhet"]


def test_a_query_fed_table_has_no_siard_copy_of_its_own():
    """A query's rows are no source table: they are not written into the SIARD part under a table's name
    (not even a table the spec entry shares its name with); its base tables are covered each on its own."""
    raw = SPEC.model_dump(by_alias=True, exclude={"path", "lines", "correction_list"})
    raw["tables"]["operation"] = {
        **{k: v for k, v in raw["tables"]["operation"].items() if v is not None and k != "table"},
        "query": "SELECT op_id, patient FROM operation WHERE asa_klass IS NOT NULL",
        "reads": ["operation"],
    }
    spec = MappingSpec.model_validate(raw)
    assert set(raw_scope(CATALOGUE, spec, [])) == {"patient"}


def test_a_query_fed_tables_base_table_may_be_kept_whole_as_a_reference_table():
    raw = SPEC.model_dump(by_alias=True, exclude={"path", "lines", "correction_list"})
    raw["tables"]["operation"] = {
        **{k: v for k, v in raw["tables"]["operation"].items() if v is not None and k != "table"},
        "query": "SELECT op_id, patient FROM operation WHERE asa_klass IS NOT NULL",
        "reads": ["operation"],
    }
    raw["reference_tables"] = ["enhet", "operation"]  # the query's base table, whole, into the SIARD part
    spec = MappingSpec.model_validate(raw)
    assert set(reference_scope(CATALOGUE, spec, [])) == {"enhet", "operation"}
