"""The scaffold's guesses from names alone: patient table, links, entities, keys, fields, rules, preserved columns."""

from __future__ import annotations

import pytest

from decommission.model import ENTITIES, Entity
from decommission.scaffold import patterns
from decommission.scaffold.guess import draft
from decommission.scaffold.kinds import kind, transform_for
from decommission.source.catalogue import Column, Table


def table(name: str, columns: str, rows: int = 10, pk: tuple[str, ...] = (), fks: tuple[dict, ...] = ()) -> Table:
    """``"pat_id:integer personnr:text"`` -> a catalogue table."""
    cols = tuple(Column(c.split(":")[0], c.split(":")[1] if ":" in c else "") for c in columns.split())
    return Table(name, cols, rows, pk, fks)


def unique_always(schema, table, columns) -> bool:
    return True


CLINIC = {
    "patient": table(
        "patient", "pat_id:integer personnr:text fornamn:text efternamn:text kon:text dold:integer", pk=("pat_id",)
    ),
    "vardkontakt": table(
        "vardkontakt", "kontakt_id:integer pat_id:integer vardenhet:text start_tid:timestamp", pk=("kontakt_id",)
    ),
    "diagnos": table(
        "diagnos",
        "diag_id:integer patient_ref:integer kontakt_id:integer icd10:text makulerad:integer satt_tid:timestamp",
        pk=("diag_id",),
        fks=({"columns": ["patient_ref"], "table": "patient", "references": ["pat_id"]},),
    ),
    "bidiagnos": table(
        "bidiagnos", "rad:integer besok:integer pat_id:integer icd10:text", pk=("besok", "rad")
    ),  # a composite key, and a second table of diagnoses
    "kodverk": table("kodverk", "kod:text text:text", pk=("kod",)),
    "blandat": table("blandat", "rad_id:integer pat_id:integer xyz:text"),
}


def test_words_fold_swedish_letters_camel_case_and_digits() -> None:
    assert patterns.words("SkrivenTid_2") == "skriven tid 2"
    assert patterns.words("Födelsedatum") == "fodelsedatum"
    assert patterns.words("icd10se") == "icd 10 se"
    assert patterns.matches("*tid", "provtid") and patterns.matches("pnr", "PNR")
    assert not patterns.matches("pnr", "pnrx") and patterns.matches("subject id", "SUBJECT_ID")


def test_the_clinic_is_guessed_table_by_table() -> None:
    d = draft("klinik", "legacy_klinik", [(None, CLINIC)], unique=unique_always)
    by = {t.name: t for t in d.tables}
    assert d.patient_table == "patient" and not d.problems
    assert {n: (t.role, t.entity) for n, t in by.items()} == {
        "patient": ("patient", "patient"),
        "vardkontakt": ("entity", "case"),
        "diagnos": ("entity", "diagnosis"),
        "bidiagnos": ("entity", "diagnosis"),
        "kodverk": ("reference", None),
        "blandat": ("undecided", None),
    }
    patient = {f.field: f.spec for f in by["patient"].fields}
    assert patient["personal_id"] == {"column": "personnr", "transform": "personal_id"}
    assert patient["given_name"] == {"column": "fornamn"} and patient["sex"] == {"column": "kon"}
    assert by["patient"].preserved == ["dold"]  # no name says what it is: kept in SIARD only

    diagnos = by["diagnos"]
    assert diagnos.patient_key == "patient_ref" and "foreign key" in diagnos.patient_why
    fields = {f.field: f.spec for f in diagnos.fields}
    assert fields["case_id"] == {"column": "kontakt_id"}  # the same name as the case table's key
    assert fields["code"] == {"column": "icd10"} and fields["code_system"] == {"value": "icd10se"}
    assert fields["time"] == {"column": "satt_tid", "transform": "local_time"} and diagnos.cutoff == "satt_tid"
    rules = [r.spec for r in diagnos.rules]
    assert {"rule": "code", "column": "icd10", "system": "icd10se"} in rules
    assert {"rule": "soft_deleted", "column": "makulerad"} in rules
    # two tables feed one entity: both take their name as key prefix; the composite key is the row key
    assert (diagnos.key_prefix, by["bidiagnos"].key_prefix) == ("diagnos-", "bidiagnos-")
    assert by["bidiagnos"].key == ["besok", "rad"] and "diagnosis_id" not in {f.field for f in by["bidiagnos"].fields}
    assert all(f.why for t in d.mapped for f in t.fields) and all(r.why for t in d.mapped for r in t.rules)


def test_a_new_entity_is_guessed_only_when_the_model_has_it() -> None:
    catalogue = {
        "pat": table("pat", "pat_id:integer pnr:text", pk=("pat_id",)),
        "kva_atgard": table("kva_atgard", "atg_id:integer pat_id:integer kva_kod:text utford:date", pk=("atg_id",)),
    }
    now = draft("x", "c", [(None, catalogue)], unique=unique_always)
    assert "procedure" not in ENTITIES or now.tables[0].entity == "procedure"
    procedure = Entity(
        "procedure",
        "procedure_id",
        tuple((f, "string") for f in ("procedure_id", "patient_key", "code", "code_system", "text"))
        + (("start_time", "timestamp"), ("quality", "string")),
        "start_time",
    )
    later = draft("x", "c", [(None, catalogue)], unique=unique_always, entities={**ENTITIES, "procedure": procedure})
    t = next(t for t in later.tables if t.name == "kva_atgard")
    assert (t.role, t.entity) == ("entity", "procedure")
    fields = {f.field: f.spec for f in t.fields}
    assert fields["code"] == {"column": "kva_kod"} and fields["code_system"] == {"value": "kva"}
    assert fields["start_time"] == {"column": "utford", "transform": "local_time"}


