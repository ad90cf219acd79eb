"""Each rule's finding code comes from a row that breaks it, and from nothing else; what becomes of the row
is the spec's disposition (kept and flagged by default, corrected from the list, disposed of by decision)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decommission.mapping.identity import luhn_ok, make_personnummer
from decommission.mapping.transform import map_partition
from decommission.plan.mapping_spec import MappingSpec
from decommission.privacy import keyed_hash
from tests.decommission.fixtures import patient_table

GOOD_ID = make_personnummer(dt.date(1970, 5, 17), 241)
#: 30 February 1970 with a correct check digit: only the date is wrong
BAD_DATE_ID = next(c for c in ("19700230241" + str(d) for d in range(10)) if luhn_ok(c[2:]))
CLEAN_TEXT = "Aktuellt: mår bättre. Status: opåverkad, åter om två veckor."
TS = dt.datetime(2021, 6, 1, 10, 0)

SPEC = MappingSpec.model_validate(
    {
        "system": "rules",
        "patient_table": "pat",
        "tables": {
            "pat": patient_table(),
            "note": {
                "entity": "document",
                "key": "id",
                "patient_key": "pat",
                "fields": {
                    "document_id": {"column": "id"},
                    "patient_key": {"column": "pat"},
                    "time": {"column": "t", "transform": "local_time"},
                    "text": {"column": "txt"},
                },
                "rules": [
                    {"rule": "soft_deleted", "column": "status", "values": ["M"]},
                    {"rule": "sentinel_date", "column": "t"},
                    {"rule": "xml_chars", "column": "txt"},
                    {"rule": "encoding", "column": "txt"},
                ],
            },
            "diag": {
                "entity": "diagnosis",
                "key": "id",
                "patient_key": "pat",
                "fields": {"diagnosis_id": {"column": "id"}, "patient_key": {"column": "pat"}, "code": {"column": "c"}},
                "rules": [{"rule": "code", "column": "c", "system": "icd10se"}],
            },
            "med": {
                "entity": "medication",
                "key": "id",
                "patient_key": "pat",
                "fields": {"medication_id": {"column": "id"}, "patient_key": {"column": "pat"}, "atc": {"column": "c"}},
                "rules": [{"rule": "code", "column": "c", "system": "atc"}],
            },
            "lab": {
                "entity": "lab_result",
                "key": "id",
                "patient_key": "pat",
                "fields": {"result_id": {"column": "id"}, "patient_key": {"column": "pat"}, "code": {"column": "c"}},
                "rules": [{"rule": "code", "column": "c", "system": "npu"}],
            },
            "att": {
                "entity": "attachment",
                "key": "id",
                "patient_key": "pat",
                "fields": {
                    "attachment_id": {"column": "id"},
                    "patient_key": {"column": "pat"},
                    "content": {"column": "blob", "transform": "bytes"},
                },
                "rules": [{"rule": "not_empty", "column": "blob"}],
            },
        },
    }
)

# (table, column, broken value, reason, detail): each row breaks exactly one rule
BROKEN = [
    ("pat", "pnr", GOOD_ID[:8] + "0000", "ID_INVALID_FORMAT", "identifier fails validation"),  # serial 000
    ("pat", "pnr", GOOD_ID[:-1] + str((int(GOOD_ID[-1]) + 1) % 10), "ID_INVALID_CHECKSUM", None),
    ("pat", "pnr", BAD_DATE_ID, "ID_INVALID_DATE", None),
    ("pat", "pnr", "not a number", "ID_INVALID_FORMAT", None),
    ("note", "status", "M", "SOFT_DELETED", "marked deleted in the source"),
    ("note", "t", dt.datetime(1900, 1, 1), "SENTINEL_DATE", "sentinel date 1900-01-01"),
    ("note", "t", dt.datetime(9999, 12, 31, 23, 59), "SENTINEL_DATE", "sentinel date 9999-12-31"),
    ("note", "txt", "Status: ok\x0b", "XML_ILLEGAL_CHAR", "character U+000B at offset 10"),
    ("note", "txt", "Status: ok\ufffe", "XML_ILLEGAL_CHAR", "character U+FFFE at offset 10"),
    ("note", "txt", "Status: trÃ¶tt", "ENCODING_SUSPECT", "pattern utf8_as_latin1"),
    ("note", "txt", "Status: m†r bra", "ENCODING_SUSPECT", "pattern cp850_as_cp1252"),
    ("note", "txt", "Status: m}r b{ttre", "ENCODING_SUSPECT", "pattern iso646_se"),
    ("note", "txt", "Status: tr\ufffdtt", "ENCODING_SUSPECT", "pattern replacement_char"),
    ("diag", "c", "J18,9", "CODE_INVALID", "not a valid icd10se code"),
    ("med", "c", "N02BE0", "CODE_INVALID", "not a valid atc code"),
    ("lab", "c", "NPU1234", "CODE_INVALID", "not a valid npu code"),
    ("att", "blob", b"", "EMPTY_ATTACHMENT", "zero bytes"),
]


def _clean() -> dict[str, dict[str, list]]:
    """Two good patients; one clean row per table (id 1)."""
    return {
        "pat": {"id": [1, 2], "pnr": [GOOD_ID, make_personnummer(dt.date(1980, 1, 2), 332)]},
        "note": {"id": [1], "pat": [1], "t": [TS], "txt": [CLEAN_TEXT], "status": ["A"]},
        "diag": {"id": [1], "pat": [1], "c": ["J18.9"]},
        "med": {"id": [1], "pat": [1], "c": ["N02BE01"]},
        "lab": {"id": [1], "pat": [1], "c": ["NPU02319"]},
        "att": {"id": [1], "pat": [1], "blob": [b"%PDF-1.4"]},
    }


def _run(tables: dict[str, dict[str, list]], tmp_path, spec: MappingSpec = SPEC):
    arrow = {name: pa.table(cols) for name, cols in tables.items()}
    result = map_partition(spec, lambda t: arrow[t], tmp_path)
    return result, pq.read_table(tmp_path / "findings.parquet").to_pylist()


def _spec(**changes) -> MappingSpec:
    raw = SPEC.model_dump(exclude={"path", "correction_list"}) | changes
    return MappingSpec.model_validate(raw)


def _records(tmp_path, entity: str) -> dict[str, dict]:
    key = {"patient": "patient_key", "document": "document_id", "diagnosis": "diagnosis_id"}[entity]
    return {r[key]: r for r in pq.read_table(tmp_path / f"{entity}.parquet").to_pylist()}


@pytest.mark.parametrize(
    ("table", "column", "value", "reason", "detail"), BROKEN, ids=[f"{b[3]}-{i}" for i, b in enumerate(BROKEN)]
)
def test_a_row_breaking_a_rule_gets_its_code(table, column, value, reason, detail, tmp_path):
    tables = _clean()
    row = {c: list(v[:1]) for c, v in tables[table].items()}
    row["id"] = [99]
    row[column] = [value]
    for c, v in row.items():
        tables[table][c] = tables[table][c] + v
    if table == "pat":  # the second patient keeps its key so nothing else cascades
        tables[table] = {"id": [1, 99], "pnr": [GOOD_ID, value]}
    result, findings = _run(tables, tmp_path)
    assert [(f["source_table"], f["source_key"], f["reason"], f["column"], f["disposition"]) for f in findings] == [
        (table, "99", reason, column, "keep_flagged")
    ]
    if detail is not None:
        assert findings[0]["detail"] == detail
    raw = value if isinstance(value, str) and reason != "SOFT_DELETED" else None  # a deletion flag is no evidence
    if raw is not None:
        assert findings[0]["value_digest"] == keyed_hash(raw)  # the value itself is never stored
        assert raw not in str(findings)
    # kept: archived as it is, with the finding flagged in its record
    assert result.extracted[table] == result.mapped[table] and result.flagged[table] == {reason: 1}
    assert result.disposed == {}


def test_clean_rows_are_all_mapped(tmp_path):
    result, findings = _run(_clean(), tmp_path)
    assert findings == []
    assert result.mapped == result.extracted
    doc = pq.read_table(tmp_path / "document.parquet").to_pylist()[0]
    assert doc["text"] == CLEAN_TEXT
    assert doc["time"] == dt.datetime(2021, 6, 1, 8, 0, tzinfo=dt.UTC)  # CEST wall clock -> UTC


def test_orphans_and_an_invalid_patients_rows_are_archived(tmp_path):
    tables = _clean()
    tables["pat"]["pnr"][1] = "bad"
    tables["note"] = {"id": [1, 2, 3], "pat": [1, 2, 77], "t": [TS] * 3, "txt": [CLEAN_TEXT] * 3, "status": ["A"] * 3}
    result, findings = _run(tables, tmp_path)
    assert {(f["source_table"], f["source_key"], f["reason"]) for f in findings} == {
        ("pat", "2", "ID_INVALID_FORMAT"),
        ("note", "3", "ORPHAN"),
    }
    assert result.flagged["note"] == {"ORPHAN": 1} and result.mapped["note"] == 3
    patients = _records(tmp_path, "patient")
    assert patients["2"]["personal_id"] == "bad" and patients["2"]["id_type"] == "invalid"  # as written
    assert set(patients) == {"1", "2", "77"} and result.placeholders == 1  # 77: the orphan's placeholder


DISPOSE_BAD_IDS = {
    "reason": "ID_INVALID_FORMAT",
    "table": "pat",
    "disposition": "dispose",
    "decision": "testpatienter gallras",
    "reference": "RN 2025/0999",
    "decided_by": "Olof Öberg (regionarkivarie)",
}


def test_a_disposed_patient_takes_their_rows_under_the_same_decision(tmp_path):
    tables = _clean()
    tables["pat"]["pnr"][1] = "bad"
    tables["note"] = {"id": [1, 2], "pat": [1, 2], "t": [TS] * 2, "txt": [CLEAN_TEXT] * 2, "status": ["A"] * 2}
    result, findings = _run(tables, tmp_path, _spec(dispositions=[DISPOSE_BAD_IDS]))
    assert result.disposed == {"pat": {"ID_INVALID_FORMAT": 1}, "note": {"PATIENT_DISPOSED": 1}}
    assert {(f["source_table"], f["source_key"], f["disposition"], f["decision"]) for f in findings} == {
        ("pat", "2", "dispose", "RN 2025/0999"),
        ("note", "2", "dispose", "RN 2025/0999"),
    }
    assert set(_records(tmp_path, "patient")) == {"1"} and set(_records(tmp_path, "document")) == {"1"}
    assert result.placeholders == 0  # a disposed patient's rows are no orphans


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference": ""}, "dispositions.0: 'reference' is empty: a dispose needs the reference of its decision"),
        ({"reference": "   "}, "'reference' is empty"),
        ({"decided_by": ""}, "'decided_by' is empty"),
        ({"reason": "PATIENT_DISPOSED"}, "reason 'PATIENT_DISPOSED' is not one of"),
        ({"table": "nope"}, "dispositions.0.table: 'nope' is not one of tables"),
    ],
)
def test_a_dispose_without_its_decision_is_refused_when_the_spec_loads(tmp_path, change, message):
    import yaml

    from decommission.errors import MappingError
    from decommission.plan.mapping_spec import load_spec

    raw = SPEC.model_dump(mode="json", exclude={"path", "correction_list"})
    raw["dispositions"] = [DISPOSE_BAD_IDS | change]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(MappingError, match=re.escape(message)):
        load_spec(path)


def _with_corrections(tmp_path, entries: list[dict], **spec_changes):
    import yaml

    from decommission.plan.mapping_spec import load_spec

    raw = SPEC.model_dump(mode="json", exclude={"path", "correction_list"}) | spec_changes
    raw["corrections"] = "corrections.yaml"
    (tmp_path / "corrections.yaml").write_text(yaml.safe_dump({"corrections": entries}), encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_spec(tmp_path / "spec.yaml")


CORRECTION = {
    "table": "diag",
    "key": 2,
    "column": "c",
    "value": "J18.9",
    "reason": "CODE_INVALID",
    "decided_by": "Karin Lindström (verksamhetschef)",
    "date": "2025-04-01",
    "reference": "RN 2025/0418",
}


def test_a_correction_replaces_the_value_and_keeps_the_original_in_its_flag(tmp_path):
    spec = _with_corrections(tmp_path, [CORRECTION])
    tables = _clean()
    tables["diag"] = {"id": [1, 2, 3], "pat": [1, 1, 1], "c": ["J18.9", "J18,9", "XYZ"]}
    result, findings = _run(tables, tmp_path / "out", spec)
    assert result.corrected == {"diag": {"CODE_INVALID": 1}} and result.flagged == {"diag": {"CODE_INVALID": 1}}
    diagnoses = _records(tmp_path / "out", "diagnosis")
    assert diagnoses["2"]["code"] == "J18.9" and diagnoses["3"]["code"] == "XYZ"  # the code as written, flagged
    flag = json.loads(diagnoses["2"]["quality"])[0]
    assert flag["disposition"] == "correct" and flag["original"] == "J18,9" and flag["reference"] == "RN 2025/0418"
    assert flag["decided_by"] == "Karin Lindström (verksamhetschef)" and flag["fields"] == ["code"]
    assert [(c["table"], c["column"], c["row"]) for c in result.corrections] == [("diag", "c", keyed_hash("2"))]
    assert {(f["source_key"], f["disposition"], f["decision"]) for f in findings} == {
        ("2", "correct", "RN 2025/0418"),
        ("3", "keep_flagged", ""),
    }


def test_a_row_that_already_holds_the_corrected_value_is_left_alone(tmp_path):
    spec = _with_corrections(tmp_path, [CORRECTION])
    tables = _clean()
    tables["diag"] = {"id": [1, 2], "pat": [1, 1], "c": ["J18.9", "J18.9"]}
    result, findings = _run(tables, tmp_path / "out", spec)
    assert result.corrected == {} and findings == [] and result.corrections == []


def test_declared_correct_without_a_correction_is_kept_flagged_and_counted(tmp_path):
    correct = {"reason": "CODE_INVALID", "table": "diag", "disposition": "correct"}
    spec = _with_corrections(tmp_path, [CORRECTION], dispositions=[correct])
    tables = _clean()
    tables["diag"] = {"id": [1, 2, 3], "pat": [1, 1, 1], "c": ["J18.9", "J18,9", "XYZ"]}
    result, _ = _run(tables, tmp_path / "out", spec)
    assert result.corrected == {"diag": {"CODE_INVALID": 1}}
    assert result.flagged == {"diag": {"CODE_INVALID": 1}} and result.uncorrected == {"diag": {"CODE_INVALID": 1}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"column": "pat"}, "corrections.0.column: 'pat' is a key of 'diag' and cannot be corrected"),
        ({"column": "nope"}, "corrections.0.column: 'nope' is not a column the spec reads from 'diag'"),
        ({"table": "nope"}, "corrections.0.table: 'nope' is not one of tables"),
        ({"reason": "BAD"}, "reason 'BAD' is not one of"),
        ({"decided_by": ""}, "corrections.0.decided_by"),
    ],
)
def test_a_broken_correction_is_refused_when_the_spec_loads(tmp_path, change, message):
    from decommission.errors import MappingError

    with pytest.raises(MappingError, match=re.escape(message)):
        _with_corrections(tmp_path, [CORRECTION | change])


def test_the_first_reason_in_order_counts_and_every_finding_is_flagged(tmp_path):
    tables = _clean()
    tables["note"] = {
        "id": [1, 2],
        "pat": [1, 1],
        "t": [dt.datetime(1900, 1, 1), TS],
        "txt": ["m}r\x01", "m}r\x01"],
        "status": ["M", "A"],
    }
    result, findings = _run(tables, tmp_path)
    assert [(f["source_key"], f["reason"]) for f in findings] == [("1", "SOFT_DELETED"), ("2", "XML_ILLEGAL_CHAR")]
    assert findings[0]["reasons"] == "SOFT_DELETED SENTINEL_DATE XML_ILLEGAL_CHAR ENCODING_SUSPECT"
    notes = _records(tmp_path, "document")
    assert [f["reason"] for f in json.loads(notes["1"]["quality"])] == [
        "SOFT_DELETED",
        "SENTINEL_DATE",
        "XML_ILLEGAL_CHAR",
        "ENCODING_SUSPECT",
    ]
    assert result.flagged["note"] == {"SOFT_DELETED": 1, "XML_ILLEGAL_CHAR": 1}


def test_a_dispose_of_any_finding_disposes_of_the_row(tmp_path):
    dispose = DISPOSE_BAD_IDS | {"reason": "SENTINEL_DATE", "table": "note"}
    tables = _clean()
    tables["note"] = {
        "id": [1, 2],
        "pat": [1, 1],
        "t": [dt.datetime(1900, 1, 1), TS],
        "txt": ["m}r"] * 2,
        "status": ["A"] * 2,
    }
    result, findings = _run(tables, tmp_path, _spec(dispositions=[dispose]))
    assert result.disposed == {"note": {"SENTINEL_DATE": 1}} and result.flagged == {"note": {"ENCODING_SUSPECT": 1}}
    assert set(_records(tmp_path, "document")) == {"2"}


@pytest.mark.parametrize("text", ["Status: ok\x0b och C:\\temp\\u0041", "\ufffe\\\x00", "\x01\\u00411\\\\"])
def test_xml_illegal_text_is_escaped_reversibly(tmp_path, text):
    from decommission.mapping import flags

    tables = _clean()
    tables["note"] = {"id": [1], "pat": [1], "t": [TS], "txt": [text], "status": ["A"]}
    _run(tables, tmp_path)
    written = _records(tmp_path, "document")["1"]["text"]
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", written)
    assert flags.unescape(written) == text


def test_ambiguous_and_missing_local_hours_are_counted(tmp_path):
    tables = _clean()
    autumn, spring = dt.datetime(2020, 10, 25, 2, 30), dt.datetime(2020, 3, 29, 2, 30)
    tables["note"] = {
        "id": [1, 2, 3],
        "pat": [1, 1, 1],
        "t": [autumn, spring, TS],
        "txt": [CLEAN_TEXT] * 3,
        "status": ["A"] * 3,
    }
    result, findings = _run(tables, tmp_path)
    assert result.adjusted_times == 2
    assert [(f["source_key"], f["reason"], f["column"], f["disposition"], f["detail"][:12]) for f in findings] == [
        ("1", "LOCAL_TIME_ADJUSTED", "t", "keep_flagged", "ambiguous lo"),
        ("2", "LOCAL_TIME_ADJUSTED", "t", "keep_flagged", "nonexistent "),
    ]
    times = [d["time"] for d in pq.read_table(tmp_path / "document.parquet").to_pylist()]
    assert times[:2] == [
        dt.datetime(2020, 10, 25, 1, 30, tzinfo=dt.UTC),  # the ambiguous hour read as standard time
        dt.datetime(2020, 3, 29, 1, 30, tzinfo=dt.UTC),  # a missing hour: the offset before the change
    ]


class TestDeclaredEncoding:
    """A bytes column is read with its declared codec; what does not decode is kept as base64, flagged, not repaired."""

    @staticmethod
    def _spec(codec: str) -> MappingSpec:
        raw = SPEC.model_dump(exclude={"path"})
        raw["tables"] = {"pat": raw["tables"]["pat"], "note": raw["tables"]["note"]}
        raw["tables"]["note"]["encodings"] = {"txt": codec}
        return MappingSpec.model_validate(raw)

    @pytest.mark.parametrize(
        ("codec", "raw", "text"),
        [
            ("cp850", "Status: mår bättre".encode("cp850"), "Status: mår bättre"),
            ("cp1252", "Åtgärd: vila".encode("cp1252"), "Åtgärd: vila"),
            ("utf-8", "Åtgärd: vila".encode(), "Åtgärd: vila"),
            ("latin-1", "Åtgärd: vila".encode("latin-1"), "Åtgärd: vila"),
        ],
    )
    def test_bytes_are_read_with_the_declared_codec(self, codec, raw, text, tmp_path):
        tables = {
            "pat": pa.table(_clean()["pat"]),
            "note": pa.table({"id": [1], "pat": [1], "t": [TS], "txt": [raw], "status": ["A"]}),
        }
        result = map_partition(self._spec(codec), lambda t: tables[t], tmp_path)
        assert result.mapped["note"] == 1
        assert pq.read_table(tmp_path / "document.parquet")["text"].to_pylist() == [text]

    @pytest.mark.parametrize(
        ("codec", "bad", "detail"),
        [
            ("utf-8", b"Status: m\xe5r", "bytes not utf-8 at offset 9"),
            ("cp1252", b"Status: \x81", "bytes not cp1252 at offset 8"),
        ],
    )
    def test_undecodable_bytes_are_kept_as_base64_and_flagged(self, codec, bad, detail, tmp_path):
        from decommission.mapping import flags

        good = "Status: ok".encode(codec)
        tables = {
            "pat": pa.table(_clean()["pat"]),
            "note": pa.table({"id": [1, 2], "pat": [1, 1], "t": [TS, TS], "txt": [good, bad], "status": ["A", "A"]}),
        }
        result = map_partition(self._spec(codec), lambda t: tables[t], tmp_path)
        findings = pq.read_table(tmp_path / "findings.parquet").to_pylist()
        assert [(f["source_key"], f["reason"], f["column"], f["detail"]) for f in findings] == [
            ("2", "ENCODING_SUSPECT", "txt", detail)
        ]
        assert result.extracted["note"] == 2 and result.mapped["note"] == 2
        notes = pq.read_table(tmp_path / "document.parquet").to_pylist()
        assert notes[0]["text"] == "Status: ok" and notes[0]["quality"] is None
        assert flags.from_base64(notes[1]["text"]) == bad  # the bytes themselves, exactly
        flag = json.loads(notes[1]["quality"])[0]
        assert (flag["encoding"], flag["codec"], flag["fields"]) == ("base64", codec, ["text"])
