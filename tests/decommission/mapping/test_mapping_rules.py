"""Each rule's quarantine code comes from a row that breaks it, and from nothing else."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decommission.mapping.identity import luhn_ok, make_personnummer
from decommission.mapping.transform import map_partition
from decommission.plan.mapping_spec import MappingSpec
from decommission.privacy import keyed_hash

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
            "pat": {
                "entity": "patient",
                "key": "id",
                "patient_key": "id",
                "fields": {
                    "patient_key": {"column": "id"},
                    "personal_id": {"column": "pnr", "transform": "personal_id"},
                    "id_type": {"column": "pnr", "transform": "id_type"},
                },
                "rules": [{"rule": "personal_id", "column": "pnr"}],
            },
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


def _run(tables: dict[str, dict[str, list]], tmp_path):
    arrow = {name: pa.table(cols) for name, cols in tables.items()}
    result = map_partition(SPEC, lambda t: arrow[t], tmp_path)
    return result, pq.read_table(tmp_path / "quarantine.parquet").to_pylist()


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
    result, quarantine = _run(tables, tmp_path)
    assert [(q["source_table"], q["source_key"], q["rule"], q["column"]) for q in quarantine] == [
        (table, "99", reason, column)
    ]
    if detail is not None:
        assert quarantine[0]["detail"] == detail
    raw = value if isinstance(value, str) and reason != "SOFT_DELETED" else None  # a deletion flag is no evidence
    if raw is not None:
        assert quarantine[0]["value_digest"] == keyed_hash(raw)  # the value itself is never stored
        assert raw not in str(quarantine)
    assert result.extracted[table] == result.mapped[table] + 1


def test_clean_rows_are_all_mapped(tmp_path):
    result, quarantine = _run(_clean(), tmp_path)
    assert quarantine == []
    assert result.mapped == result.extracted
    doc = pq.read_table(tmp_path / "document.parquet").to_pylist()[0]
    assert doc["text"] == CLEAN_TEXT
    assert doc["time"] == dt.datetime(2021, 6, 1, 8, 0, tzinfo=dt.UTC)  # CEST wall clock -> UTC


def test_orphans_and_a_quarantined_patients_rows(tmp_path):
    tables = _clean()
    tables["pat"]["pnr"][1] = "bad"
    tables["note"] = {"id": [1, 2, 3], "pat": [1, 2, 77], "t": [TS] * 3, "txt": [CLEAN_TEXT] * 3, "status": ["A"] * 3}
    result, quarantine = _run(tables, tmp_path)
    assert {(q["source_table"], q["source_key"], q["rule"]) for q in quarantine} == {
        ("pat", "2", "ID_INVALID_FORMAT"),
        ("note", "2", "PATIENT_QUARANTINED"),
        ("note", "3", "ORPHAN"),
    }
    assert result.quarantined["note"] == {"ORPHAN": 1, "PATIENT_QUARANTINED": 1}


def test_the_first_reason_in_order_wins(tmp_path):
    tables = _clean()
    tables["note"] = {
        "id": [1, 2],
        "pat": [1, 1],
        "t": [dt.datetime(1900, 1, 1), TS],
        "txt": ["m}r\x01", "m}r\x01"],
        "status": ["M", "A"],
    }
    _, quarantine = _run(tables, tmp_path)
    assert [(q["source_key"], q["rule"]) for q in quarantine] == [("1", "SOFT_DELETED"), ("2", "XML_ILLEGAL_CHAR")]


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
    result, _ = _run(tables, tmp_path)
    assert result.adjusted_times == 2
    times = [d["time"] for d in pq.read_table(tmp_path / "document.parquet").to_pylist()]
    assert times[:2] == [
        dt.datetime(2020, 10, 25, 1, 30, tzinfo=dt.UTC),  # the ambiguous hour read as standard time
        dt.datetime(2020, 3, 29, 1, 0, tzinfo=dt.UTC),  # the missing hour shifted forward
    ]


class TestDeclaredEncoding:
    """A bytes column is read with its declared codec; bytes that do not decode are quarantined, never repaired."""

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
    def test_undecodable_bytes_go_to_quarantine(self, codec, bad, detail, tmp_path):
        good = "Status: ok".encode(codec)
        tables = {
            "pat": pa.table(_clean()["pat"]),
            "note": pa.table({"id": [1, 2], "pat": [1, 1], "t": [TS, TS], "txt": [good, bad], "status": ["A", "A"]}),
        }
        result = map_partition(self._spec(codec), lambda t: tables[t], tmp_path)
        quarantine = pq.read_table(tmp_path / "quarantine.parquet").to_pylist()
        assert [(q["source_key"], q["rule"], q["column"], q["detail"]) for q in quarantine] == [
            ("2", "ENCODING_SUSPECT", "txt", detail)
        ]
        assert result.extracted["note"] == 2 and result.mapped["note"] == 1
        assert pq.read_table(tmp_path / "document.parquet")["text"].to_pylist() == ["Status: ok"]