def test_no_patient_table_is_a_problem_naming_the_way_out() -> None:
    d = draft("x", "c", [(None, {"kodverk": table("kodverk", "kod:text")})], unique=unique_always)
    assert d.patient_table is None and "--patient-table" in d.problems[0]


def test_patient_table_named_by_hand() -> None:
    catalogue = {"individ_data": table("individ_data", "nr:integer namn:text", pk=("nr",))}
    d = draft("x", "c", [(None, catalogue)], unique=unique_always, patient_table="individ_data")
    assert d.patient_table == "individ_data"
    fields = {f.field: f.spec for f in d.tables[0].fields}
    assert fields["family_name"] == {"column": "namn", "transform": "before_comma"}


def test_a_key_not_declared_is_taken_only_when_unique() -> None:
    catalogue = {
        "patient": table("patient", "pat_id:integer pnr:text", pk=("pat_id",)),
        "anteckning": table("anteckning", "ant_id:integer pat_id:integer text:text"),
    }
    asked = []

    def unique(schema, name, columns) -> bool:
        asked.append((name, tuple(columns)))
        return False

    d = draft("x", "c", [(None, catalogue)], unique=unique)
    t = next(t for t in d.tables if t.name == "anteckning")
    assert (t.role, asked) == ("undecided", [("anteckning", ("ant_id",))])


def test_tables_of_two_schemas_sharing_a_name_are_kept_apart() -> None:
    own = {"patient": table("patient", "pat_id:integer pnr:text", pk=("pat_id",)), "kod": table("kod", "k:text")}
    other = {"kod": table("kod", "k:text"), "labsvar": table("labsvar", "id:integer pat_id:integer varde:text")}
    d = draft("x", "c", [("journal", own), ("lab", other)], unique=unique_always)
    by = {t.name: t for t in d.tables}
    assert set(by) == {"patient", "kod", "lab_kod", "labsvar"}
    assert (by["kod"].role, by["lab_kod"].role) == ("reference", "unlinked")
    assert (by["labsvar"].schema, by["labsvar"].entity) == ("lab", "lab_result")


@pytest.mark.parametrize(
    ("type_name", "expected", "time"),
    [
        ("integer", "int", "epoch_seconds"),
        ("timestamp without time zone", "timestamp", "local_time"),
        ("timestamp with time zone", "timestamptz", "utc_time"),
        ("TEXT", "text", "local_time"),
        ("character", "char", "local_time"),
        ("bytea", "bytes", None),
        ("", "any", None),
    ],
)
def test_kinds_and_the_time_transform_they_take(type_name, expected, time) -> None:
    assert kind(type_name) == expected
    assert transform_for("timestamp", expected) == time


def test_english_names_of_a_research_extract() -> None:
    """MIMIC-like names: subject_id is the patient's key, hadm_id the case; a location is no time."""
    catalogue = {
        "patients": table("patients", "subject_id:integer gender:text dod:date", pk=("subject_id",)),
        "admissions": table(
            "admissions",
            "subject_id:integer hadm_id:integer admittime:timestamp discharge_location:text dischtime:timestamp",
            pk=("hadm_id",),
        ),
        "diagnoses_icd": table(
            "diagnoses_icd",
            "subject_id:integer hadm_id:integer seq_num:integer icd_code:text",
            pk=("hadm_id", "seq_num"),
        ),
        "transfers": table(
            "transfers", "transfer_id:integer subject_id:integer eventtype:text careunit:text intime:timestamp"
        ),
    }
    d = draft("mimic", "c", [("mimiciv", catalogue)], unique=unique_always)
    by = {t.name: t for t in d.tables}
    assert d.patient_table == "patients" and {f.field for f in by["patients"].fields} >= {"patient_key", "sex"}
    fields = {f.field: f.spec for f in by["admissions"].fields}
    assert by["admissions"].entity == "case" and fields["start_time"]["column"] == "admittime"
    assert fields["end_time"]["column"] == "dischtime"  # not discharge_location, a text that names a place
    assert {f.field: f.spec for f in by["diagnoses_icd"].fields}["case_id"] == {"column": "hadm_id"}
    assert by["transfers"].entity != "access_log"  # an event column alone is no access log


def test_a_table_name_that_could_be_a_path_gets_a_safe_spec_name() -> None:
    catalogue = {
        "patient": table("patient", "pat_id:integer pnr:text", pk=("pat_id",)),
        "../labb/svar": table("../labb/svar", "svar_id:integer pat_id:integer varde:text", pk=("svar_id",)),
        "___labb_svar": table("___labb_svar", "k:text"),
    }
    d = draft("x", "c", [(None, catalogue)], unique=unique_always)
    names = {t.table.name: t.name for t in d.tables}
    assert names["../labb/svar"] == "___labb_svar" and names["___labb_svar"] == "___labb_svar_"
