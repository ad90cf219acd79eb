from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from decommission.mapping import flags
from decommission.mapping.identity import make_personnummer
from decommission.mapping.transform import map_partition
from decommission.plan.mapping_spec import check_against_source, load_spec
from decommission.privacy import keyed_hash

REPO = Path(__file__).resolve().parents[3]
GOOD = make_personnummer(__import__("datetime").date(1961, 4, 9), 123)
BAD = GOOD[:-1] + str((int(GOOD[-1]) + 1) % 10)


def _tables() -> dict[str, pd.DataFrame]:
    notes = [
        # ant_id, pat_id, text, makulerad, time
        (1, 1, "Aktuellt: mår bättre.\nStatus: opåverkad.", 0, "2020-03-01 10:00:00"),
        (2, 1, "Aktuellt: m}r b{ttre", 0, "2020-03-02 10:00:00"),  # 7-bit Swedish
        (3, 1, "Status: trÃ¶tt", 0, "2020-03-03 10:00:00"),  # UTF-8 read as Latin-1
        (4, 1, "Bedömning: ok\x01", 0, "2020-03-04 10:00:00"),  # XML-illegal
        (5, 1, "Åtgärd: ingen", 1, "2020-03-05 10:00:00"),  # soft-deleted
        (6, 1, "Åtgärd: ingen", 0, "1900-01-01 00:00:00"),  # sentinel
        (7, 2, "Aktuellt: feber", 0, "2020-03-06 10:00:00"),  # patient with bad id
        (8, 99, "Aktuellt: orphan", 0, "2020-03-07 10:00:00"),  # orphan
        (9, 1, "Åtgärd: ingen", 1, "1900-01-01 00:00:00"),  # deleted AND sentinel: first reason wins
        (10, 1, "Status: tid i höstens dubbla timme", 0, "2020-10-25 02:30:00"),  # ambiguous local hour
    ]
    return {
        "patient": pd.DataFrame(
            {
                "pat_id": [1, 2],
                "personnr": [GOOD, BAD],
                "fornamn": ["Åsa", "Björn"],
                "efternamn": ["Öberg", "Ek"],
                "kon": ["K", "M"],
                "skyddad_id": [1, 0],
                "sparr": [0, 1],
            }
        ),
        "journalanteckning": pd.DataFrame(
            notes, columns=["ant_id", "pat_id", "anteckning", "makulerad", "skriven_tid"]
        ).assign(kontakt_id=None, sokord="Aktuellt", signerad_av="dr X"),
        "vardkontakt": pd.DataFrame(
            columns=["kontakt_id", "pat_id", "vardenhet", "kontakttyp", "start_tid", "slut_tid"]
        ),
        "diagnos": pd.DataFrame(
            {
                "diag_id": [1, 2, 3],
                "pat_id": [1, 1, 1],
                "kontakt_id": [None] * 3,
                "icd10": ["J18.9", "XYZ", "I10"],
                "diagnos_tid": ["2020-01-01 08:00:00"] * 3,
                "makulerad": [0, 0, 0],
            }
        ),
        "lakemedel": pd.DataFrame(columns=["lm_id", "pat_id", "atc", "preparat", "dosering", "ordinerad_tid"]),
        "labsvar": pd.DataFrame(
            columns=["svar_id", "pat_id", "kontakt_id", "npu_kod", "analys", "varde", "enhet", "provtid"]
        ),
        "bilaga": pd.DataFrame(
            {
                "bilaga_id": [1, 2],
                "pat_id": [1, 1],
                "ant_id": [1, 1],
                "filnamn": ["röntgen.pdf", "tom.pdf"],
                "mimetyp": ["application/pdf"] * 2,
                "innehall": [b"%PDF-1.4 x", b""],
            }
        ),
        "atkomstlogg": pd.DataFrame(
            {
                "logg_id": [1, 2],
                "pat_id": [1, 2],
                "anvandare": ["u1", "u2"],
                "handelse": ["Läst journal"] * 2,
                "tid": ["2021-01-01 12:00:00"] * 2,
            }
        ),
    }


@pytest.fixture
def mapped(tmp_path):
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    tables = _tables()
    result = map_partition(spec, lambda t: tables[t].copy(), tmp_path)
    return result, tmp_path


def _flags(text: str | None) -> list[tuple[str, str]]:
    return [(f["reason"], f["disposition"]) for f in json.loads(text)] if text else []


