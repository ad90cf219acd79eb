"""Code systems as data: each system's codes pass, its look-alikes do not; padding is trimmed where the spec says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from decommission.errors import MappingError
from decommission.mapping import codes
from decommission.mapping.identity import make_personnummer
from decommission.mapping.transform import map_partition
from decommission.plan.code_systems import REGISTRY
from decommission.plan.mapping_spec import MappingSpec, load_spec

CASES = {
    "icd10se": (
        ["J18.9", "J189", "F43.8A", "U07.1", "I21", "V27.0"],
        ["E888.9", "E8889", "V3000", "V30.00", "5723", "J18,9", "I10.999"],
    ),
    "icd10": (["J18.9", "A00", "E88.9", "E889"], ["E888.9", "E9500", "V58.11", "V3000", "0389"]),
    "icd10cm": (["S72.001A", "C4A.0", "E11.9", "Z79.4"], ["5723", "E888.9", "J1"]),
    "icd9cm": (["5723", "572.3", "0389", "V3000", "V30.00", "E8889", "E888.9", "250"], ["J18.9", "E88", "57234X"]),
    "icd9cm_proc": (["3893", "38.93", "99", "389"], ["3", "38934", "J18.9"]),
    "icd10pcs": (["0DTJ4ZZ", "02703ZZ"], ["0DTJ4Z", "0DTJ4ZI"]),
    "kva": (["JDF10", "NFB49", "DV001", "XS100"], ["JDF1", "AAA000", "12345"]),
    "atc": (["N", "N02", "N02B", "N02BE", "N02BE01", "A10BA02"], ["N2B", "N02BE1", "02BE01", "N02BEX1", "XYZ", "E01"]),
    "npu": (["NPU03230", "NPU02319", "SWE05478", "DNK35131"], ["NPU123", "NPU1234567", "N02319"]),
    "snomedct": (["22298006", "404684003", "45991000052106"], ["22298007", "404684004", "022298006", "22298016"]),
}


@pytest.mark.parametrize("system", sorted(CASES))
def test_each_system_accepts_its_codes_and_refuses_look_alikes(system):
    good, bad = CASES[system]
    ok = codes.valid(REGISTRY[system], pa.array(good + bad + [None], pa.string()))
    assert ok.tolist() == [True] * len(good) + [False] * len(bad) + [False]


def test_every_registered_system_is_tested():
    assert set(CASES) == set(REGISTRY)


def test_verhoeff_digit_and_partition_of_a_snomed_id():
    # 22298006 (myocardial infarction): partition 00 (a concept), Verhoeff digit 6
    assert codes.verhoeff_ok(np.array(["22298006", "22298007", "2229800"], dtype=object)).tolist() == [
        True,
        False,
        False,
    ]
    # the same item id with partition 01 (a description) and its own correct Verhoeff digit: no concept
    description = next(
        c for c in (f"2229801{d}" for d in "0123456789") if codes.verhoeff_ok(np.array([c], dtype=object))[0]
    )
    assert codes.sctid_concept(np.array(["22298006", description], dtype=object)).tolist() == [True, False]


SPEC = {
    "system": "codes",
    "patient_table": "pat",
    "code_systems": {"labkod": {"title": "the lab's own item ids", "codes": ["50912", "50971"]}},
    "tables": {
        "pat": {
            "entity": "patient",
            "key": "id",
            "patient_key": "id",
            "fields": {"patient_key": {"column": "id"}, "personal_id": {"column": "pnr", "transform": "personal_id"}},
        },
        "diag": {
            "entity": "diagnosis",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "diagnosis_id": {"column": "id"},
                "patient_key": {"column": "pat"},
                "code": {"column": "icd_code", "transform": "trim"},
                "code_system": {"column": "icd_version", "lookup": {"9": "icd9cm", "10": "icd10cm"}},
                "code_system_version": {"value": "2015"},
            },
            "rules": [
                {
                    "rule": "code",
                    "column": "icd_code",
                    "system_column": "icd_version",
                    "systems": {"9": "icd9cm", "10": "icd10cm"},
                }
            ],
        },
        "lab": {
            "entity": "lab_result",
            "key": "id",
            "patient_key": "pat",
            "fields": {
                "result_id": {"column": "id"},
                "patient_key": {"column": "pat"},
                "code": {"column": "itemid"},
                "code_system": {"value": "labkod"},
            },
            "rules": [{"rule": "code", "column": "itemid", "system": "labkod"}],
        },
    },
}


def test_mixed_icd_versions_padded_codes_and_a_local_list_map_as_declared(tmp_path):
    spec = MappingSpec.model_validate(SPEC)
    pnr = make_personnummer(dt.date(1970, 5, 17), 241)
    padded = ["5723   ", "K7030  ", "E888.9 ", "J18.9  ", "0389   "]
    tables = {
        "pat": pa.table({"id": [1], "pnr": [pnr]}),
        # rows 1-2 are right for their version; row 3 (E888.9 said to be ICD-10-CM) and row 4 (J18.9 as ICD-9) are not;
        # row 5 names a version the spec does not know
        "diag": pa.table(
            {"id": [1, 2, 3, 4, 5], "pat": [1] * 5, "icd_code": padded, "icd_version": [9, 10, 10, 9, 11]}
        ),
        "lab": pa.table({"id": [1, 2], "pat": [1, 1], "itemid": [50912, 12345]}),
    }
    result = map_partition(spec, lambda t: tables[t], tmp_path)
    assert result.flagged == {"diag": {"CODE_INVALID": 3}, "lab": {"CODE_INVALID": 1}}
    diag = pq.read_table(tmp_path / "diagnosis.parquet").to_pylist()
    assert [d["code"] for d in diag] == ["5723", "K7030", "E888.9", "J18.9", "0389"]  # padding trimmed, as declared
    assert [d["code_system"] for d in diag] == ["icd9cm", "icd10cm", "icd10cm", "icd9cm", None]
    assert {d["code_system_version"] for d in diag} == {"2015"}
    findings = pq.read_table(tmp_path / "findings.parquet").to_pylist()
    details = {(f["source_table"], f["source_key"]): f["detail"] for f in findings}
    assert details == {
        ("diag", "3"): "not a valid icd10cm code",
        ("diag", "4"): "not a valid icd9cm code",
        ("diag", "5"): "no known code system in icd_version",
        ("lab", "2"): "not a valid labkod code",
    }
    assert tables["diag"]["icd_code"].to_pylist() == padded  # the source value is untouched


def test_a_padded_code_is_valid_even_where_the_spec_keeps_the_padding(tmp_path):
    spec = MappingSpec.model_validate(
        SPEC
        | {
            "tables": {
                "pat": SPEC["tables"]["pat"],
                "diag": {
                    "entity": "diagnosis",
                    "key": "id",
                    "patient_key": "pat",
                    "fields": {
                        "diagnosis_id": {"column": "id"},
                        "patient_key": {"column": "pat"},
                        "code": {"column": "c"},
                    },
                    "rules": [{"rule": "code", "column": "c", "system": "icd10se"}],
                },
            }
        }
    )
    tables = {"pat": pa.table({"id": [1], "pnr": ["x"]}), "diag": pa.table({"id": [1], "pat": [1], "c": ["J18.9  "]})}
    result = map_partition(spec, lambda t: tables[t], tmp_path)
    assert "diag" not in result.flagged
    assert pq.read_table(tmp_path / "diagnosis.parquet")["code"].to_pylist() == ["J18.9  "]  # kept: no trim declared


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"rule": "code", "column": "c", "system": "icd11"}, "unknown code system 'icd11'"),
        ({"rule": "code", "column": "c"}, "needs either 'system' or 'system_column'"),
        ({"rule": "code", "column": "c", "system_column": "v"}, "needs 'systems'"),
        ({"rule": "code", "column": "c", "system_column": "v", "systems": {"9": "icd8"}}, "unknown code system 'icd8'"),
    ],
)
def test_a_code_rule_naming_no_known_system_is_refused_at_load(rule, message, tmp_path):
    raw = dict(SPEC)
    raw["tables"] = {**SPEC["tables"], "lab": {**SPEC["tables"]["lab"], "rules": [rule]}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(MappingError, match=message):
        load_spec(path)
