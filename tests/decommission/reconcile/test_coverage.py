"""The coverage inventory: every table and column of the source classified, findings named schema.table.column."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from decommission.plan.mapping_spec import MappingSpec
from decommission.plan.programme import Exclusion
from decommission.reconcile.coverage import classify
from decommission.source.catalogue import Column, Table, read_catalogue
from decommission.source.database import Source

CUT_OFF = dt.date(2024, 9, 30)

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
            "note": {
                "entity": "document",
                "key": "nid",
                "patient_key": "pid",
                "cutoff_column": "written",
                "fields": {
                    "document_id": {"column": "nid"},
                    "patient_key": {"column": "pid"},
                    "text": {"column": "txt"},
                },
                "rules": [{"rule": "soft_deleted", "column": "deleted"}],
            },
        },
    }
)


def table(name: str, *columns: str, rows: int = 5) -> Table:
    return Table(name, tuple(Column(c, "text") for c in columns), rows)


def exclusion(table: str, column: str | None = None, reference: str = "RN 2025/1") -> Exclusion:
    return Exclusion(table=table, column=column, decision="not kept", reference=reference, decided_by="A", date=CUT_OFF)


CATALOGUE = {
    "patient": table("patient", "id", "pnr"),
    "note": table("note", "nid", "pid", "written", "txt", "deleted", "extra"),
    "codes": table("codes", "code", "label", rows=3),
}


class TestClassify:
    def test_every_column_gets_a_class(self) -> None:
        cov = classify(CATALOGUE, SPEC, [exclusion("codes")], {"patient": 5, "note": 5}, CUT_OFF, "s")
        classes = {(t["table"], c["name"]): c["class"] for t in cov["tables"] for c in t["columns"]}
        assert classes[("note", "txt")] == "mapped"
        assert classes[("note", "deleted")] == classes[("note", "written")] == "used"
        assert classes[("note", "extra")] == "unclassified"
        assert classes[("codes", "label")] == "excluded"
        assert cov["findings"] == ["column s.note.extra is in no mapping and no exclusion"]
        assert cov["columns_by_class"] == {"mapped": 5, "preserved": 0, "used": 2, "excluded": 2, "unclassified": 1}
        assert cov["coverage"] == 0.9

    def test_a_column_declared_preserved_is_covered_by_the_siard_part(self) -> None:
        raw = SPEC.model_dump()
        raw["tables"]["note"]["preserved"] = ["extra", "gone"]
        spec = MappingSpec.model_validate(raw)
        cov = classify(CATALOGUE, spec, [exclusion("codes")], {"patient": 5, "note": 5}, CUT_OFF, "s")
        classes = {(t["table"], c["name"]): c["class"] for t in cov["tables"] for c in t["columns"]}
        assert classes[("note", "extra")] == "preserved"
        assert cov["columns_by_class"]["unclassified"] == 0 and cov["columns_by_class"]["preserved"] == 1
        # a preserved column the source does not have is named (a typo would otherwise pass silently)
        assert cov["findings"] == ["tables.note.preserved names s.note.gone, which the source does not have"]

    def test_a_table_not_bound_to_a_patient_is_preserved_whole(self) -> None:
        raw = SPEC.model_dump()
        raw["reference_tables"] = ["codes"]
        spec = MappingSpec.model_validate(raw)
        cov = classify(CATALOGUE, spec, [exclusion("note", "extra")], {"patient": 5, "note": 5}, CUT_OFF, "s")
        codes = next(t for t in cov["tables"] if t["table"] == "codes")
        assert codes["class"] == "preserved" and {c["class"] for c in codes["columns"]} == {"preserved"}
        assert codes["rows_in_cutoff"] == 3 and cov["findings"] == []
        assert cov["tables_by_class"]["preserved"] == 1

    def test_a_reference_table_cannot_be_a_mapped_one(self) -> None:
        raw = SPEC.model_dump()
        raw["reference_tables"] = ["note"]
        with pytest.raises(ValueError, match="reference_tables.0: 'note' is a mapped table"):
            MappingSpec.model_validate(raw)

    def test_a_table_in_no_mapping_is_named(self) -> None:
        cov = classify(CATALOGUE, SPEC, [exclusion("note", "extra")], {"patient": 5, "note": 5}, CUT_OFF, "s")
        assert cov["findings"] == ["table s.codes (3 rows) is in no mapping and no exclusion"]
        assert cov["tables_by_class"] == {"mapped": 2, "preserved": 0, "excluded": 0, "unclassified": 1}

    def test_an_exclusion_needs_its_decision_reference(self) -> None:
        found = classify(
            CATALOGUE, SPEC, [exclusion("codes", reference=""), exclusion("note", "extra")], {"note": 5}, CUT_OFF, "s"
        )["findings"]
        assert found == ["the exclusion of s.codes has no decision reference"]

    def test_a_table_the_cut_off_empties_is_named_with_the_cut_off(self) -> None:
        cov = classify(
            CATALOGUE, SPEC, [exclusion("codes"), exclusion("note", "extra")], {"patient": 5, "note": 0}, CUT_OFF, "s"
        )
        assert cov["findings"] == ["table s.note has 5 rows in the source but none on or before the cut-off 2024-09-30"]
        note = next(t for t in cov["tables"] if t["table"] == "note")
        assert (note["rows_in_cutoff"], note["rows_after_cutoff"]) == (0, 5)

    def test_an_exclusion_of_a_table_the_source_lacks_is_named(self) -> None:
        exclusions = [exclusion("codes"), exclusion("note", "extra"), exclusion("gone")]
        found = classify(CATALOGUE, SPEC, exclusions, {"patient": 5, "note": 5}, CUT_OFF, "s")["findings"]
        assert found == ["the exclusion names s.gone, which the source does not have"]


class TestReadCatalogue:
    def test_sqlite_tables_columns_keys_and_rows(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from decommission.embedded import source_connection

        path = tmp_path / "src.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE patient (id INTEGER PRIMARY KEY, pnr TEXT)")
            db.execute("CREATE TABLE note (nid INTEGER PRIMARY KEY, pid INTEGER REFERENCES patient(id), txt TEXT)")
            db.executemany("INSERT INTO patient VALUES (?, ?)", [(1, "a"), (2, "b")])
            db.execute("INSERT INTO note VALUES (1, 1, 'x')")
        monkeypatch.setenv("AIRFLOW_CONN_CAT_TEST", source_connection(str(path), None))
        catalogue = read_catalogue(Source("cat_test"))
        assert sorted(catalogue) == ["note", "patient"]
        note = catalogue["note"]
        assert [c.name for c in note.columns] == ["nid", "pid", "txt"] and note.rows == 1
        assert note.primary_key == ("nid",)
        assert note.foreign_keys == ({"columns": ["pid"], "table": "patient", "references": ["id"]},)
        assert catalogue["patient"].rows == 2


def test_a_spec_table_of_another_schema_is_classified_with_that_schema_only():
    spec = MappingSpec.model_validate(
        {
            **SPEC.model_dump(by_alias=True, exclude={"path", "lines", "correction_list"}),
            "tables": {
                **SPEC.model_dump(by_alias=True)["tables"],
                "svar": {
                    "entity": "lab_result",
                    "schema": "lab",
                    "key": "sid",
                    "patient_key": "pid",
                    "fields": {"result_id": {"column": "sid"}, "patient_key": {"column": "pid"}},
                    "preserved": ["intern"],
                },
            },
        }
    )
    own = classify(CATALOGUE, spec, [exclusion("lab.svar", "extra")], {}, CUT_OFF, "demo", elsewhere=["lab.svar"])
    assert not [f for f in own["findings"] if "svar" in f]  # neither its preserved column nor its exclusion
    lab = {"svar": table("svar", "sid", "pid", "intern", "extra")}
    other = classify(lab, spec, [exclusion("lab.svar", "extra")], {"svar": 5}, CUT_OFF, "lab", own="demo")
    columns = {c["name"]: c["class"] for c in other["tables"][0]["columns"]}
    assert columns == {"sid": "mapped", "pid": "mapped", "intern": "preserved", "extra": "excluded"}
    assert other["findings"] == []