class TestMapPartition:
    def test_every_row_ends_archived_or_disposed(self, mapped):
        result, _ = mapped
        for table, n in result.extracted.items():
            assert n == result.mapped[table] + sum(result.disposed.get(table, {}).values()), table

    def test_each_row_counts_once_under_its_first_reason(self, mapped):
        result, out = mapped
        assert result.flagged["patient"] == {"ID_INVALID_CHECKSUM": 1}
        assert result.flagged["journalanteckning"] == {
            "ENCODING_SUSPECT": 2,
            "LOCAL_TIME_ADJUSTED": 1,  # the ambiguous autumn hour, flagged and kept
            "ORPHAN": 1,
            "SENTINEL_DATE": 1,
            "XML_ILLEGAL_CHAR": 1,
        }
        # vas.yaml disposes of soft-deleted notes under a (demo) decision; the rest is kept flagged
        assert result.disposed == {"journalanteckning": {"SOFT_DELETED": 2}}
        assert result.flagged["diagnos"] == {"CODE_INVALID": 1}
        assert result.flagged["bilaga"] == {"EMPTY_ATTACHMENT": 1}
        assert "atkomstlogg" not in result.flagged  # the bad-identifier patient's rows are archived as they are
        assert result.corrected == {} and result.uncorrected == {}
        f = pq.read_table(out / "findings.parquet").to_pandas()
        deleted_and_sentinel = f.loc[f.source_key == "9"].iloc[0]
        assert (deleted_and_sentinel.reason, deleted_and_sentinel.reasons) == (
            "SOFT_DELETED",
            "SOFT_DELETED SENTINEL_DATE",
        )
        assert deleted_and_sentinel.disposition == "dispose"
        assert deleted_and_sentinel.decision == "RN 2025/0415 (gallringsbeslut, demo)"

    def test_findings_hold_no_patient_data(self, mapped):
        _, out = mapped
        f = pq.read_table(out / "findings.parquet").to_pandas()
        text = f.to_csv()
        assert BAD not in text and "m}r" not in text and "feber" not in text
        assert keyed_hash(BAD) in set(f.value_digest)
        assert f.loc[f.reason == "XML_ILLEGAL_CHAR", "detail"].item() == "character U+0001 at offset 13"

    def test_mapped_records_follow_the_model(self, mapped):
        result, out = mapped
        patients = pq.read_table(out / "patient.parquet").to_pylist()
        assert patients[0] | {"birth_date": None} == {
            "patient_key": "1",
            "personal_id": GOOD,
            "id_type": "personnummer",
            "id_scheme": "personnummer",
            "given_name": "Åsa",
            "family_name": "Öberg",
            "sex": "female",
            "birth_date": None,
            "protected_identity": True,
            "blocked": False,
            "confidential": False,
            "death_date": None,
            "death_cause": None,
            "death_cause_system": None,
            "death_cause_system_version": None,
            "quality": None,
        }
        docs = pq.read_table(out / "document.parquet").to_pandas()
        assert list(docs.document_id) == ["1", "2", "3", "4", "6", "7", "8", "10"]  # 5 and 9 disposed
        assert docs.text[0] == "Aktuellt: mår bättre.\nStatus: opåverkad."  # journal text unchanged
        assert str(docs.time[0]) == "2020-03-01 09:00:00+00:00"  # CET wall clock -> UTC
        assert result.adjusted_times == 1  # the ambiguous autumn hour is counted, not hidden

    def test_a_patient_whose_identifier_fails_is_archived_whole_under_it_as_written(self, mapped):
        _, out = mapped
        patients = pq.read_table(out / "patient.parquet").to_pandas().set_index("patient_key")
        assert patients.loc["2", "personal_id"] == BAD and patients.loc["2", "id_type"] == "invalid"
        assert _flags(patients.loc["2", "quality"]) == [("ID_INVALID_CHECKSUM", "keep_flagged")]
        docs = pq.read_table(out / "document.parquet").to_pandas().set_index("document_id")
        assert docs.loc["7", "patient_key"] == "2" and pd.isna(docs.loc["7", "quality"])
        logs = pq.read_table(out / "access_log.parquet").to_pandas()
        assert sorted(logs.patient_key) == ["1", "2"]

    def test_flagged_values_are_written_reversibly(self, mapped):
        _, out = mapped
        docs = pq.read_table(out / "document.parquet").to_pandas().set_index("document_id")
        assert docs.loc["4", "text"] == "Bedömning: ok\\u0001"  # escaped, flagged backslash-u
        flag = json.loads(docs.loc["4", "quality"])[0]
        assert (flag["reason"], flag["encoding"], flag["fields"]) == ("XML_ILLEGAL_CHAR", "backslash-u", ["text"])
        assert flags.unescape(docs.loc["4", "text"]) == "Bedömning: ok\x01"
        assert docs.loc["2", "text"] == "Aktuellt: m}r b{ttre"  # a suspect encoding is flagged, never repaired
        assert _flags(docs.loc["6", "quality"]) == [("SENTINEL_DATE", "keep_flagged")]

    def test_an_orphan_goes_under_a_placeholder_patient_of_its_key(self, mapped):
        result, out = mapped
        assert result.placeholders == 1 and result.entities["patient"] == 3
        patients = pq.read_table(out / "patient.parquet").to_pandas().set_index("patient_key")
        assert patients.loc["99"].drop("quality").isna().all()  # no data of its own
        assert _flags(patients.loc["99", "quality"]) == [("ORPHAN", "keep_flagged")]
        docs = pq.read_table(out / "document.parquet").to_pandas().set_index("document_id")
        assert docs.loc["8", "patient_key"] == "99" and _flags(docs.loc["8", "quality"]) == [("ORPHAN", "keep_flagged")]


class TestSpecAgainstSource:
    def test_missing_column_names_the_spec_line(self):
        spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
        live = {spec.source_table(t): spec.tables[t].columns() for t in spec.tables}
        live["journalanteckning"] = [c for c in live["journalanteckning"] if c != "anteckning"]
        del live["bilaga"]
        problems = check_against_source(spec, live)
        assert len(problems) == 2
        assert "tables.journalanteckning: column 'anteckning' not in source table 'journalanteckning'" in problems[0]
        assert "tables.bilaga: source table 'bilaga' does not exist" in problems[1]
