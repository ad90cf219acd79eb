"""SIARD rows = source - disposed, per table, from our own figures."""

from __future__ import annotations

from decommission.plan.mapping_spec import MappingSpec
from decommission.reconcile.raw import raw_check

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
                "table": "anteckning",
                "key": "nid",
                "patient_key": "pid",
                "fields": {"document_id": {"column": "nid"}, "patient_key": {"column": "pid"}},
            },
        },
        "reference_tables": ["enhet"],
    }
)
SOURCE = {"patient": 10, "note": 100}
MAPPED = [{"disposed": {"note": {"SOFT_DELETED": 3}}}, {"disposed": {"note": {"PATIENT_DISPOSED": 2}}}]


def test_rows_equal_source_less_disposed_pass():
    packages = [
        {"raw_rows": {"patient": 6, "anteckning": 50, "enhet": 4}},
        {"raw_rows": {"patient": 4, "anteckning": 45}},
    ]
    result = raw_check(SPEC, SOURCE, MAPPED, packages, {"enhet": 4})
    assert result["reasons"] == []
    by_table = {t["table"]: t for t in result["tables"]}
    assert by_table["anteckning"] | {} == {
        "table": "anteckning",
        "source": 100,
        "disposed": 5,
        "expected": 95,
        "siard": 95,
        "ok": True,
    }
    assert result["rows"] == result["expected"] == 10 + 95 + 4


def test_a_missing_row_or_table_is_a_reason_naming_the_table():
    packages = [{"raw_rows": {"patient": 10, "anteckning": 96}}]  # a disposed row kept; the code table absent
    result = raw_check(SPEC, SOURCE, MAPPED, packages, {"enhet": 4})
    assert result["reasons"] == [
        "raw representation (SIARD) of table anteckning: 96 rows, source 100 - disposed 5 = 95",
        "raw representation (SIARD) of table enhet (not bound to a patient): 0 rows, source 4",
    ]


def test_a_query_fed_table_is_not_expected_in_the_siard_part():
    """A query's rows are no source table (the coverage inventory covers its base tables each on its own):
    the raw reconciliation expects no SIARD table for it, and names none that the source does not have."""
    raw = SPEC.model_dump(by_alias=True, exclude={"path", "lines", "correction_list"})
    raw["tables"]["note"] = {
        **{k: v for k, v in raw["tables"]["note"].items() if v is not None and k != "table"},
        "query": "SELECT nid, pid FROM anteckning WHERE typ = 'op'",
        "reads": ["anteckning"],
    }
    spec = MappingSpec.model_validate(raw)
    result = raw_check(spec, SOURCE, MAPPED, [{"raw_rows": {"patient": 10, "enhet": 4}}], {"enhet": 4})
    assert result["reasons"] == []
    assert [t["table"] for t in result["tables"]] == ["patient", "enhet"]
